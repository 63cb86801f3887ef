"""Transports: send one prepared message to one recipient, then close.

Chosen by URL::

    smtp://[user@]host:port[?starttls=true]   plain SMTP, optionally upgraded (STARTTLS required then)
    smtps://[user@]host:port                  SMTP over TLS from the first byte
    maildir:PATH                              write into a maildir (no server needed)
    mbox:PATH                                 append to an mbox file

The SMTP client is deliberately small: it speaks just enough ESMTP to send a
prepared message quickly (the envelope goes out in one write when the server
offers PIPELINING, RFC 2920), verifies TLS certificates, never falls back to
plain text when STARTTLS was asked for, and puts a timeout on every network
call. The password only ever comes from ``DIGEST_SMTP_PASSWORD``.
"""

from __future__ import annotations

import base64
import contextlib
import mailbox
import re
import socket
import ssl
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from digest.config import SMTP_PASSWORD_ENV, Config
from digest.errors import DigestError

__all__ = [
    "ConnectionLost",
    "MaildirTransport",
    "MboxTransport",
    "Reply",
    "SMTPTransport",
    "Transport",
    "TransportError",
    "TransportSpec",
    "open_transport",
    "parse_transport_url",
]

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Reply:
    """A server's answer to one message: code, enhanced status code and text."""

    code: int
    text: str = ""
    enhanced: str | None = None
    stage: str = "data"  # mail / rcpt / data / message: where the answer came from

    @property
    def ok(self) -> bool:
        """True for a 2xx reply (accepted)."""
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        """True for a 4xx reply (try again later)."""
        return 400 <= self.code < 500

    def describe(self) -> str:
        """One line: ``550 5.1.1 no such user``."""
        parts = [str(self.code)]
        if self.enhanced and not self.text.startswith(self.enhanced):
            parts.append(self.enhanced)
        if self.text:
            parts.append(self.text)
        return " ".join(parts)


def make_reply(code: int, lines: list[str], stage: str) -> Reply:
    """Build a :class:`Reply` from a code and its text lines, parsing any enhanced code."""
    text = lines[0].strip() if len(lines) == 1 else " ".join(line.strip() for line in lines if line.strip())
    m = _ENHANCED.match(text)
    return Reply(code=code, text=text[:500], enhanced=m.group(0) if m else None, stage=stage)


class TransportError(DigestError):
    """A problem that stops the whole run (bad credentials, refused greeting, no TLS...).

    Rows that were not sent stay queued; the message says what to fix.
    """


class ConnectionLost(Exception):
    """The connection broke or timed out; reconnect and try the message again."""


class Transport(Protocol):
    """Send one prepared message to one recipient; close when done."""

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Deliver ``message`` (CRLF line endings) to ``recipient``; return the server's reply.

        ``dot_safe``: the caller guarantees no line starts with ".", so SMTP dot-stuffing
        (a scan of the whole message) is skipped. Raises :class:`ConnectionLost` when the
        connection broke (the caller retries on a new transport) and :class:`TransportError`
        when the run must stop.
        """
        ...

    def close(self) -> None:
        """Release the connection or file."""
        ...


@dataclass(frozen=True)
class TransportSpec:
    """A parsed transport URL."""

    scheme: str  # smtp / smtps / maildir / mbox
    host: str = ""
    port: int = 0
    user: str = ""
    starttls: bool = False
    path: str = ""

    def describe(self) -> str:
        """The URL without secrets, for messages."""
        if self.scheme in ("maildir", "mbox"):
            return f"{self.scheme}:{self.path}"
        user = f"{self.user}@" if self.user else ""
        tls = "?starttls=true" if self.starttls else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}{tls}"


_SCHEME_NAME = re.compile(r"[a-z][a-z0-9+.-]*")
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?")


def _without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` part removed, for error messages."""
    if "@" not in url:
        return url
    prefix = _SCHEME_PREFIX.match(url)
    head = prefix.group(0) if prefix else ""
    return head + url[len(head) :].rpartition("@")[2]


def parse_transport_url(url: str) -> TransportSpec:
    """Parse a transport URL; raise DigestError naming what is wrong."""
    url = (url or "").strip()
    hint = "use smtp://[user@]host:port[?starttls=true], smtps://host:port, maildir:PATH or mbox:PATH"
    if not url:
        raise DigestError(f"no transport configured; {hint}")
    shown = _without_userinfo(url)  # messages never echo a user or password
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise DigestError(f"transport {shown!r} has no scheme; {hint}")
    if scheme in ("maildir", "mbox"):
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise DigestError(f"transport {shown!r} needs a path, like {scheme}:outbox")
        return TransportSpec(scheme=scheme, path=unquote(path))
    if scheme not in ("smtp", "smtps"):
        named = f" {scheme!r}" if _SCHEME_NAME.fullmatch(scheme) else ""
        raise DigestError(f"unknown transport scheme{named} in {shown!r}; {hint}")
    parts = urlsplit(url)
    if parts.password is not None:
        raise DigestError(
            f"transport {scheme}://…: put no password in the URL; set {SMTP_PASSWORD_ENV} instead"
        )
    if not parts.hostname:
        raise DigestError(f"transport {shown!r} has no host; {hint}")
    try:
        port = parts.port or (465 if scheme == "smtps" else 25)
    except ValueError:
        raise DigestError(f"transport {shown!r}: the port must be a number from 1 to 65535") from None
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls"}
    if unknown:
        raise DigestError(f"transport {shown!r}: unknown option(s) {', '.join(sorted(unknown))}; {hint}")
    starttls_value = query.get("starttls", "false")
    if starttls_value not in ("true", "false", "1", "0", "yes", "no"):
        raise DigestError(f"transport {shown!r}: starttls must be true or false")
    starttls = starttls_value in ("true", "1", "yes")
    if starttls and scheme == "smtps":
        raise DigestError(f"transport {shown!r}: smtps is already TLS; drop ?starttls=true")
    return TransportSpec(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        starttls=starttls,
    )


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
"""Hosts a password may be sent to without TLS (the connection never leaves the machine)."""


def open_transport(url: str, config: Config, *, timeout: float | None = None) -> Transport:
    """Open the transport named by ``url`` (relative paths resolve against the config folder)."""
    spec = parse_transport_url(url)
    if spec.scheme == "maildir":
        return MaildirTransport(config.path(spec.path))
    if spec.scheme == "mbox":
        return MboxTransport(config.path(spec.path))
    user = spec.user or config.delivery.smtp_user
    return SMTPTransport(
        spec,
        user=user,
        password=config.smtp_password,
        timeout=timeout if timeout is not None else config.delivery.timeout,
        local_hostname=_helo_name(config),
    )


def _helo_name(config: Config) -> str:
    _, _, domain = config.publication.from_address.rpartition("@")
    domain = domain.strip(" >").lower()
    return domain if re.fullmatch(r"[a-z0-9.-]+", domain or "-") else socket.getfqdn()


# ---------------------------------------------------------------- files


class MaildirTransport:
    """Deliver into a maildir (``new/``); each message is written to ``tmp/`` and renamed."""

    def __init__(self, path: Path) -> None:
        try:
            self._box = mailbox.Maildir(str(path), create=True)
        except OSError as exc:
            raise TransportError(f"maildir {path}: cannot create it ({exc.strerror})") from None
        self.path = path

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Store the message; it carries its own headers, so sender/recipient are unused here."""
        msg = mailbox.MaildirMessage(message.replace(b"\r\n", b"\n"))
        try:
            key = self._box.add(msg)
        except OSError as exc:
            raise TransportError(f"maildir {self.path}: cannot write ({exc.strerror})") from None
        return Reply(250, f"stored {key}", stage="message")

    def close(self) -> None:
        """Nothing to release."""
        self._box.close()


class MboxTransport:
    """Append to an mbox file, holding its lock for each message."""

    def __init__(self, path: Path) -> None:
        if not path.parent.exists():
            raise TransportError(f"mbox {path}: folder {path.parent} does not exist")
        self.path = path
        self._box = mailbox.mbox(str(path), create=True)

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Append the message with an mboxrd ``From `` separator."""
        msg = mailbox.mboxMessage(message.replace(b"\r\n", b"\n"))
        msg.set_from(sender or "MAILER-DAEMON")
        try:
            self._box.lock()
            try:
                self._box.add(msg)
                self._box.flush()
            finally:
                self._box.unlock()
        except (OSError, mailbox.ExternalClashError) as exc:
            raise TransportError(f"mbox {self.path}: cannot append ({exc})") from None
        return Reply(250, "appended", stage="message")

    def close(self) -> None:
        """Release the file."""
        self._box.close()


# ---------------------------------------------------------------- SMTP


class SMTPTransport:
    """One persistent SMTP connection, opened lazily, reopened by the caller after a loss."""

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

    # -- connection

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

    def connect(self) -> None:
        """Open the connection: greeting, EHLO, STARTTLS/TLS, AUTH."""
        self.close()
        try:
            raw = socket.create_connection((self.spec.host, self.spec.port), timeout=self.timeout)
        except TimeoutError:
            raise ConnectionLost(f"{self.where}: no connection within {self.timeout:g}s") from None
        except ConnectionRefusedError:
            raise ConnectionLost(f"{self.where}: connection refused (no server on that port)") from None
        except OSError as exc:
            raise ConnectionLost(f"{self.where}: cannot connect ({exc.strerror or exc})") from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.spec.scheme == "smtps" or self.spec.starttls or not _kernel_timeouts(raw, self.timeout):
            raw.settimeout(self.timeout)  # TLS needs Python's own timeouts
        self.sock = raw
        if self.aborted:
            self.close()
            raise ConnectionLost(f"{self.where}: the send is stopping")
        self._buf = b""
        self.sent_on_connection = 0
        try:
            if self.spec.scheme == "smtps":
                self._wrap_tls()
            code, lines = self._read_reply()
            if code == 554 or (code >= 500 and code != 521):
                raise TransportError(
                    f"{self.where} refused the session: {code} {' '.join(lines)}; "
                    "check that this host may send through it"
                )
            if code != 220:
                raise ConnectionLost(f"{self.where} greeted with {code} {' '.join(lines)}")
            self._ehlo()
            if self.spec.starttls:
                if "STARTTLS" not in self.extensions:
                    raise TransportError(
                        f"{self.where} does not offer STARTTLS, which the transport URL requires; "
                        "refusing to send in plain text (use smtps:// or fix the server)"
                    )
                code, lines = self._command(b"STARTTLS")
                if code != 220:
                    raise TransportError(f"{self.where} refused STARTTLS: {code} {' '.join(lines)}")
                self._wrap_tls()
                self._ehlo()
            if self.user:
                self._auth()
        except BaseException:
            self.close()
            raise

    def _wrap_tls(self) -> None:
        assert self.sock is not None
        try:
            self.sock = self.ssl_context.wrap_socket(self.sock, server_hostname=self.spec.host)
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"{self.where}: TLS certificate not trusted ({exc.verify_message}); "
                "fix the server's certificate or the host name in the transport URL"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raise ConnectionLost(f"{self.where}: TLS handshake failed ({exc})") from None
        self.sock.settimeout(self.timeout)
        self._buf = b""

    def _ehlo(self) -> None:
        code, lines = self._command(b"EHLO " + self.local_hostname.encode("ascii"))
        self.extensions = {}
        if code == 250:
            for line in lines[1:]:
                keyword, _, params = line.partition(" ")
                self.extensions[keyword.upper()] = params
            return
        code, lines = self._command(b"HELO " + self.local_hostname.encode("ascii"))
        if code != 250:
            raise ConnectionLost(f"{self.where} refused HELO: {code} {' '.join(lines)}")

    def _auth(self) -> None:
        if self.password is None:
            raise TransportError(
                f"{self.where}: user {self.user!r} is set but {SMTP_PASSWORD_ENV} is not; "
                "export the password in the environment"
            )
        if not isinstance(self.sock, ssl.SSLSocket) and self.spec.host not in LOOPBACK_HOSTS:
            raise TransportError(
                f"{self.where}: refusing to send the password over an unencrypted connection; "
                "use smtps:// or ?starttls=true"
            )
        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods:
            token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
            code, lines = self._command(f"AUTH PLAIN {token}".encode())
        elif "LOGIN" in methods:
            code, lines = self._command(b"AUTH LOGIN")
            if code == 334:
                code, lines = self._command(base64.b64encode(self.user.encode()))
            if code == 334:
                code, lines = self._command(base64.b64encode(self.password.encode()))
        else:
            raise TransportError(
                f"{self.where} offers no AUTH PLAIN or LOGIN; remove the user from the transport URL "
                "or enable TLS so the server offers authentication"
            )
        if code != 235:
            raise TransportError(
                f"{self.where} rejected the login for {self.user!r}: {code} {' '.join(lines)}; "
                f"check the user and {SMTP_PASSWORD_ENV}"
            )

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

    # -- messages

    def _envelope(self, sender: str, recipient: str) -> bytes:
        params = b" SMTPUTF8" if "SMTPUTF8" in self.extensions and not (sender + recipient).isascii() else b""
        return b"MAIL FROM:<%s>%s\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender.encode(), params, recipient.encode())

    def send(
        self,
        message: bytes,
        sender: str,
        recipient: str,
        *,
        dot_safe: bool = False,
        next_envelope: tuple[str, str] | None = None,
    ) -> Reply:
        """Send one message in one transaction and return the reply to its content.

        ``dot_safe`` skips the dot-stuffing scan (the caller guarantees no line starts
        with "."). ``next_envelope`` = (sender, recipient) of the message the caller will
        send next on this connection: with PIPELINING its MAIL/RCPT/DATA go out in the
        same write as this message's content (RFC 2920), so each message costs one round
        trip. Calling with another message next closes the connection (the announced
        transaction is abandoned, never completed). A 421 closes the connection and raises
        ConnectionLost, like a dropped connection.
        """
        pending, self._pending = self._pending, None
        if pending is not None and (pending != (sender, recipient) or self.sock is None):
            self.close()  # the announced transaction can only be abandoned by closing
            pending = None
        if self.sock is None:
            self.connect()
        pipelining = "PIPELINING" in self.extensions
        if pending is None:
            if pipelining:
                self._send(self._envelope(sender, recipient))
            else:
                return self._send_unpipelined(message, sender, recipient, dot_safe)
        replies = [self._read_reply() for _ in range(3)]
        for (code, lines), stage in zip(replies, ("mail", "rcpt", "data"), strict=True):
            self._check_closing(code, lines)
            if stage == "data" and code == 354:
                break
            if code >= 300 or stage == "data":
                self._abandon(replies[2][0] == 354)
                return make_reply(code, lines, stage)
        announce = next_envelope is not None and pipelining
        reply = self._send_content(message, dot_safe, self._envelope(*next_envelope) if announce else b"")
        if announce:
            self._pending = next_envelope
        return reply

    def _check_closing(self, code: int, lines: list[str]) -> None:
        """A 421 at any point: the server is going away, so close and raise ConnectionLost."""
        if code == 421:
            self.close()
            raise ConnectionLost(f"{self.where} is closing the connection: 421 {' '.join(lines)}")

    def _send_content(self, message: bytes, dot_safe: bool, after: bytes) -> Reply:
        """The message after DATA's 354 (dot-stuffed unless ``dot_safe``), its end marker and
        ``after`` (the next envelope, pipelined) in one write; the reply to the content."""
        if not dot_safe and (message.startswith(b".") or b"\n." in message):
            message = _dot_stuff(message)
        tail = b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n"
        self._send_parts(message, tail + after)
        code, lines = self._read_reply()
        self.sent_on_connection += 1
        self._check_closing(code, lines)
        return make_reply(code, lines, "message")

    def _abandon(self, data_accepted: bool) -> None:
        """A transaction failed before its content: end it cleanly so the next one starts afresh."""
        with contextlib.suppress(ConnectionLost):
            if data_accepted:  # a server that said 354 without a valid recipient: send nothing
                self._send(b".\r\n")
                self._read_reply()
            self._command(b"RSET")

    def _send_unpipelined(self, message: bytes, sender: str, recipient: str, dot_safe: bool) -> Reply:
        envelope = self._envelope(sender, recipient).split(b"\r\n")
        for line, stage, ok in zip(
            envelope, ("mail", "rcpt", "data"), ((250,), (250, 251), (354,)), strict=False
        ):
            code, lines = self._command(line)
            self._check_closing(code, lines)
            if code not in ok:
                if stage != "mail":
                    self._abandon(False)
                return make_reply(code, lines, stage)
        return self._send_content(message, dot_safe, b"")


def _kernel_timeouts(sock: socket.socket, seconds: float) -> bool:
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


def _dot_stuff(message: bytes) -> bytes:
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\n.", b"\n..")


def transport_for_display(url: str) -> str:
    """The transport URL as it is safe to print."""
    try:
        return parse_transport_url(url).describe()
    except DigestError:
        return "(invalid transport)"


def default_transport_url(config: Config) -> str:
    """The configured transport (``load_config`` has already applied $DIGEST_TRANSPORT)."""
    return config.delivery.transport
