"""The SMTP wire: one socket, its timeouts, buffered replies and gathered writes.

:class:`SMTPWire` is the bottom of :class:`digest.mail.transports.smtp.SMTPTransport`:
every timeout or socket error becomes :class:`ConnectionLost` (the caller reconnects),
and another thread may :meth:`~SMTPWire.abort` a blocked call.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Iterator

from digest.mail.transports.base import ConnectionLost, TransportSpec

__all__ = ["SMTPWire", "kernel_timeouts"]


class SMTPWire:
    """One SMTP socket: opened by the session above it, read a reply at a time."""

    def __init__(
        self,
        spec: TransportSpec,
        *,
        user: str = "",
        password: str | None = None,
        timeout: float = 30.0,
        local_hostname: str = "localhost",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.spec = spec
        self.user = user
        self.password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self.sock: socket.socket | None = None
        self._buf = b""
        self.extensions: dict[str, str] = {}
        self.sent_on_connection = 0
        self.aborted = False
        self._pending: tuple[str, str] | None = None  # envelope already sent for the next message

    # -- the socket

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """Certificates verified against the system store (created on first use: it is slow)."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def abort(self) -> None:
        """From another thread: make a blocked read or connect fail at once (ConnectionLost)."""
        self.aborted = True
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def where(self) -> str:
        """host:port for messages."""
        return f"{self.spec.host}:{self.spec.port}"

    def close(self) -> None:
        """Say QUIT (briefly, best effort) and close the socket."""
        sock, self.sock = self.sock, None
        self._pending = None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.settimeout(min(self.timeout, 2.0))
            sock.sendall(b"QUIT\r\n")
        with contextlib.suppress(OSError):
            sock.close()

    # -- wire

    def _drop(self) -> None:
        """Close a broken connection at once (no QUIT)."""
        sock, self.sock = self.sock, None
        self._pending = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    @contextlib.contextmanager
    def _io(self, *, reading: bool) -> Iterator[socket.socket]:
        """The connected socket; a timeout or socket error drops it and becomes ConnectionLost."""
        if self.sock is None:
            raise ConnectionLost(f"{self.where}: not connected")
        try:
            yield self.sock
        except (TimeoutError, BlockingIOError):  # BlockingIOError: a kernel timeout (EAGAIN)
            self._drop()
            idle = "no answer within" if reading else "no progress sending for"
            raise ConnectionLost(f"{self.where}: {idle} {self.timeout:g}s") from None
        except OSError as exc:
            self._drop()
            lost = "connection lost" if reading else "connection lost while sending"
            raise ConnectionLost(f"{self.where}: {lost} ({exc})") from None

    def _send(self, data: bytes | memoryview) -> None:
        with self._io(reading=False) as sock:
            sock.sendall(data)

    def _send_parts(self, data: bytes, tail: bytes) -> None:
        """``data + tail`` without copying a large message (one gathered write when possible)."""
        if isinstance(self.sock, ssl.SSLSocket):
            self._send(data + tail)
            return
        with self._io(reading=False) as sock:
            sent = sock.sendmsg([data, tail])
        if sent < len(data):
            self._send(memoryview(data)[sent:])  # type: ignore[arg-type]
            self._send(tail)
        elif sent < len(data) + len(tail):
            self._send(tail[sent - len(data) :])

    def _read_line(self) -> bytes:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1 :]
                return line.rstrip(b"\r")
            if len(self._buf) > 65536:
                self._drop()
                raise ConnectionLost(f"{self.where}: reply line too long")
            with self._io(reading=True) as sock:
                chunk = sock.recv(65536)
            if not chunk:
                self._drop()
                raise ConnectionLost(f"{self.where} closed the connection")
            self._buf += chunk

    def _read_reply(self) -> tuple[int, list[str]]:
        buf = self._buf
        end = buf.find(b"\n")
        if end > 3 and buf[3:4] == b" " and buf[:3].isdigit():  # the usual: a one-line reply, buffered
            self._buf = buf[end + 1 :]
            return int(buf[:3]), [buf[4:end].rstrip(b"\r").decode("utf-8", "replace")]
        lines: list[str] = []
        while True:
            line = self._read_line()
            if len(line) < 3 or not line[:3].isdigit():
                self._drop()
                raise ConnectionLost(f"{self.where}: malformed reply {line[:80]!r}")
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def _command(self, line: bytes) -> tuple[int, list[str]]:
        self._send(line + b"\r\n")
        return self._read_reply()


def kernel_timeouts(sock: socket.socket, seconds: float) -> bool:
    """Make ``sock`` blocking with the kernel enforcing ``seconds`` on each send and receive
    (SO_SNDTIMEO/SO_RCVTIMEO: a timed-out call fails with EAGAIN). Python's own timeouts poll()
    before every call, each poll and each call letting go of the GIL: with several connection
    threads per process that doubles the lock hand-offs per message. False when not possible."""
    if seconds <= 0 or not hasattr(socket, "SO_RCVTIMEO"):
        return False
    whole = int(seconds)
    timeval = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))
    try:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except OSError:
        return False
    return True
