"""Run slow calls a few at a time, each with its own deadline.

A model call cannot be interrupted, so a call past its deadline is abandoned on a daemon
thread (it can never keep the process alive) and its result ignored; its slot goes to the
next call. Results come back to the caller's thread, which alone touches the database.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class TimedOut(Exception):
    """The call did not finish within its timeout."""


@dataclass
class Outcome(Generic[T, R]):
    """One finished call: the item, and its result or the exception it raised."""

    item: T
    result: R | None = None
    error: BaseException | None = None


def run_all(
    call: Callable[[T], R], items: Iterable[T], *, concurrency: int, timeout: float
) -> Iterator[Outcome[T, R]]:
    """Yield an :class:`Outcome` per item as calls finish, at most ``concurrency`` at once;
    a call still running ``timeout`` seconds after it started yields a :class:`TimedOut`."""
    pending = list(items)
    pending.reverse()
    done: queue.Queue[tuple[int, R | None, BaseException | None]] = queue.Queue()
    running: dict[int, tuple[T, float]] = {}  # ticket → (item, deadline)
    ticket = 0

    def work(number: int, item: T) -> None:
        try:
            done.put((number, call(item), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as this item's outcome
            done.put((number, None, exc))

    while pending or running:
        while pending and len(running) < concurrency:
            item = pending.pop()
            ticket += 1
            running[ticket] = (item, time.monotonic() + timeout)
            threading.Thread(target=work, args=(ticket, item), daemon=True, name="digest-summary").start()
        wait = max(0.0, min(deadline for _, deadline in running.values()) - time.monotonic())
        try:
            number, result, error = done.get(timeout=wait)
        except queue.Empty:
            now = time.monotonic()
            for number in [n for n, (_, deadline) in running.items() if deadline <= now]:
                item, _ = running.pop(number)
                yield Outcome(item, error=TimedOut())
            continue
        if number in running:  # else it had already been given up on
            item, _ = running.pop(number)
            yield Outcome(item, result=result, error=error)
