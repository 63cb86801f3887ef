"""Which store the tests run on: SQLite (the default) or PostgreSQL (``DIGEST_TEST_STORE=postgresql``).

On PostgreSQL every workspace the factory makes (:func:`conftest.new_workspace`) gets its own
fresh database on one private server for the whole session (its ``[storage] url``), and
:func:`store_at` opens, for a path a test would give SQLite, the database that stands for it
in this test. Fresh databases are copies of a template that already holds the schema (the
migrations run once per session, not once per test); each is dropped when its test ends.

Tests that need an SQLite file by nature (its path, PRAGMAs, journal files, a copy from
SQLite) carry ``@pytest.mark.sqlite_only("why")`` and are skipped on the PostgreSQL pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlite_utils

from digest.store.database import open_store

STORE = os.environ.get("DIGEST_TEST_STORE", "sqlite").strip().lower() or "sqlite"
if STORE not in ("sqlite", "postgresql"):
    raise RuntimeError(f"DIGEST_TEST_STORE={STORE!r}: give sqlite or postgresql")
ON_POSTGRESQL = STORE == "postgresql"
SCHEMA_TEMPLATE = "template_digest_schema"

_server = None  # the session's PgServer, started on first use
_template_ready = False
_by_path: dict[Path, str] = {}  # this test's SQLite paths → the databases standing for them
_made: list[str] = []  # this test's databases, dropped at its end


def server():
    """The session's private PostgreSQL server (started on first use; None when it cannot run)."""
    global _server
    if _server is None:
        from pg_server import PgServer, missing_reason  # lazy: start-up (PostgreSQL tests only)

        if missing_reason():
            return None
        _server = PgServer()
        _server.start()
    return _server


def missing() -> str | None:
    """Why PostgreSQL cannot run here (None when it can)."""
    from pg_server import missing_reason  # lazy: start-up (PostgreSQL tests only)

    return missing_reason()


def fresh_url(*, schema: bool = True) -> str:
    """A new database on the session's server for this test; with ``schema`` it is already
    migrated (a copy of the session's template), else empty."""
    global _template_ready
    pg = server()
    assert pg is not None, missing()
    if schema and not _template_ready:
        pg.admin(f"CREATE DATABASE {SCHEMA_TEMPLATE} TEMPLATE template_digest")
        open_store(pg.url(SCHEMA_TEMPLATE)).close()
        _template_ready = True
    url = pg.fresh_database(SCHEMA_TEMPLATE if schema else "template_digest")
    _made.append(url)
    return url


def url_for(path: Path) -> str:
    """The database that stands for the SQLite file ``path`` in this test (made on first ask)."""
    key = Path(path).resolve()
    if key not in _by_path:
        _by_path[key] = fresh_url()
    return _by_path[key]


def bind(path: Path, url: str) -> None:
    """Let ``url`` stand for the SQLite file ``path`` in this test."""
    _by_path[Path(path).resolve()] = url


def store_at(path: Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """The test's store for ``path``: that SQLite file, or on the PostgreSQL pass the database
    standing for it."""
    if ON_POSTGRESQL:
        return open_store(url_for(path), migrate=migrate)
    return open_store(path, migrate=migrate)


def begin_test() -> int:
    """Where this test's own databases start in the list: those made before it (by a module or
    session fixture, set up before the test's function fixtures) outlive it."""
    return len(_made)


def end_test(first: int = 0) -> None:
    """Drop the databases this test made (from ``first`` on), and forget their paths."""
    pg = _server
    while len(_made) > first:
        url = _made.pop()
        if pg is not None:
            pg.drop_database(url)
        for path in [p for p, u in _by_path.items() if u == url]:
            del _by_path[path]


def stop() -> None:
    """Stop the session's server, if it was started."""
    if _server is not None:
        _server.stop()
