"""A web worker's PostgreSQL connections, kept in psycopg's pool (:mod:`psycopg_pool`).

A PostgreSQL connection costs a handshake (about 10 ms), so :class:`PgPool` keeps a few open
between requests, made with the options and set-up of every other connection digest makes
(:func:`~digest.store.postgres.target`, :func:`~digest.store.postgres.configure`), and hands
each out as a :class:`~digest.store.postgres.PgDatabase` whose ``close()`` gives it back:

- the pool is made in the process that uses it, on first use: gunicorn forks its workers, and
  a pool's threads and sockets never cross a fork. A pool found after a fork is the parent's:
  it is dropped, never closed (closing would end the parent's sessions on the shared sockets);
- at most ``size`` connections at once, busy or idle; while some go unused, one is closed
  every 10 minutes (the pool's ``max_idle``); each session is named after its worker
  (``application_name``, seen in ``pg_stat_activity``);
- each connection is checked on checkout: one the server dropped is replaced, not handed out,
  and the idle ones are then all checked at once (a restart or failover drops them together);
- one given back in a transaction or mid-command is closed, not reused; a broken one is
  replaced by the pool;
- a request waits at most :data:`WAIT_S` for a connection, then gets a one-line
  :class:`DigestError`.
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from typing import Any, Self

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from digest.errors import DigestError
from digest.store.postgres import (
    CONNECT_TIMEOUT_S,
    PgDatabase,
    Target,
    cannot_connect,
    configure,
    first_line,
    target,
)

WAIT_S = CONNECT_TIMEOUT_S
"""How long a request waits for a connection (a free one, or a new one being made)."""

_failures: dict[str, str] = {}
"""URL → why the last attempt to connect there failed (gone after a success): the pool connects
in its own threads, so a request that waited in vain reads the reason here."""


class _PooledConnection(psycopg.Connection[Any]):
    """psycopg's connection, noting in :data:`_failures` why connecting failed."""

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        try:
            conn = super().connect(conninfo, **kwargs)
        except psycopg.Error as exc:
            _failures[conninfo] = first_line(exc)
            raise
        _failures.pop(conninfo, None)
        return conn


class _WorkerPool(ConnectionPool[Any]):
    """psycopg's pool, set up for one web worker (see the module)."""

    def __init__(self, to: Target, size: int, name: str) -> None:
        super().__init__(
            to.url,
            kwargs=to.options,
            connection_class=_PooledConnection,
            configure=configure,
            check=self._check_or_sweep,
            min_size=0,
            max_size=size,
            timeout=WAIT_S,
            name=name,
            open=True,
        )

    def _check_or_sweep(self, conn: psycopg.Connection[Any]) -> None:
        """The check on checkout (:meth:`ConnectionPool.check_connection`: an empty query).
        When it fails, every idle connection is checked now: the server most likely dropped
        them all, and the pool would otherwise try them one by one, pausing 1, 2, 4 s between."""
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            self.check()
            raise


def _give_back(pool: ConnectionPool[Any], raw: psycopg.Connection[Any]) -> None:
    """Return ``raw`` to ``pool``; one left in a transaction or mid-command is closed first, so
    the pool replaces it (it would roll the transaction back and hand the session out again)."""
    if not raw.closed and raw.info.transaction_status != TransactionStatus.IDLE:
        raw.close()
    pool.putconn(raw)


def _close_pool(pool: ConnectionPool[Any], pid: int) -> None:
    if os.getpid() == pid:  # never a parent's pool in a forked child (see the module)
        pool.close()


class PgPool:
    """The PostgreSQL connections of one process: at most ``size``, kept between uses; each
    session is named ``"<label> pid N on HOST"``. :meth:`take` gives one; close it to give it
    back."""

    def __init__(self, url: str, size: int, label: str) -> None:
        self.url = url
        self.size = size
        self.label = label
        self.where = target(url).where
        self._pool: _WorkerPool | None = None
        self._pid = 0
        self._closer: weakref.finalize | None = None
        self._lock = threading.Lock()

    def take(self) -> PgDatabase:
        """A checked connection, waiting at most :data:`WAIT_S` for one; ``close()`` gives it back."""
        pool = self._current()
        try:
            raw = pool.getconn()
        except PoolTimeout:
            raise self._no_connection() from None
        return PgDatabase(raw, self.where, release=lambda conn: _give_back(pool, conn))

    def close(self) -> None:
        """Close the idle connections and stop the pool's threads (connections still out are
        closed when given back); a later :meth:`take` starts a new pool."""
        with self._lock:
            closer, self._closer, self._pool = self._closer, None, None
        if closer is not None:
            closer()

    def _current(self) -> _WorkerPool:
        """This process's pool, made on first use (and anew in a forked child)."""
        with self._lock:
            pid = os.getpid()
            if self._pool is not None and self._pid == pid:
                return self._pool
            if self._closer is not None:
                self._closer.detach()  # the parent's: dropped, not closed
            name = f"{self.label} pid {pid} on {socket.gethostname()}"
            self._pool = _WorkerPool(target(self.url, application_name=name), self.size, self.label)
            self._pid = pid
            # Closed when this object goes away, or at exit: the server sees the sessions end.
            self._closer = weakref.finalize(self, _close_pool, self._pool, pid)
            return self._pool

    def _no_connection(self) -> DigestError:
        """The one line for a request that waited :data:`WAIT_S` in vain."""
        failure = _failures.get(self.url)
        if failure:
            return cannot_connect(self.where, failure)
        return cannot_connect(
            self.where, f"no connection within {WAIT_S} s (this process uses at most {self.size} at once)"
        )
