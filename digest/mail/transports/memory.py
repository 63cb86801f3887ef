"""``memory:NAME``: keep each message in a list in this process, for fast tests.

Like Django's ``locmem`` backend and its ``mail.outbox``: :func:`outbox` returns the
list a name collects (``memory:`` alone is ``memory:default``), :func:`clear_outboxes`
empties them all. Worker processes never fork for it (their messages would be lost
with them); nothing leaves the process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import ClassVar

from digest.config import Config
from digest.errors import DigestError
from digest.mail.transports.base import (
    REAL_SENDS_HINT,
    Capabilities,
    Probe,
    Reply,
    TransportBase,
    TransportSpec,
)

__all__ = ["MemoryTransport", "SentMessage", "clear_outboxes", "outbox"]

_OUTBOXES: dict[str, list[SentMessage]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SentMessage:
    """One message as it was handed over: the bytes, the envelope sender and recipient."""

    message: bytes
    sender: str
    recipient: str

    def parsed(self) -> EmailMessage:
        """The message parsed (headers decoded), for assertions."""
        parsed = message_from_bytes(self.message, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def outbox(name: str = "default") -> list[SentMessage]:
    """The messages ``memory:NAME`` has taken in this process, oldest first (a live list)."""
    with _LOCK:
        return _OUTBOXES.setdefault(name, [])


def clear_outboxes() -> None:
    """Forget every message of every memory outbox."""
    with _LOCK:
        for messages in _OUTBOXES.values():
            messages.clear()


def check_memory(spec: TransportSpec, config: Config, timeout: float) -> Probe:
    """The doctor's word on the memory transport: for tests only."""
    return Probe(
        "warn",
        f"{spec.describe()} keeps mail in the memory of the sending process; no mail leaves it",
        REAL_SENDS_HINT,
    )


class MemoryTransport(TransportBase):
    """Append each message to the outbox its URL names."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        sends_real_mail=False, forks_ok=False, doctor_check=check_memory
    )

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self.messages = outbox(name)

    @classmethod
    def parse(cls, scheme: str, url: str, shown: str) -> TransportSpec:
        """``memory:NAME`` (a plain name; empty is ``default``)."""
        name = url.partition(":")[2].removeprefix("//") or "default"
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise DigestError(
                f"transport {shown!r}: name the outbox with letters and digits, like memory:tests"
            )
        return TransportSpec(scheme=scheme, path=name)

    @classmethod
    def open(cls, spec: TransportSpec, config: Config, timeout: float | None) -> MemoryTransport:
        """The transport filling ``outbox(spec.path)``."""
        return cls(spec.path)

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Keep the message and its envelope; always accepted."""
        with _LOCK:
            self.messages.append(SentMessage(bytes(message), sender, recipient))
        return Reply(250, f"kept in memory:{self.name}", stage="message")

    def close(self) -> None:
        """Nothing to release."""
