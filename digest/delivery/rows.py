"""What a connection worker carries: a claimed ledger :class:`Row` and the :class:`Result` of sending it;
the :class:`Counters` a process's workers add their outcomes to."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from digest.mail.transports import Reply


@dataclass
class Row:
    """A claimed ledger row, as a connection worker carries it."""

    id: int
    subscriber_id: int | None
    email: str
    variant: str
    message_id: str
    name: str = ""
    tries: int = 0  # attempts in this run
    throttles: int = 0  # ...of which the relay answered "too fast" (they use no try)
    attributes: str | None = None  # the subscriber's attributes (JSON), for merge fields


@dataclass
class Result:
    """What happened to a row: sent / failed / deferred / skipped (recorded in batches)."""

    row: Row
    status: str
    reply: Reply | None = None
    error: str | None = None
    bounced: bool = False
    at: str = ""


@dataclass
class Counters:
    """This process's outcome counts (shared by its connection threads)."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    throttled: int = 0  # replies (and greetings) that said "too fast"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, n: int = 1) -> None:
        """Count ``n`` rows of ``status``."""
        with self.lock:
            setattr(self, status, getattr(self, status) + n)

    def as_dict(self) -> dict[str, int]:
        """The counts by status."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "deferred": self.deferred,
            "skipped": self.skipped,
            "throttled": self.throttled,
        }
