"""The import's two threads: the reader (read, check, hold back) runs a couple of chunks ahead
of the writer (filter, write), which holds the database.

Entry point: :class:`ReadAhead`, used inside :func:`tuned_for_a_pipeline`.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import sys
import threading
from collections.abc import Iterator
from typing import Any


class ReadAhead:
    """Run a generator in a background thread, a couple of items ahead of its consumer.

    Parsing and checking a chunk is Python work; writing one is mostly SQLite's,
    which runs without the GIL. So the next chunks are parsed while the current
    one is written. At most ``depth`` items wait (memory stays flat). An
    exception in the generator is raised in the consumer; leaving the ``with``
    block early stops the thread.
    """

    _DONE = object()

    def __init__(self, items: Iterator[Any], depth: int = 2) -> None:
        self.items = items
        self.queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="subscriber-import-reader", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self.thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(entry, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _run(self) -> None:
        try:
            for item in self.items:
                if not self._put((True, item)):
                    return
            self._put((True, self._DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((False, exc))
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()

    def _consume(self) -> Iterator[Any]:
        while True:
            ok, item = self.queue.get()
            if not ok:
                raise item
            if item is self._DONE:
                return
            yield item


@contextlib.contextmanager
def tuned_for_a_pipeline() -> Iterator[None]:
    """While the reader thread and the writer run: a 0.5 ms thread switch interval, no cyclic GC.

    The writer gives up the GIL on every SQLite call and needs it back to go on;
    with the default 5 ms interval it waited each time for the busy reader to be
    interrupted (measured against a Python thread that never blocks: 11.5 s for
    writes that take 5.4 s alone; at 0.5 ms, 5.6 s). The rows of a chunk are lists
    and tuples of strings, freed by reference counting; the cyclic collector only
    walked them (~3,700 collections, ~0.9 s of a 1M-row import). Both are
    process-wide settings: the first import to start saves them and the last to
    end puts them back.
    """
    global _tuning_users, _tuning_saved
    with _TUNING_LOCK:
        if _tuning_users == 0:
            _tuning_saved = (sys.getswitchinterval(), gc.isenabled())
            sys.setswitchinterval(min(_tuning_saved[0], 0.0005))
            gc.disable()
        _tuning_users += 1
    try:
        yield
    finally:
        with _TUNING_LOCK:
            _tuning_users -= 1
            if _tuning_users == 0:
                interval, collecting = _tuning_saved
                if collecting:
                    gc.enable()
                sys.setswitchinterval(interval)


_TUNING_LOCK = threading.Lock()
_tuning_users = 0
_tuning_saved = (0.005, True)
