"""The per-send guards: an issue whose readers complain or hard-bounce too much pauses its send.

Gmail's line for complaints is 0.3 % of delivered mail; a list with more than a few
percent of dead addresses is one nobody cleaned. When, during a send, an issue's
complaints (ARF reports, from ``digest bounces process``) pass ``[bounces] complaint_rate``
percent of its delivered rows, or its hard bounces (5.1.x refusals at RCPT during the
send, and hard bounce reports) pass ``bounce_rate`` percent of the rows tried, the send
pauses: no more rows are claimed, every unsent row stays queued, and the send stops with
the reason (exit 1). Neither rate is judged before ``min_sample`` rows were tried, so the
first bounce of a small list pauses nothing. ``digest send ISSUE --resume`` sends on past
the guards, on purpose.

The check runs where a connection claims its next rows, at most about once a second per
process and sooner while a send is young (every 10 % more rows recorded): a few indexed
count queries, not one per row. Entry point: :class:`SendGuard`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlite_utils

from digest.config import Config
from digest.delivery.ledger import guard_counts

if TYPE_CHECKING:
    from digest.delivery.worker import Worker

__all__ = ["GUARD_SECONDS", "Reports", "SendGuard", "guard_pauses"]

GUARD_SECONDS = 1.0
"""The longest a process goes between two checks while it sends."""
_GROWTH = 0.1  # ...and it checks again once its recorded rows grew by this much (at least _STEP)
_STEP = 20

Reports = Callable[[sqlite_utils.Database, int], tuple[int, int]]
"""``reports(db, issue_id)`` → (hard bounces, complaints) reported for the issue (bounce reports
and ARF complaints, one per reader): digest.bounces.process.issue_reports."""


@dataclass
class SendGuard:
    """The lines (percent) and the minimum sample, and when this process checks next."""

    complaint_rate: float
    bounce_rate: float
    min_sample: int
    reports: Reports | None = None
    _next_at: float = 0.0
    _next_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, config: Config, reports: Reports | None) -> SendGuard:
        """The guard of ``[bounces]``, reading reports with ``reports``."""
        b = config.bounces
        return cls(b.complaint_rate, b.bounce_rate, b.min_sample, reports)

    def before_the_send(self, db: sqlite_utils.Database, issue_id: int) -> str | None:
        """The first check, before any connection claims a row (a send paused before stays
        paused, with nothing sent); the next ones come as rows are recorded (:meth:`due`)."""
        self.due(0)
        return self.check(db, issue_id)

    def due(self, recorded: int) -> bool:
        """Whether to check now, with ``recorded`` rows recorded by this process so far."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_at and recorded < self._next_count:
                return False
            self._next_at = now + GUARD_SECONDS
            self._next_count = recorded + max(_STEP, int(recorded * _GROWTH))
            return True

    def check(self, db: sqlite_utils.Database, issue_id: int) -> str | None:
        """Why the send of ``issue_id`` must pause now (None: go on)."""
        sent, failed, refused_hard = guard_counts(db, issue_id)
        reported_hard, complaints = self.reports(db, issue_id) if self.reports else (0, 0)
        tried = sent + failed
        if tried < self.min_sample:
            return None
        hard = refused_hard + reported_hard
        if hard * 100 > self.bounce_rate * tried:
            return _why(issue_id, "hard bounces", hard, tried, "tried", "bounce_rate", self.bounce_rate)
        if sent and complaints * 100 > self.complaint_rate * sent:
            return _why(
                issue_id, "complaints", complaints, sent, "delivered", "complaint_rate", self.complaint_rate
            )
        return None


def _why(issue_id: int, what: str, count: int, base: int, of: str, key: str, line: float) -> str:
    return (
        f"issue {issue_id} paused: {what} are {100 * count / base:.1f}% ({count} of {base} {of}),"
        f" over the line of [bounces] {key} = {line:g}%; clean the list or find the cause,"
        f" then `digest send {issue_id} --resume` sends on past the guard"
    )


def guard_pauses(worker: Worker) -> bool:
    """Before a claim: whether the send guards pause the send (:class:`SendGuard`).
    Then the run stops with the reason, and every unsent row goes back to the queue."""
    run = worker.run
    guard, counters = run.guard, run.counters
    if guard is None or not guard.due(counters.sent + counters.failed):
        return False
    worker.flush()  # this connection's results count too
    why = guard.check(worker.ledger.db, run.issue_id)
    if why is None:
        return False
    with counters.lock:
        if why not in run.fatal:
            run.fatal.append(why)
    run.stop.set()
    return True
