"""Locks in the database: one a process holds while it lives, one a transaction holds.

:func:`serialize` makes the transactions that name the same thing run one after another
(what SQLite's one writer gives every transaction, PostgreSQL gives only when asked): a
check-then-write such as a rate limit or "is this address new?" then holds across hosts.

:func:`hold_database_lock` (the scheduler's) takes a session-level advisory lock (``pg_try_advisory_lock``)
on a connection of its own and keeps that connection open, idle, until the work ends.

Why an advisory lock on a dedicated connection, not a lease row with an expiry:

- The lock belongs to the server's session, so it ends exactly when the session does.
  A process killed with SIGKILL (or that crashes) has its socket closed by its kernel;
  the server ends the session at once and the lock is free for the next holder.
- A host that vanishes (power cut, network gone) closes nothing. For that the session
  asks the server to probe the idle connection (:data:`KEEPALIVE`: TCP keepalives and a
  user timeout), so the server ends the session, and frees the lock, within about half a
  minute. No clock is involved: a lease row depends on the holder renewing it in time
  and on clocks agreeing, and a holder that stalls past its expiry (a paused VM, a long
  garbage collection, a stopped process) runs on after another has taken over without
  knowing. Here the holder can ask the server: :meth:`DatabaseLock.held` checks that this
  session still holds the lock, and the scheduler asks before every job, so a holder
  whose session was ended never starts another job.
- Nothing is written, so a lock costs no table, no migration and no clean-up.

Who holds it is visible in ``pg_stat_activity`` (its ``application_name`` names the
process and host); a refused process is told that. The lock is per database: two
workspaces on one server do not exclude each other.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

from digest.errors import DigestError
from digest.store.dialect import is_postgresql

KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "25000",
}
"""Server-side settings for the lock's session: a peer that stops answering is dropped after
about 25 s (ignored on a Unix socket, where the kernel says at once that a peer is gone)."""

WAIT_STEP_S = 1.0
"""How often a waiting process asks for the lock again."""


def serialize(db: Any, name: str) -> None:
    """Inside a transaction: wait until no other open transaction has serialized on ``name``,
    and keep others waiting until this one ends (commit or rollback).

    On PostgreSQL a transaction-level advisory lock keyed by a hash of ``name``; on SQLite
    nothing, since :func:`~digest.store.database.transaction` holds the one write lock from
    BEGIN. Taking the same name twice in one transaction is fine. Callers that take several
    names take them in one order (no deadlock)."""
    if is_postgresql(db):
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", [name])


class DatabaseLock:
    """A held advisory lock: its connection, and :meth:`held` to check it still is."""

    def __init__(self, db: Any, key: int, where: str) -> None:
        self.db = db
        self.key = key
        self.where = where

    def held(self) -> bool:
        """Whether this session still holds the lock (False once the server ended it)."""
        try:
            row = self.db.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = ? AND objid = ? AND objsubid = 1",
                _halves(self.key),
            ).fetchone()
        except (sqlite3.Error, DigestError):  # the store's errors: the session is gone
            return False
        return bool(row and row[0])


def _halves(key: int) -> tuple[int, int]:
    """``pg_locks`` shows a bigint advisory key as its high and low 32 bits."""
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


def _holder(db: Any, key: int) -> str:
    """Who holds ``key`` in this database, as its ``application_name`` says (or "another process")."""
    try:
        row = db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid = ? AND l.objid = ? AND l.objsubid = 1",
            _halves(key),
        ).fetchone()
    except (sqlite3.Error, DigestError):
        return "another process"
    return str(row[0]) if row and row[0] else "another process"


@contextlib.contextmanager
def hold_database_lock(
    url: str,
    key: int,
    name: str,
    busy: Callable[[str], DigestError],
    *,
    wait: Callable[[], bool] | None = None,
) -> Iterator[DatabaseLock]:
    """Hold the advisory lock ``key`` of the PostgreSQL database at ``url`` for the block.

    ``name`` says what holds it (shown to a refused process with its pid and host). When
    another session holds it, raise ``busy(holder)``, or, with ``wait``, ask again every
    :data:`WAIT_STEP_S` while ``wait()`` is True (it returns False to give up: then
    ``busy`` is raised). The lock ends with the block, or with the process.
    """
    from digest.store.postgres import connect  # lazy: start-up (psycopg only for PostgreSQL)

    db = connect(url)
    try:
        label = f"digest {name} pid {os.getpid()} on {socket.gethostname()}"[:63]
        db.execute("SELECT set_config('application_name', ?, false)", [label])
        for setting, value in KEEPALIVE.items():
            with contextlib.suppress(sqlite3.OperationalError):  # a server too old for one
                db.execute("SELECT set_config(?, ?, false)", [setting, value])
        while not db.execute("SELECT pg_try_advisory_lock(?)", [key]).fetchone()[0]:
            if wait is None or not wait():
                raise busy(_holder(db, key))
            time.sleep(WAIT_STEP_S)
        yield DatabaseLock(db, key, db.where)
    finally:
        db.close()  # ending the session releases the lock
