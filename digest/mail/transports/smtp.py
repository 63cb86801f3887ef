"""SMTP: ``smtp://[user@]host:port[?starttls=true]`` and ``smtps://[user@]host:port``.

:class:`SMTPTransport` sends prepared messages over one persistent connection
(:class:`~digest.mail.transports.smtp_session.SMTPSession` opens it, on
:class:`~digest.mail.transports.smtp_wire.SMTPWire`). The client is deliberately small: it
speaks just enough ESMTP to send quickly (the envelope goes out in one write when the
server offers PIPELINING, RFC 2920), verifies TLS certificates, never falls back to plain
text when STARTTLS was asked for, and puts a timeout on every network call.
:func:`check_smtp` is the doctor's check: the same session, QUIT before MAIL FROM.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
from typing import ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from digest.config import SMTP_PASSWORD_ENV, Config
from digest.errors import DigestError
from digest.mail.transports.base import (
    URL_HINT,
    Capabilities,
    ConnectionLost,
    Probe,
    Reply,
    TransportBase,
    TransportError,
    TransportSpec,
    make_reply,
)
from digest.mail.transports.smtp_session import LOOPBACK_HOSTS, SMTPSession

__all__ = ["NO_SMTPUTF8", "SMTPTransport", "check_smtp", "helo_name", "parse_smtp_url"]

NO_SMTPUTF8 = Reply(
    code=553,
    text="5.6.7 relay does not accept international addresses (it does not offer SMTPUTF8)",
    enhanced="5.6.7",
    stage="rcpt",
)
"""The answer for an international address through a relay without SMTPUTF8 (RFC 6531's
5.6.7 at RCPT), made here without asking: the reader fails alone, nothing goes on the wire."""


def parse_smtp_url(scheme: str, url: str, shown: str) -> TransportSpec:
    """Read an ``smtp://`` or ``smtps://`` URL; raise DigestError naming what is wrong."""
    hint = URL_HINT
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


def check_smtp(spec: TransportSpec, config: Config, timeout: float) -> Probe:
    """Open a session with the server as a send would, then QUIT before MAIL FROM."""
    transport = SMTPTransport.open(spec, config, timeout)
    try:
        transport.connect()
    except TransportError as exc:
        problem, _, fix = str(exc).partition("; ")  # the transport's errors say "what; what to do"
        return Probe("fail", problem, fix or "fix delivery.transport or the server")
    except ConnectionLost as exc:
        reason = str(exc).removeprefix(f"{transport.where}: ")
        return Probe(
            "fail",
            f"{transport.where} does not answer as an SMTP server ({reason})",
            "check delivery.transport's host and port, and that the server runs",
        )
    try:
        encrypted = isinstance(transport.sock, ssl.SSLSocket)
        offered = "STARTTLS" in transport.extensions
    finally:
        transport.close()
    steps = ["connected with TLS" if spec.scheme == "smtps" else "connected", "EHLO"]
    if spec.starttls:
        steps.append("STARTTLS")
    if transport.user:
        steps.append(f"AUTH as {transport.user}")
    done = ", ".join(steps)
    if not encrypted and spec.host not in LOOPBACK_HOSTS:
        warning = "the session is not encrypted" + (" although the server offers STARTTLS" if offered else "")
        fix = "add ?starttls=true to delivery.transport" if offered else "use smtps:// or STARTTLS"
        return Probe("warn", f"{spec.describe()}: {done}; but {warning}", fix)
    return Probe("ok", f"{spec.describe()}: {done} (no message sent)")


def helo_name(config: Config) -> str:
    """The EHLO name digest gives: the From address's domain (else this host's FQDN)."""
    _, _, domain = config.publication.from_address.rpartition("@")
    domain = domain.strip(" >").lower()
    return domain if re.fullmatch(r"[a-z0-9.-]+", domain or "-") else socket.getfqdn()


class SMTPTransport(TransportBase, SMTPSession):
    """One persistent SMTP connection, opened lazily, reopened by the caller after a loss."""

    capabilities: ClassVar[Capabilities] = Capabilities(sends_real_mail=True, doctor_check=check_smtp)

    @classmethod
    def parse(cls, scheme: str, url: str, shown: str) -> TransportSpec:
        """Read an ``smtp://`` or ``smtps://`` URL (see :func:`parse_smtp_url`)."""
        return parse_smtp_url(scheme, url, shown)

    @classmethod
    def open(cls, spec: TransportSpec, config: Config, timeout: float | None) -> SMTPTransport:
        """Not connected yet: the first :meth:`send` (or :meth:`connect`) opens the session.
        The user defaults to ``delivery.smtp_user``, the password to ``DIGEST_SMTP_PASSWORD``."""
        return cls(
            spec,
            user=spec.user or config.delivery.smtp_user,
            password=config.smtp_password,
            timeout=timeout if timeout is not None else config.delivery.timeout,
            local_hostname=helo_name(config),
        )

    def message_limit(self) -> int | None:
        """The relay's EHLO SIZE once connected (else the declared limit, none for SMTP)."""
        limit = self.extensions.get("SIZE", "")
        return int(limit) if limit.isdigit() and int(limit) > 0 else self.capabilities.size_limit

    def carries(self, sender: str, recipient: str) -> bool:
        """Whether this connection can carry the envelope: plain ASCII, or the relay offers
        SMTPUTF8 (RFC 6531) for an international address. Known once connected."""
        return (sender + recipient).isascii() or "SMTPUTF8" in self.extensions

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
        if not self.carries(sender, recipient):
            return NO_SMTPUTF8  # never sent: this reader fails alone, the run goes on
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
        announce = next_envelope is not None and pipelining and self.carries(*next_envelope)
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


def _dot_stuff(message: bytes) -> bytes:
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\n.", b"\n..")
