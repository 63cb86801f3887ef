"""The send's pace: :class:`Pace`, shared by one process's connections, slows down when the
relay says "too fast" and grows back when its replies are clean again.

A relay throttles with a 421 (closing the connection), a ``451``/``454`` with an enhanced
code 4.7.x, or a 4xx whose text says so (:func:`digest.delivery.policy.throttling`).
Such a reply is about the send's speed, not the reader: the row goes back to its
connection's retry heap (:func:`throttle_delay`) without using one of its tries, and the
pace is cut (AIMD, as TCP does it):

- *multiplicative decrease*: on a throttle reply the allowed rate halves (from the rate
  measured over the last second when the send had no limit; with too few replies to
  measure, only the connections are cut) and half the connections are parked (they keep
  their rows and wait for a slot). Replies to messages already in flight arrive together,
  so cuts are at least :data:`CUT_HOLD_SECONDS` apart;
- *additive increase*: after :data:`GROW_AFTER` clean replies in a row the rate grows by
  one step (a quarter of the pace before the first cut) and one connection comes back;
  back at that pace, the limit is lifted (or is the configured ``delivery.rate`` again).

The pace waits on the run's clock (:class:`digest.delivery.worker.Clock`), so a test's fake
clock drives it too. :attr:`Pace.changes` keeps (time, rate) for each change. An *episode*
of throttling runs from the first cut until the pace is all the way back;
``delivery.throttle_patience`` bounds how long one may last.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Protocol

from digest.mail.transports import Reply, TransportError
from digest.mail.transports import transport_for_display as display

if TYPE_CHECKING:
    from digest.delivery.worker import Run

__all__ = [
    "CUT_HOLD_SECONDS",
    "GROW_AFTER",
    "MIN_RATE",
    "THROTTLE_RETRY_MAX_SECONDS",
    "THROTTLE_RETRY_SECONDS",
    "Pace",
    "throttle_delay",
    "throttle_pause",
]

CUT_HOLD_SECONDS = 1.0
"""Throttle replies within this long after a cut belong to it (messages already in flight)."""
GROW_AFTER = 10
"""Clean replies in a row (no throttle between) that grow the pace back by one step."""
STEPS_BACK = 4
"""Steps from a cut pace back to the pace before the first cut."""
MIN_RATE = 0.5
"""The pace never falls below this many messages per second."""
THROTTLE_RETRY_SECONDS = 1.0
"""First wait before a throttled row goes again; doubles with each throttle of that row..."""
THROTTLE_RETRY_MAX_SECONDS = 30.0
"""...up to this."""
_MEASURE_SECONDS = 1.0  # the window the unlimited pace is measured over...
_MEASURE_LEAST = 5  # ...when it holds at least this many replies


class _Clock(Protocol):
    def now(self) -> float: ...

    def wait(self, stop: threading.Event, seconds: float) -> bool: ...


def throttle_delay(throttles: int) -> float:
    """Seconds before a row throttled ``throttles`` times (this one counted) goes again."""
    return min(THROTTLE_RETRY_MAX_SECONDS, THROTTLE_RETRY_SECONDS * 2 ** max(0, throttles - 1))


class Pace:
    """At most :attr:`rate` messages per second (0: no limit) over at most :attr:`allowed` of
    ``connections`` at once, adapted to the relay's throttle replies (see the module)."""

    def __init__(self, rate: float, connections: int, clock: _Clock) -> None:
        self.clock = clock
        self.ceiling = rate  # the configured rate (0: none): the pace grows back to it, not past
        self.rate = rate
        self.connections = max(1, connections)
        self.allowed = self.connections
        self.busy = 0
        self.next = clock.now()
        self.clean = 0  # clean replies since the last throttle reply
        self.before = 0.0  # the pace before the first cut of this episode (0: not throttled)
        self.step = 0.0
        self.last_cut: float | None = None
        self.first_throttle: float | None = None  # when this episode of throttling began
        self.throttles = 0
        self.answered_at: deque[float] = deque()
        self.changes: list[tuple[float, float]] = []
        self.cond = threading.Condition()

    def acquire(self, stop: threading.Event) -> None:
        """Wait for a connection slot and for this message's turn (or until ``stop``)."""
        with self.cond:
            while self.busy >= self.allowed and not stop.is_set():
                self.cond.wait(0.05)
            self.busy += 1
            now = self.clock.now()
            slot = max(now, self.next)
            self.next = slot + (1.0 / self.rate if self.rate else 0.0)
        if slot > now:
            self.clock.wait(stop, slot - now)

    def release(self) -> None:
        """The message is answered (or lost): its slot is free."""
        with self.cond:
            self.busy -= 1
            self.cond.notify()

    def clean_reply(self) -> None:
        """A reply that was not a throttle: count it; grow back after enough in a row."""
        now = self.clock.now()
        with self.cond:
            self.answered_at.append(now)
            while self.answered_at and self.answered_at[0] < now - _MEASURE_SECONDS:
                self.answered_at.popleft()
            self.clean += 1
            slowed = self.before or self.allowed < self.connections
            if not slowed or self.clean < GROW_AFTER:
                return
            self.clean = 0
            self.allowed = min(self.connections, self.allowed + 1)
            if self.before:
                self.rate += self.step
                if self.rate >= self.before:
                    self.rate, self.allowed, self.before = self.ceiling, self.connections, 0.0
            if not self.before and self.allowed == self.connections:
                self.first_throttle = None  # recovered: a later throttle starts its own episode
            self.changes.append((now, self.rate))
            self.cond.notify_all()

    def throttled(self) -> None:
        """A throttle reply: cut the pace (once per :data:`CUT_HOLD_SECONDS`)."""
        now = self.clock.now()
        with self.cond:
            self.throttles += 1
            self.clean = 0
            if self.first_throttle is None:
                self.first_throttle = now
            if self.last_cut is not None and now - self.last_cut < CUT_HOLD_SECONDS:
                return
            self.allowed = max(1, self.allowed // 2)
            self.last_cut = now
            measured = len(self.answered_at) / _MEASURE_SECONDS
            if not self.rate and measured < _MEASURE_LEAST:
                # Too few replies yet to know the pace: fewer connections first.
                self.changes.append((now, self.rate))
                return
            current = self.rate or measured
            if not self.before:
                self.before = current
                self.step = max(MIN_RATE / 2, current / STEPS_BACK)
            self.rate = max(MIN_RATE, current / 2)
            self.changes.append((now, self.rate))

    def throttled_for(self) -> float:
        """Seconds since this episode of throttling began (0: not throttled now): an episode
        ends only when the pace has grown all the way back."""
        with self.cond:
            return 0.0 if self.first_throttle is None else self.clock.now() - self.first_throttle


def throttle_pause(run: Run, reply: Reply, throttles: int) -> float:
    """The relay throttled a message or a connection (the ``throttles``-th time in a row for
    it): cut the process's pace and return how long to wait before trying it again;
    TransportError once the run has been throttled for ``delivery.throttle_patience``."""
    if run.limiter is None:
        run.limiter = Pace(0.0, 1, run.clock)
    run.limiter.throttled()
    run.counters.add("throttled")
    patience = run.config.delivery.throttle_patience
    waited = run.limiter.throttled_for()
    if waited >= patience:
        raise TransportError(
            f"{display(run.url)} kept throttling the send for {waited:.0f}s"
            f" (delivery.throttle_patience is {patience:g}s; last: {reply.describe()});"
            " run `digest send` again later"
        )
    return min(throttle_delay(throttles), patience - waited)
