"""Counting clicks in the web server without keeping readers: clicks are held, then counted.

A click on a story link is held in the worker's memory for ``[web] click_hold_seconds``
under a keyed hash of its client (address and agent). The key is made once per server,
in memory, before the workers fork, and never written anywhere: after a restart no stored
hash can be tied to anyone. When a client follows an issue's hidden canary link, its hash
is marked as a scanner's (``click_scanners``, for a hold's length, so every worker sees
it); when the hold is over, each held click is counted as a person's, or, if its client
was marked, as a scanner's. Only the two counts reach the database.

A HEAD request and a click from a known scanner agent while the issue is being delivered
are counted as a scanner's at once, never held.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from digest.stats.clicks import CountKey, add_counts, forget_scanners, mark_scanner, scanner_clients
from digest.store.database import iso, open_store

PROCESS_KEY = os.urandom(32)
"""Keys client hashes; made at import (in the server before it forks), never stored."""

SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|safelinks|microsoft office|ms-office|bingpreview|forcepoint|"
    r"sophos|trendmicro|symantec|messagelabs|fireeye|zscaler|cisco|ironport|checkpoint|appriver|"
    r"urldefense|python-requests|go-http-client|curl/|wget/|httpclient|libwww|java/|okhttp|headless",
    re.IGNORECASE,
)
"""User agents of mail scanners and link checkers (matched, never stored)."""

SCANNER_SECONDS = 120
"""How long after an issue's delivery a click from a scanner agent is taken for a scan."""


def client_key(address: str, agent: str) -> str:
    """The client's hash under :data:`PROCESS_KEY`: the same within this server's life only."""
    return hmac.new(PROCESS_KEY, f"{address}\n{agent}".encode(), hashlib.sha256).hexdigest()[:32]


def is_scanner_agent(agent: str) -> bool:
    """Whether a user agent is a known mail scanner or link checker."""
    return bool(SCANNER_AGENTS.search(agent or ""))


@dataclass
class _Held:
    at: float
    key: CountKey
    client: str


class ClickCounter:
    """One worker's held clicks; a background thread counts them once their hold is over."""

    def __init__(
        self, store: str | Path, hold_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.hold, self.clock = store, max(0.0, float(hold_seconds)), clock
        self._held: list[_Held] = []
        self._scanned: dict[CountKey, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def click(self, issue_id: int, link: str, client: str) -> None:
        """Hold a story click until its client is known not to be a scanner."""
        with self._lock:
            self._held.append(_Held(self.clock(), (issue_id, link), client))
        self._start()

    def scanned(self, issue_id: int, link: str) -> None:
        """Count a click that is a scanner's on its face (HEAD, an early scanner agent)."""
        with self._lock:
            key = (issue_id, link)
            self._scanned[key] = self._scanned.get(key, 0) + 1
        self._start()

    def canary(self, db: sqlite_utils.Database, issue_id: int, link: str, client: str) -> None:
        """A client followed the hidden canary: mark it for a hold's length on either side."""
        until = datetime.fromtimestamp(self.clock() + 2 * self.hold + 1, UTC)
        mark_scanner(db, client, iso(until))
        self.scanned(issue_id, link)

    def flush(self, *, everything: bool = False) -> None:
        """Count the clicks whose hold is over (all of them with ``everything``)."""
        now = self.clock()
        with self._lock:
            due = [h for h in self._held if everything or h.at <= now - self.hold]
            self._held = [h for h in self._held if not (everything or h.at <= now - self.hold)]
            scanned, self._scanned = self._scanned, {}
        if not due and not scanned:
            return
        try:
            self._count(now, due, scanned)
        except BaseException:
            with self._lock:  # the database was busy: count them next round
                self._held[:0] = due
                for key, n in scanned.items():
                    self._scanned[key] = self._scanned.get(key, 0) + n
            raise

    def _count(self, now: float, due: list[_Held], scanned: dict[CountKey, int]) -> None:
        counts = {key: (0, n) for key, n in scanned.items()}
        db = open_store(self.store, migrate=False)
        try:
            stamp = iso(datetime.fromtimestamp(now, UTC))
            scanners = scanner_clients(db, (h.client for h in due), stamp)
            for h in due:
                clicks, scanner = counts.get(h.key, (0, 0))
                counts[h.key] = (clicks, scanner + 1) if h.client in scanners else (clicks + 1, scanner)
            add_counts(db, counts)
            forget_scanners(db, iso(datetime.fromtimestamp(now, UTC) - timedelta(seconds=1)))
        finally:
            db.conn.close()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="click-counter", daemon=True)
                self._thread.start()
                atexit.register(self.flush, everything=True)

    def _run(self) -> None:
        pause = min(1.0, max(0.1, self.hold / 4))
        while True:
            time.sleep(pause)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a busy database: the clicks wait for the next round
                continue
