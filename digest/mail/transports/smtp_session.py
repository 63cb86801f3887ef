"""The SMTP session: connect, greeting, EHLO, STARTTLS or TLS from the first byte, AUTH.

:class:`SMTPSession` sits on :class:`~digest.mail.transports.smtp_wire.SMTPWire`; TLS
certificates are verified, STARTTLS is never skipped when the URL asks for it, and a
password never goes over plain text except to this machine (:data:`LOOPBACK_HOSTS`).
The password only ever comes from ``DIGEST_SMTP_PASSWORD``.
"""

from __future__ import annotations

import base64
import socket
import ssl

from digest.config import SMTP_PASSWORD_ENV
from digest.mail.transports.base import ConnectionLost, TransportError
from digest.mail.transports.smtp_wire import SMTPWire, kernel_timeouts

__all__ = ["LOOPBACK_HOSTS", "SMTPSession"]

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
"""Hosts a password may be sent to without TLS (the connection never leaves the machine)."""


class SMTPSession(SMTPWire):
    """An SMTP connection opened up to the point where a MAIL FROM may follow."""

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
        if self.spec.scheme == "smtps" or self.spec.starttls or not kernel_timeouts(raw, self.timeout):
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
