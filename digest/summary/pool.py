"""Run slow calls a few at a time, each with its own deadline, and give up on a dead service.

A model call cannot be interrupted, so a call past its deadline is abandoned on a daemon
thread (it can never keep the process alive) and its result ignored. It keeps its *slot*
until it returns: at most ``concurrency`` calls run in the process at once, counting
abandoned ones, so calls that never return cannot pile up threads build after build (a
long-running scheduler). A job that waits ``timeout`` for a slot times out like a call.
After ``give_up_after`` timeouts the remaining jobs are not started (:class:`GaveUp`).
Results come back to the caller's thread, which alone touches the database.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

GIVE_UP_AFTER = 3
"""Timeouts in one :func:`run_all` after which the service is taken for dead."""

# Calls running in this process (abandoned ones included), and the condition every
# finished call signals: a result is in, and a slot is free.
_changed = threading.Condition()
_running_calls = 0


class TimedOut(Exception):
    """The call did not finish (``started``) or could not start within its timeout."""

    def __init__(self, *, started: bool = True) -> None:
        super().__init__("timed out" if started else "timed out waiting for a free slot")
        self.started = started


class GaveUp(Exception):
    """The call was not made: too many calls before it timed out."""


@dataclass
class Outcome(Generic[T, R]):
    """One finished call: the item, and its result or the exception it raised."""

    item: T
    result: R | None = None
    error: BaseException | None = None


def run_all(
    call: Callable[[T], R],
    items: Iterable[T],
    *,
    concurrency: int,
    timeout: float,
    give_up_after: int = GIVE_UP_AFTER,
) -> Iterator[Outcome[T, R]]:
    """Yield an :class:`Outcome` per item as calls finish, at most ``concurrency`` at once
    (in the whole process); a call still running ``timeout`` seconds after it started, or
    still waiting for a slot ``timeout`` seconds after its turn came, yields
    :class:`TimedOut`; after ``give_up_after`` of those every item not started yields
    :class:`GaveUp` at once."""
    run = _Run(call, concurrency, timeout)
    pending = deque(items)
    timeouts = 0
    while pending or run.waiting or run.running:
        if timeouts >= give_up_after:
            for item in [*(item for item, _ in run.waiting.values()), *pending]:
                yield Outcome(item, error=GaveUp())
            run.waiting.clear()
            pending.clear()
            if not run.running:
                break
        while pending and len(run.waiting) + len(run.running) < concurrency:
            run.queue(pending.popleft())
        for outcome in run.step():
            timeouts += isinstance(outcome.error, TimedOut)
            yield outcome


class _Run(Generic[T, R]):
    """The jobs of one :func:`run_all`: waiting for a slot, or running, each with a deadline."""

    def __init__(self, call: Callable[[T], R], concurrency: int, timeout: float) -> None:
        self.call, self.concurrency, self.timeout = call, concurrency, timeout
        self.waiting: dict[int, tuple[T, float]] = {}  # ticket → (item, deadline)
        self.running: dict[int, tuple[T, float]] = {}
        self.finished: list[tuple[int, R | None, BaseException | None]] = []  # guarded by _changed
        self._tickets = 0

    def queue(self, item: T) -> None:
        """Give ``item`` its turn: it starts as soon as a slot is free."""
        self._tickets += 1
        self.waiting[self._tickets] = (item, time.monotonic() + self.timeout)

    def step(self) -> list[Outcome[T, R]]:
        """Start what a free slot allows, wait for a result or the next deadline, and return
        the outcomes that came of it."""
        global _running_calls
        with _changed:
            for ticket in list(self.waiting):
                if _running_calls >= self.concurrency:
                    break
                item, _ = self.waiting.pop(ticket)
                _running_calls += 1
                self.running[ticket] = (item, time.monotonic() + self.timeout)
                thread = threading.Thread(target=self._work, args=(ticket, item), daemon=True)
                thread.name = "digest-summary"
                thread.start()
            deadlines = [d for _, d in (*self.waiting.values(), *self.running.values())]
            if deadlines and not self.finished:
                _changed.wait(max(0.0, min(deadlines) - time.monotonic()))
            finished, self.finished = self.finished, []
        outcomes = [Outcome(self.running.pop(n)[0], r, e) for n, r, e in finished if n in self.running]
        now = time.monotonic()
        for jobs, started in ((self.running, True), (self.waiting, False)):
            for ticket in [t for t, (_, deadline) in jobs.items() if deadline <= now]:
                outcomes.append(Outcome(jobs.pop(ticket)[0], error=TimedOut(started=started)))
        return outcomes

    def _work(self, ticket: int, item: T) -> None:
        global _running_calls
        result: R | None = None
        error: BaseException | None = None
        try:
            result = self.call(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as this item's outcome
            error = exc
        with _changed:
            _running_calls -= 1
            self.finished.append((ticket, result, error))
            _changed.notify_all()
