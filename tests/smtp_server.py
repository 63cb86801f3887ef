"""A real SMTP server on 127.0.0.1 (aiosmtpd) whose answers the tests control.

``SMTPServer`` records every accepted message and lets a test decide, per
recipient and per attempt, what RCPT and DATA answer: a reply line, ``DROP``
(close the connection without answering) or None (accept). A ``SilentServer``
accepts TCP connections and never says a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

DROP = "DROP"

Policy = Callable[[str, int], str | None]


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    """aiosmtpd handler: policies per stage, a delay per message, a record of what arrived."""

    rcpt_policy: Policy | None = None
    data_policy: Policy | None = None
    delay: float = 0.0
    pipelining: bool = True
    on_message: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    rcpt_attempts: Counter[str] = field(default_factory=Counter)
    data_attempts: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    def _refusal(self, server, policy: Policy | None, attempts: Counter[str], address: str) -> str | None:
        """Count this attempt and ask the policy: its reply, or None to accept. DROP hangs up."""
        with self.lock:
            attempts[address] += 1
            attempt = attempts[address]
        reply = policy(address, attempt) if policy else None
        if reply == DROP:
            server.transport.close()
            return "250 OK"
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reply := self._refusal(server, self.rcpt_policy, self.rcpt_attempts, address):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        address = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        if reply := self._refusal(server, self.data_policy, self.data_attempts, address):
            return reply
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or b""))
        with self.lock:
            self.received.append(item)
        if self.on_message is not None:
            self.on_message(item)
        return "250 2.0.0 queued"

    def per_recipient(self) -> Counter[str]:
        """How many messages reached each address."""
        with self.lock:
            return Counter(a for r in self.received for a in r.rcpt_tos)

    def count_for(self, address: str) -> int:
        """How many messages reached ``address``."""
        with self.lock:
            return sum(1 for r in self.received if address in r.rcpt_tos)


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPServer:
    """aiosmtpd on 127.0.0.1 in a thread; use as a context manager."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        users: dict[str, str] | None = None,
        size_limit: int | None = None,
        smtputf8: bool = False,
    ) -> None:
        self.handler = handler or Handler()
        self.port = free_port()
        kwargs: dict = {"enable_SMTPUTF8": smtputf8}  # international addresses (RFC 6531)
        if size_limit is not None:
            kwargs["data_size_limit"] = size_limit  # advertised in EHLO as SIZE
        if users is not None:
            kwargs |= {
                "authenticator": _authenticator(users),
                "auth_require_tls": False,
                "auth_required": True,
            }
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    @property
    def url(self) -> str:
        """smtp://127.0.0.1:PORT"""
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _authenticator(users: dict[str, str]):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and users.get(auth_data.login.decode()) == (
            auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False)

    return check


class SilentServer:
    """Accepts connections (the kernel completes the handshake) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        """smtp://127.0.0.1:PORT"""
        return f"smtp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self.sock.accept()
                self.accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()
