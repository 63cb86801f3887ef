"""What a send did: :class:`DeliveryReport`, returned by a send, a dry run and a test send."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeliveryReport:
    """What a send did. Counts are for this run; ``queued`` is what is still waiting."""

    issue_id: int
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    throttled: int = 0  # replies of the relay that said "too fast" (those rows went again)
    queued: int = 0
    total: int = 0
    requeued: int = 0  # failed rows put back by retry_failed
    duration: float = 0.0
    transport: str = ""
    status: str = ""
    dry_run: bool = False
    test: bool = False
    interrupted: bool = False
    signal: int = 0  # the signal that interrupted the send (SIGINT 2, SIGTERM 15), 0 if none
    warnings: list[str] = field(default_factory=list)
    variants: dict[str, int] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages handled per second in this run."""
        done = self.sent + self.failed + self.deferred
        return done / self.duration if self.duration > 0 else 0.0

    def summary(self) -> str:
        """One line: sent, failed, deferred, skipped, duration, messages/s."""
        text = (
            f"sent {self.sent}, failed {self.failed}, deferred {self.deferred}, skipped {self.skipped}"
            f" in {self.duration:.1f}s ({self.rate:.0f} messages/s)"
        )
        if self.throttled:
            text += f"; the relay throttled {self.throttled} times, the send slowed down"
        return text
