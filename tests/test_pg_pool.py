"""A web worker's PostgreSQL pool (digest.store.pg_pool) against a private server: connections
are reused, checked on checkout, not reused when left in a transaction, never shared across a
fork, and a request that cannot get one gets a one-line error in bounded time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psycopg
import pytest

from digest.errors import DigestError
from digest.store import pg_pool
from digest.store.pg_pool import PgPool
from digest.store.postgres import PASSWORD_ENV

LABEL = "digest test"


@pytest.fixture
def pool(pg_url: str) -> Iterator[PgPool]:
    keeper = PgPool(pg_url, 4, LABEL)
    yield keeper
    keeper.close()


def backend_pid(keeper: PgPool) -> int:
    """The server process of the connection a take() gives (given back at once)."""
    db = keeper.take()
    try:
        return db.execute("SELECT pg_backend_pid()").fetchone()[0]
    finally:
        db.close()


def sessions(url: str) -> list[tuple[int, str]]:
    """(pid, application_name) of this database's sessions named after the pool's label."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid, application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE %s ORDER BY pid",
            [f"{LABEL} pid %"],
        ).fetchall()
    return [(pid, name) for pid, name in rows]


def test_one_connection_serves_many_uses_and_is_named_after_the_process(pool: PgPool, pg_url: str) -> None:
    pids = {backend_pid(pool) for _ in range(50)}
    assert len(pids) == 1
    [(pid, name)] = sessions(pg_url)
    assert pid in pids and name.startswith(f"{LABEL} pid {os.getpid()} on ")
    # Values come and go as on SQLite: the pool's connections get the same set-up as connect().
    db = pool.take()
    try:
        assert db.execute("SELECT sum(x) FROM (VALUES (1), (2)) AS t(x)").fetchone()[0] == 3
        assert db.execute("SELECT ?", [True]).fetchone()[0] == 1
    finally:
        db.close()


def test_at_most_size_connections_are_held(pool: PgPool, pg_url: str) -> None:
    taken = [pool.take() for _ in range(4)]
    assert len({db.execute("SELECT pg_backend_pid()").fetchone()[0] for db in taken}) == 4
    for db in taken:
        db.close()
    for _ in range(20):
        backend_pid(pool)
    assert len(sessions(pg_url)) == 4


def test_closing_twice_gives_back_once(pool: PgPool) -> None:
    db = pool.take()
    db.close()
    db.conn.close()  # a second close (sqlite's spelling) must not give it back again
    first, second = pool.take(), pool.take()
    try:
        assert first.raw is not second.raw
    finally:
        first.close()
        second.close()


def test_a_connection_left_in_a_transaction_is_not_reused(pool: PgPool) -> None:
    db = pool.take()
    pid = db.execute("SELECT pg_backend_pid()").fetchone()[0]
    db.execute("BEGIN")
    db.execute("CREATE TABLE half_done (x INTEGER)")
    db.close()
    assert backend_pid(pool) != pid
    check = pool.take()
    try:
        assert check.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
    finally:
        check.close()


def test_connections_the_server_dropped_are_replaced_not_handed_out(pool: PgPool, pg_url: str) -> None:
    taken = [pool.take() for _ in range(4)]
    for db in taken:
        db.close()
    before = {pid for pid, _ in sessions(pg_url)}
    assert len(before) == 4
    with psycopg.connect(pg_url, autocommit=True) as admin:  # what a restart or failover does
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
            [f"{LABEL} pid %"],
        ).fetchall()
    started = time.monotonic()
    pid = backend_pid(pool)
    elapsed = time.monotonic() - started
    assert pid not in before
    # All four dead ones are swept at the first failed check, not tried one by one with the
    # pool's growing pauses (0 + 1 + 2 + 4 s).
    assert elapsed < 3.0, f"took {elapsed:.1f} s"
    assert not before & {backend_pid(pool) for _ in range(8)}


def test_a_request_that_gets_no_connection_in_time_gets_one_line(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_pool, "WAIT_S", 0.5)
    keeper = PgPool(pg_url, 1, LABEL)
    held = keeper.take()
    try:
        started = time.monotonic()
        with pytest.raises(DigestError) as caught:
            keeper.take()
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert "\n" not in message and message.startswith("cannot connect to PostgreSQL at ")
        assert "no connection within 0.5 s (this process uses at most 1 at once)" in message
    finally:
        held.close()
        keeper.close()


def test_a_server_that_refuses_gives_the_reason_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(pg_pool, "WAIT_S", 1.0)
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pw")
    keeper = PgPool(f"postgresql://digest@127.0.0.1:{port}/nowhere", 2, LABEL)
    try:
        with pytest.raises(DigestError) as caught:
            keeper.take()
    finally:
        keeper.close()
    message = str(caught.value)
    assert "\n" not in message and "s3cret-pw" not in message
    assert message.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}/nowhere: ")
    assert "refused" in message


def test_a_forked_child_makes_its_own_pool_and_leaves_the_parents_sessions(pool: PgPool) -> None:
    parent_pid = backend_pid(pool)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: only os._exit leaves it
        code = 1
        try:
            os.close(read)
            os.write(write, str(backend_pid(pool)).encode())
            pool.close()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_pid = int(pipe.read() or 0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_pid not in (0, parent_pid)
    # The parent's connection is still its own, alive and unchanged.
    assert backend_pid(pool) == parent_pid
