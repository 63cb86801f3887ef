"""The IMAP bounce source: :class:`ImapSource`, with a deadline and size limits.

Per-socket timeouts alone let a server that trickles one byte a second hold a
run for as long as it likes, and imaplib reads whatever literal a server
announces ({300000000} is 300 MB of memory). So:

- one pass, from connecting to logging out, has a deadline (``[bounces]
  deadline``): a timer shuts the connection down when it passes, whatever
  operation is waiting, and the pass ends with one line saying so;
- a response line over :data:`~digest.bounces.sources.IMAP_MAX_LINE` bytes and a
  literal over :data:`~digest.bounces.sources.READ_LIMIT` are refused before
  they are read, and a message is fetched only up to ``READ_LIMIT`` bytes (one
  more than may be parsed: a larger one is moved to ``rejected``);
- every failure becomes one :class:`~digest.errors.DigestError` line.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from digest.bounces.limits import (
    IMAP_DEADLINE,
    IMAP_MAX_LINE,
    IMAP_PASSWORD_ENV,
    IMAP_TIMEOUT,
    PROCESSED,
    READ_LIMIT,
    REJECTED,
)
from digest.errors import DigestError

_FAILURES = (OSError, EOFError, ValueError, imaplib.IMAP4.error)


class _Refused(Exception):
    """The server sent more than we read (a line or a literal too long): the connection is dropped."""


class _Watch:
    """The deadline of one pass: at ``deadline`` it shuts the connection's socket down, which ends
    whatever read or write is waiting on it (connect, TLS handshake, a trickled line)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError when none are."""
        left = self.ends - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("the deadline passed")
        return left

    def watch(self, sock: socket.socket) -> None:
        """The socket to shut down at the deadline."""
        with self._lock:
            self._fd = sock.fileno()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._fd is None:
                return
            # By descriptor: after a TLS wrap the same descriptor belongs to the SSLSocket.
            sock = socket.socket(fileno=self._fd)
            try:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.detach()

    def stop(self) -> None:
        """The connection is closed: nothing to shut down any more (its descriptor may be reused)."""
        with self._lock:
            self._timer.cancel()
            self._fd = None


class _Bounded:
    """Mixed into imaplib's IMAP4 / IMAP4_SSL: the deadline's watch, the line and literal limits."""

    _watch: _Watch
    host: str
    port: int

    def _create_socket(self, timeout: float | None) -> socket.socket:
        limit = min(timeout or IMAP_TIMEOUT, self._watch.remaining())
        sock = socket.create_connection((self.host or None, self.port), limit)
        self._watch.watch(sock)
        context = getattr(self, "ssl_context", None)
        if context is not None:
            return context.wrap_socket(sock, server_hostname=self.host)
        return sock

    def readline(self) -> bytes:
        """One response line, refused past IMAP_MAX_LINE bytes."""
        line = self.file.readline(IMAP_MAX_LINE + 1)  # type: ignore[attr-defined]
        if len(line) > IMAP_MAX_LINE:
            raise _Refused(f"the server sent a response line longer than {IMAP_MAX_LINE:,} bytes")
        return line

    def read(self, size: int) -> bytes:
        """A literal the server announced as {size}: refused unread past READ_LIMIT bytes."""
        if size > READ_LIMIT:
            raise _Refused(f"the server announced a {size:,}-byte literal (limit {READ_LIMIT:,})")
        return self.file.read(size)  # type: ignore[attr-defined]


class _IMAP4(_Bounded, imaplib.IMAP4):
    def __init__(self, host: str, port: int, watch: _Watch) -> None:
        self._watch = watch
        super().__init__(host, port, timeout=IMAP_TIMEOUT)


class _IMAP4_SSL(_Bounded, imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, watch: _Watch) -> None:
        self._watch = watch
        super().__init__(host, port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT)


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ImapSource:
    """An IMAP folder; processed messages move to the ``processed`` folder, rejected ones to ``rejected``."""

    def __init__(self, url: str, *, deadline: float = IMAP_DEADLINE) -> None:
        parts = urlsplit(url)
        # As given, with the port, but never the password: user@host:port/FOLDER.
        host_port = parts.netloc.rpartition("@")[2]
        shown = f"{parts.scheme}://{parts.username or ''}@{host_port}{parts.path}"
        self.name = shown
        if not parts.hostname or not parts.username:
            raise DigestError(f"bounce source {shown!r} needs a user and a host: imaps://user@host/FOLDER")
        if parts.password:
            raise DigestError(
                f"bounce source {shown!r}: put the password in {IMAP_PASSWORD_ENV}, not in the URL"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise DigestError(
                f"bounce source {shown!r}: unknown option {sorted(unknown)[0]!r}; only starttls"
            )
        starttls = query.get("starttls", ["false"])[-1].lower() in ("1", "true", "yes", "on")
        secure = parts.scheme == "imaps"
        if not secure and not starttls and not _is_loopback(parts.hostname):
            raise DigestError(
                f"bounce source {shown!r} would send the password in clear text; "
                "use imaps:// or add ?starttls=true"
            )
        password = os.environ.get(IMAP_PASSWORD_ENV)
        if not password:
            raise DigestError(f"bounce source {shown!r}: set the IMAP password in {IMAP_PASSWORD_ENV}")
        try:
            port = parts.port or (993 if secure else 143)
        except ValueError:
            raise DigestError(f"bounce source {shown!r}: the port is not a number") from None
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self._created: set[str] = set()
        self._deleted: list[bytes] = []
        self._broken = False
        self._watch = _Watch(deadline)
        try:
            self._connect(parts.hostname, port, secure, starttls, unquote(parts.username), password)
        except DigestError:
            self.close()
            raise

    def _connect(self, host: str, port: int, secure: bool, starttls: bool, user: str, password: str) -> None:
        try:
            if secure:
                self._imap: imaplib.IMAP4 = _IMAP4_SSL(host, port, self._watch)
            else:
                self._imap = _IMAP4(host, port, self._watch)
                if starttls:
                    self._imap.starttls(ssl.create_default_context())
            self._imap.login(user, password)
        except (*_FAILURES, _Refused) as exc:
            if self._watch.expired:
                raise self._failure("cannot log in", exc) from None
            raise DigestError(
                f"{self.name}: cannot log in ({_imap_text(exc)}); check the URL and the password"
            ) from None
        with self._guard("cannot open the folder"):
            # The capabilities after login (MOVE, say) may differ from those in the greeting.
            status, data = self._imap.capability()
            text = b" ".join(d for d in data if isinstance(d, bytes)) if status == "OK" else b""
            self._caps = set(text.upper().split()) | _capabilities(self._imap)
            status, data = self._imap.select(_quote(self.folder))
        if status != "OK":
            raise DigestError(f"{self.name}: cannot open folder {self.folder!r} ({_imap_text(data)})")

    def _failure(self, what: str, exc: BaseException) -> DigestError:
        if self._watch.expired or isinstance(exc, _Refused):
            self._broken = True  # the stream is cut or out of step: no LOGOUT, just hang up
        if self._watch.expired:
            return DigestError(
                f"{self.name}: {what}: gave up after {self._watch.seconds:g} s ([bounces] deadline); "
                "what was read is recorded, the rest is read next time"
            )
        if isinstance(exc, _Refused):
            return DigestError(f"{self.name}: {what}: {exc}; the connection was dropped")
        return DigestError(f"{self.name}: {what} ({_imap_text(exc) or type(exc).__name__})")

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Any failure of the connection inside as one DigestError line."""
        try:
            yield
        except (*_FAILURES, _Refused) as exc:
            raise self._failure(what, exc) from None

    def messages(self) -> Iterator[tuple[Any, bytes]]:
        """Each message in the folder, by UID, read without setting \\Seen, at most READ_LIMIT bytes."""
        with self._guard("cannot list messages"):
            status, data = self._imap.uid("SEARCH", "UNDELETED")
        if status != "OK":
            raise DigestError(f"{self.name}: cannot list messages ({_imap_text(data)})")
        uids = (data[0] or b"").split()
        for uid in uids:
            what = f"cannot read message {uid.decode(errors='replace')}"
            with self._guard(what):
                status, fetched = self._imap.uid("FETCH", uid, f"(BODY.PEEK[]<0.{READ_LIMIT}>)")
            if status != "OK":
                raise DigestError(f"{self.name}: {what} ({_imap_text(fetched)})")
            body = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if body is None:
                continue  # expunged meanwhile
            yield uid, bytes(body)

    def done(self, handle: Any) -> None:
        """Move the message to ``processed``: UID MOVE when the server has it, else COPY + delete."""
        self._move(handle, PROCESSED)

    def reject(self, handle: Any) -> None:
        """Move the message to ``rejected``, as :meth:`done` does to ``processed``."""
        self._move(handle, REJECTED)

    def _move(self, handle: Any, folder: str) -> None:
        with self._guard(f"cannot move message {handle!r} to {folder!r}"):
            if folder not in self._created:
                self._imap.create(_quote(folder))  # fails harmlessly when it exists
                self._created.add(folder)
            if b"MOVE" in self._caps:
                status, data = self._imap.uid("MOVE", handle, _quote(folder))
            else:
                status, data = self._imap.uid("COPY", handle, _quote(folder))
                if status == "OK":
                    status, data = self._imap.uid("STORE", handle, "+FLAGS.SILENT", r"(\Deleted)")
                    self._deleted.append(handle)
        if status != "OK":
            raise DigestError(
                f"{self.name}: cannot move message {handle!r} to {folder!r} ({_imap_text(data)}); "
                "it is recorded and will only be moved next time"
            )

    def close(self) -> None:
        """Expunge what was copied away and log out (within the deadline), then stop the watch."""
        imap = getattr(self, "_imap", None)
        if imap is not None and self._broken:
            with contextlib.suppress(OSError):
                imap.shutdown()
        elif imap is not None:
            with contextlib.suppress(*_FAILURES, _Refused):
                if imap.state == "SELECTED" and self._deleted:
                    # Only what was copied away: UID EXPUNGE (UIDPLUS) leaves others' \Deleted alone.
                    if b"UIDPLUS" in self._caps:
                        imap.uid("EXPUNGE", b",".join(self._deleted))
                    else:
                        imap.expunge()
            # LOGOUT, not CLOSE: CLOSE would expunge every \Deleted message of the folder.
            with contextlib.suppress(*_FAILURES, _Refused):
                imap.logout()  # closes the socket, whatever the server answers
        self._watch.stop()


def _capabilities(imap: imaplib.IMAP4) -> set[bytes]:
    return {c.encode() if isinstance(c, str) else c for c in imap.capabilities}


def _quote(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:200]
