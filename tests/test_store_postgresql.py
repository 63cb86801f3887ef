"""The PostgreSQL store against a private server (tests/pg_server.py): schema, transactions,
a lost connection, and owners that must work the same on both stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from digest.errors import DigestError
from digest.store.database import MIGRATIONS, open_store, transaction
from digest.store.dialect import translate
from subscribers.store import add_subscriber, list_subscribers


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The target of an empty store of each kind: a file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "digest.db")
    return request.getfixturevalue("pg_url")


def test_open_store_migrates_empty_postgresql_to_latest(pg_url: str) -> None:
    db = open_store(pg_url)
    names = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY id")]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert "subscribers" in db.table_names()


def test_reopen_applies_nothing(pg_url: str) -> None:
    open_store(pg_url).close()
    db = open_store(pg_url)
    assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_newer_schema_is_refused(pg_url: str) -> None:
    db = open_store(pg_url)
    db.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m999_future', 'x')")
    with pytest.raises(DigestError, match="written by a newer digest"):
        open_store(pg_url)


def test_transaction_rollback_leaves_nothing(any_store: str) -> None:
    db = open_store(any_store)
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO runs (at, started_at) VALUES (?, ?)", ["a", "b"])
        raise RuntimeError("stop")
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_nested_savepoint_rolls_back_only_inner(any_store: str) -> None:
    db = open_store(any_store)
    with transaction(db):
        db.execute("INSERT INTO runs (at, started_at) VALUES (?, ?)", ["outer", "b"])
        with pytest.raises(RuntimeError), transaction(db):
            db.execute("INSERT INTO runs (at, started_at) VALUES (?, ?)", ["inner", "b"])
            raise RuntimeError("stop")
    assert [r[0] for r in db.execute("SELECT at FROM runs")] == ["outer"]


def test_lost_connection_is_one_line_and_transaction_absent(pg_url: str) -> None:
    db = open_store(pg_url)
    pid = db.execute("SELECT pg_backend_pid()").fetchone()[0]
    with pytest.raises(DigestError) as caught, transaction(db):
        db.execute("INSERT INTO runs (at, started_at) VALUES (?, ?)", ["a", "b"])
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        db.execute("SELECT 1")
    assert "\n" not in str(caught.value) and "lost the connection" in str(caught.value)
    assert open_store(pg_url).execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_unique_violation_is_sqlite_integrity_error(pg_url: str) -> None:
    db = open_store(pg_url)
    db.execute("INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?, ?, ?)", ["h", "r", "t"])
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?, ?, ?)", ["h", "r", "t"]
        )


def test_translator_keeps_literals_and_ignores_duplicates(pg_url: str) -> None:
    db = open_store(pg_url)
    sql = "INSERT OR IGNORE INTO suppressions (email_hash, reason, created_at) VALUES (?, 'a ? 5%', ?)"
    assert "'a ? 5%%'" in translate(sql).sql
    db.execute(sql, ["h", "t"])
    db.execute(sql, ["h", "t"])
    assert db.execute("SELECT reason FROM suppressions").fetchall() == [("a ? 5%",)]
    assert [r[0] for r in db.execute("SELECT value FROM json_each(?)", ['["x", "y"]'])] == ["x", "y"]


def test_iso_timestamps_compare_bytewise(any_store: str) -> None:
    db = open_store(any_store)
    for at in ["2026-01-02T00:00:00+00:00", "2026-01-10T00:00:00+00:00", "2025-12-31T23:59:59+00:00"]:
        db.execute("INSERT INTO runs (at, started_at) VALUES (?, ?)", [at, at])
    rows = db.execute(
        "SELECT at FROM runs WHERE at >= ? ORDER BY at", ["2026-01-02T00:00:00+00:00"]
    ).fetchall()
    assert [r[0] for r in rows] == ["2026-01-02T00:00:00+00:00", "2026-01-10T00:00:00+00:00"]


def test_subscribers_add_and_list_on_both_stores(any_store: str) -> None:
    db = open_store(any_store)
    add_subscriber(db, "Ann@Example.com", status="active")
    add_subscriber(db, "bob@example.com", status="active")
    emails = sorted(s["email"] for s in list_subscribers(db))
    assert emails == ["ann@example.com", "bob@example.com"]
    with pytest.raises(DigestError):  # one subscriber per address, whatever its case
        add_subscriber(db, "BOB@example.com", status="active")


def test_two_adders_on_postgresql_get_different_ids(pg_url: str) -> None:
    # A web sign-up and a CLI add on two hosts: the second waits for the first's id, then
    # takes the next one (both read max(id) before the fix, and the second failed on the key).
    import threading

    first, second = open_store(pg_url), open_store(pg_url)
    outcome: dict[str, object] = {}

    def add_second() -> None:
        try:
            outcome["id"] = add_subscriber(second, "two@example.com")["id"]
        except (sqlite3.Error, DigestError) as exc:  # the assertion below names it
            outcome["error"] = exc

    with transaction(first):
        assert add_subscriber(first, "one@example.com")["id"] == 1
        adder = threading.Thread(target=add_second)
        adder.start()
        adder.join(0.5)
        assert adder.is_alive(), "the second adder did not wait for the first's transaction"
    adder.join(10)
    assert outcome == {"id": 2}
    assert sorted(s["id"] for s in list_subscribers(first)) == [1, 2]


def test_eligibility_rule_of_the_claim_on_both_stores(any_store: str) -> None:
    """The predicate the ledger's claim joins on (json_each, the fold function) picks the
    same readers on both stores."""
    from subscribers.eligibility import eligibility_sql

    db = open_store(any_store)
    add_subscriber(db, "all@example.com", status="active")
    add_subscriber(db, "tech@example.com", status="active", categories=["Tech"])
    add_subscriber(db, "sport@example.com", status="active", categories=["Sport"])
    rule, params = eligibility_sql(db, "daily", ["tech"])
    rows = db.execute(f"SELECT email FROM subscribers WHERE {rule} ORDER BY email", params).fetchall()
    assert [r[0] for r in rows] == ["all@example.com", "tech@example.com"]


def test_sqlite_functions_answer_the_same_on_both_stores(any_store: str) -> None:
    """iif, group_concat, json_extract, json_set, an empty IN list, a BLOB literal and the temp
    schema, as owners write them for SQLite, give the same answers on PostgreSQL."""
    db = open_store(any_store)
    doc = '{"a": {"b": [10, "x"]}, "t": true, "s": "text"}'
    row = db.execute(
        "SELECT iif(? > 1, 'big', 'small'), json_extract(?2, '$.a.b[1]'), json_extract(?2, '$.t'),"
        " json_extract(json_set(?2, '$.s', 'new'), '$.s'),"
        " json_extract(json_set(?2, '$.u', json('[1]')), '$.u[0]')",
        [2, doc],
    ).fetchone()
    assert [str(v) for v in row] == ["big", "x", "1", "new", "1"]
    assert db.execute("SELECT group_concat(rowid, ',') FROM json_each(?)", ['{"a":1,"b":2}']).fetchone() == (
        "0,1",
    )
    db.execute("INSERT INTO runs (at, started_at) VALUES ('a', 'a')")
    assert db.execute("SELECT count(*) FROM runs WHERE id IN ()").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM runs WHERE id NOT IN ()").fetchone()[0] == 1
    db.execute("CREATE TEMP TABLE scratch (id INTEGER PRIMARY KEY, data BLOB)")
    db.execute("INSERT INTO temp.scratch (id, data) VALUES (1, x'00ff')")
    assert bytes(db.execute("SELECT data FROM temp.scratch").fetchone()[0]) == b"\x00\xff"
