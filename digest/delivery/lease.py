"""Leases: several senders deliver one issue together on a PostgreSQL store.

On SQLite one process sends an issue (the per-issue lock of :mod:`digest.delivery.send`)
and SQLite's single writer makes every claim safe; nothing here runs there. On PostgreSQL
any number of ``digest send`` / ``digest run`` processes, on one host or several, share the
issue's ledger:

- a claim locks the rows it takes (``FOR UPDATE ... SKIP LOCKED``: two senders never take
  the same row, and neither waits for the other) and marks each with its sender
  (``leased_by``: host, the send's process id, the worker) and the end of its lease
  (``lease_until``, ``[delivery] lease_seconds`` ahead);
- a sender renews the leases of the rows it holds as it commits its results
  (:meth:`Lease.due`: every third of the lease);
- a row whose holder is gone goes back to the queue (:func:`requeue_expired`) after this
  host's journals of senders that are gone were replayed, so what they had sent stays sent.
  A sender killed on this host is seen at once (its session, named after it, has ended);
  another host's, and a host that vanished, when its lease runs out (:data:`ENDED_SQL`). That
  reclaim holds a lock of its own (:func:`reclaiming`) so that two senders never requeue a
  row the other is replaying.

Times are the senders' clocks (UTC ISO-8601 to the millisecond): hosts that
share a store keep their clocks in step (NTP), well within a lease.

This module holds the ``deliveries`` SQL the leases need; :mod:`digest.delivery.ledger`
(the table's owner) calls it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlite_utils

from digest.store.database import utcnow
from digest.store.dialect import is_postgresql

__all__ = [
    "Lease",
    "freeze_lock",
    "held_by_others",
    "name_session",
    "reclaiming",
    "renew",
    "requeue_expired",
    "send_tag",
]

FREEZE_LOCK = 2_026_024
"""pg_advisory_xact_lock class: one sender at a time freezes an issue (the key is the issue id)."""
RECLAIM_LOCK = 2_026_025
"""pg_advisory_lock class: one sender at a time replays journals and requeues expired leases."""


def _stamp(ahead: float = 0.0) -> str:
    """Now (plus ``ahead`` seconds) in UTC to the millisecond: a lease's end and what it is
    compared with (the store's usual stamps are to the second, too coarse for a short lease)."""
    return (utcnow() + timedelta(seconds=ahead)).isoformat(timespec="milliseconds")


def send_tag() -> str:
    """This send's name in ``leased_by``: the host and the process id (workers add theirs)."""
    return f"{socket.gethostname()}/{os.getpid()}"


class Lease:
    """When one worker's leases end, and when they are due for renewal."""

    def __init__(self, holder: str, seconds: float) -> None:
        self.holder = holder
        self.seconds = max(0.001, seconds)
        self.renewed = time.monotonic()

    def until(self) -> str:
        """The end of a lease taken or renewed now."""
        return _stamp(self.seconds)

    def due(self) -> bool:
        """Whether a third of the lease has passed since it was last taken or renewed."""
        return time.monotonic() - self.renewed >= self.seconds / 3


def freeze_lock(db: sqlite_utils.Database, issue_id: int) -> None:
    """Inside the freeze's transaction on PostgreSQL: wait for another sender freezing the issue
    (the status it then reads is the one that sender committed). Nothing on SQLite."""
    if is_postgresql(db):
        db.execute("SELECT pg_advisory_xact_lock(?, ?)", [FREEZE_LOCK, issue_id])


@contextlib.contextmanager
def reclaiming(db: sqlite_utils.Database, issue_id: int) -> Iterator[None]:
    """Hold the issue's reclaim lock (PostgreSQL; nothing on SQLite, where the send lock does)."""
    if not is_postgresql(db):
        yield
        return
    db.execute("SELECT pg_advisory_lock(?, ?)", [RECLAIM_LOCK, issue_id])
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            db.execute("SELECT pg_advisory_unlock(?, ?)", [RECLAIM_LOCK, issue_id])


def renew(db: sqlite_utils.Database, issue_id: int, lease: Lease) -> None:
    """Move the end of the lease of every row ``lease``'s worker holds."""
    lease.renewed = time.monotonic()
    db.execute(
        "UPDATE deliveries SET lease_until = ? WHERE issue_id = ? AND status = 'sending' AND leased_by = ?",
        [lease.until(), issue_id, lease.holder],
    )


ENDED_SQL = (
    "(lease_until IS NULL OR lease_until < ? OR (substr(leased_by, 1, ?) = ? AND NOT EXISTS"
    " (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = left('digest ' || leased_by, 63))))"
)
"""A row in flight whose holder is done with it: its lease ended, or the holder ran on this
host and its session is gone (:func:`name_session`: a killed process's connection is closed
by its kernel and the server ends the session at once). Another host's holder waits for its
lease even when its session is gone: that host's own senders reclaim first if they can, since
only they can read its journals (what it sent but had not committed stays sent); a vanished
host's sessions linger anyway. Parameters: :func:`ended_params`."""


def ended_params() -> list[Any]:
    """The parameters of :data:`ENDED_SQL`: now, and this host's prefix of ``leased_by``."""
    here = f"{socket.gethostname()}/"
    return [_stamp(), len(here), here]


def name_session(db: sqlite_utils.Database, holder: str) -> None:
    """Name this connection's session after the worker holding the leases (``application_name``,
    which every role can read in ``pg_stat_activity``), so that others can tell when it is gone."""
    db.execute("SELECT set_config('application_name', ?, false)", [f"digest {holder}"[:63]])


def requeue_expired(db: sqlite_utils.Database, issue_id: int) -> int:
    """Rows in flight whose holder is done with them (:data:`ENDED_SQL`) go back to the queue;
    how many. Call it under :func:`reclaiming`, after this host's journals were replayed."""
    return db.execute(
        "UPDATE deliveries SET status = 'queued', leased_by = NULL, lease_until = NULL"
        f" WHERE issue_id = ? AND status = 'sending' AND {ENDED_SQL}",
        [issue_id, *ended_params()],
    ).rowcount


def held_by_others(db: sqlite_utils.Database, issue_id: int, send: str) -> tuple[int, int]:
    """Rows of the issue in flight with other sends than ``send`` (a :func:`send_tag`):
    (all of them, those whose holder is done with them: :data:`ENDED_SQL`)."""
    prefix = f"{send}/"
    held, expired = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {ENDED_SQL})"
        " FROM deliveries WHERE issue_id = ? AND status = 'sending'"
        " AND (leased_by IS NULL OR substr(leased_by, 1, ?) <> ?)",
        [*ended_params(), issue_id, len(prefix), prefix],
    ).fetchone()
    return int(held), int(expired)
