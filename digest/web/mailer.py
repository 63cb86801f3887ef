"""Transactional mail from the web app, sent after the answer: a background sender per worker.

A request only stores the message (an ``outbox`` row, in its own transaction) and hands
the row id to :class:`OutboxSender`; one thread per worker process sends the rows it is
given, through the configured transport with its timeouts. A relay that is slow or says
nothing holds that thread, never a request. Each row is claimed in one UPDATE before it
leaves (:func:`digest.mail.outbox.send_outbox`), so the thread and ``digest run`` never both
send it; a row the thread could not send (the relay down, the worker stopped) stays in
the outbox for ``digest run``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from digest.config import Config
from digest.mail.outbox import send_outbox
from digest.store.database import open_store

log = logging.getLogger(__name__)

BATCH = 100  # rows handed over while the thread was busy go out together, in one session


class OutboxSender:
    """Send outbox rows in a background thread (started on first use, in the worker process)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Config, int]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, config: Config, row_ids: list[int]) -> None:
        """Send these rows (of ``config``'s database) soon, after the current request is answered."""
        self._start()
        for row_id in row_ids:
            self._queue.put((config, row_id))

    def _start(self) -> None:
        with self._lock:
            # The app is built in the master too (to check the config); threads do not cross a fork.
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._queue = queue.Queue()  # rows queued before a fork belong to the parent
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="digest-outbox", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            config, first = self._queue.get()
            ids = [first]
            while len(ids) < BATCH:
                try:
                    ids.append(self._queue.get_nowait()[1])
                except queue.Empty:
                    break
            try:
                self._send(config, ids)
            except Exception:  # the thread must outlive any one failure; digest run retries the rows
                log.exception("could not send %d transactional message(s); digest run retries them", len(ids))

    @staticmethod
    def _send(config: Config, ids: list[int]) -> None:
        db = open_store(config.store, migrate=False)
        try:
            report = send_outbox(db, config, ids=ids)
        finally:
            db.conn.close()
        if report.errors:
            log.warning("transactional mail: %s (%s)", report.summary(), report.errors[0][:200])
