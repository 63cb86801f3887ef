"""A connection's refusals held back until it is clear whose they are.

A refusal may be the reader's or the send's (see :mod:`digest.delivery.policy`).
Two kinds are held back instead of recorded at once:

- a *repeatable* refusal (a 5.7.x policy refusal, a bare 550): when the same one
  (:func:`~digest.delivery.policy.reply_key`) comes back for
  :data:`~digest.delivery.policy.REPEATS_TO_STOP` readers in a row on a connection,
  it was about the message or the sender;
- a *bad mailbox* (5.1.x) before the relay has accepted any message of this run,
  unless the reply names the reader: the same one for the first readers of a send
  (of the whole run, counted over its connections) is the relay's, not theirs.

Then the run stops and the held rows go back to the queue with the rest: nobody is
failed, nobody is marked bounced. Any other outcome on the connection (a 250, another
refusal) settles them: recorded as failed, bad mailboxes bounced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from digest.delivery.policy import REPEATS_TO_STOP, Outcome, names_recipient, reply_key
from digest.delivery.rows import Result, Row
from digest.mail.transports import Reply, TransportError
from digest.mail.transports import transport_for_display as display

if TYPE_CHECKING:
    from digest.delivery.worker import Run

__all__ = ["PARK_POLL_SECONDS", "RefusalWindow"]

PARK_POLL_SECONDS = 0.05
"""How often a connection that ended with bad mailboxes held looks whether the run proved the relay."""


class RefusalWindow:
    """One connection's held refusals (a streak of the same one) and the rules that end it."""

    def __init__(
        self, run: Run, record: Callable[[Result], None], keep: Callable[[], None] = lambda: None
    ) -> None:
        self.run = run
        self.record = record  # the worker's: queue a result for the next commit
        self.keep = keep  # the worker's: renew its leases while parked (PostgreSQL)
        self.held: list[Result] = []
        self.key: str | None = None  # the refusal held (policy.reply_key)

    def suspect(self, outcome: Outcome, reply: Reply, row: Row) -> bool:
        """Whether a failure may be about the send rather than the reader (then :meth:`hold` it)."""
        if outcome.repeatable:
            return True
        return outcome.bounced and not self.run.proven and not names_recipient(reply.text, row.email)

    def hold(self, result: Result, reply: Reply) -> None:
        """Hold a suspect failure back; TransportError (the run stops, this row and the held
        ones are requeued by the worker) when the same refusal has come back often enough."""
        key = reply_key(reply)
        if key != self.key:
            self.settle()
            self.key = key
        streak = len(self.held) + 1
        first = self._unproven_count(result, key)
        if max(streak, first) >= REPEATS_TO_STOP:
            self.run.refused.append(key)
            hint = (
                "; nobody was marked bounced (if these readers' mailboxes really are gone, mark them"
                " with `digest subscribers bounce`)"
                if result.bounced
                else ""
            )
            raise TransportError(
                f"{display(self.run.url)} gave {max(streak, first)} different recipients in a row the same"
                f" refusal: {reply.describe()}; it is about the message or the sender, not the readers{hint}"
            )
        self.held.append(result)

    def settle(self) -> None:
        """The held refusals were the readers' after all: record them (and their bounces)."""
        for result in self.held:
            self.record(result)
        self.held = []
        self.key = None

    def release(self) -> list[Row]:
        """The run stopped: the held rows, to go back to the queue unrecorded."""
        rows = [result.row for result in self.held]
        self.held = []
        self.key = None
        return rows

    def park(self) -> None:
        """The connection is done with bad mailboxes held and nothing accepted yet: wait until
        the run proves the relay, stops, or every other connection waits too, so that a refusal
        another connection finds to be the send's never bounces readers here."""
        if not any(result.bounced for result in self.held):
            return
        run = self.run
        with run.counters.lock:
            run.parked += 1
        try:
            while not (run.proven or run.stop.is_set() or run.fatal):
                with run.counters.lock:
                    if run.parked >= run.running:
                        return
                self.keep()  # the held rows stay this sender's however long the others take
                time.sleep(PARK_POLL_SECONDS)
        finally:
            with run.counters.lock:
                run.parked -= 1

    def _unproven_count(self, result: Result, key: str) -> int:
        """How often the run has held this bad-mailbox refusal before the relay accepted
        anything, this one counted (0 when ``result`` is not such a refusal)."""
        if not result.bounced or self.run.proven:
            return 0
        with self.run.counters.lock:
            self.run.unproven[key] = self.run.unproven.get(key, 0) + 1
            return self.run.unproven[key]
