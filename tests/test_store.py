"""The store: pragmas, migrations recorded and applied once, upgrade in place."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from digest.errors import DigestError
from digest.store.database import BUSY_TIMEOUT_MS, MIGRATIONS, applied_migrations, open_store, transaction


def test_new_database_has_every_migration_and_pragmas(tmp_path: Path) -> None:
    db = open_store(tmp_path / "d.db")
    assert applied_migrations(db) == [m.__name__ for m in MIGRATIONS]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    for table in ("feeds", "articles", "issues", "issue_articles", "subscribers", "events", "deliveries"):
        assert table in db.table_names()


def test_older_database_upgrades_in_place_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    conn.execute(
        "CREATE TABLE _migrations ("
        "id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
    )
    # A database made by a version that only knew the first migration.
    import sqlite_utils

    from digest.store.database import m001_feeds_and_articles

    old = sqlite_utils.Database(conn)
    m001_feeds_and_articles(old)
    conn.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m001_feeds_and_articles', 'x')")
    conn.execute("INSERT INTO feeds (url, created_at) VALUES ('https://example.org/f.xml', 'x')")
    conn.close()

    db = open_store(path)
    assert applied_migrations(db)[-1] == MIGRATIONS[-1].__name__
    assert [r["url"] for r in db["feeds"].rows] == ["https://example.org/f.xml"]
    # Opening again applies nothing twice.
    again = open_store(path)
    assert len(applied_migrations(again)) == len(MIGRATIONS)


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    db = open_store(tmp_path / "d.db")
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO feeds (url, created_at) VALUES ('a', 'x')")
        with transaction(db):
            db.execute("INSERT INTO feeds (url, created_at) VALUES ('b', 'x')")
        raise RuntimeError("boom")
    assert db["feeds"].count == 0


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DigestError, match="does not exist"):
        open_store(tmp_path / "nope" / "d.db")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(DigestError, match="SQLite"):
        open_store(bad)


def test_m008_rebuilds_subscribers_keeping_ids_and_every_reference(tmp_path: Path) -> None:
    import sqlite_utils

    from digest.store.database import MIGRATIONS as ALL

    path = tmp_path / "m007.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "CREATE TABLE _migrations"
        " (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
    )
    old = sqlite_utils.Database(conn)
    upto = [m for m in ALL if m.__name__ < "m008"]
    for migration in upto:
        migration(old)
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, 'x')", [migration.__name__])
    conn.execute(
        "INSERT INTO subscribers (id, email, status, created_at, updated_at) VALUES"
        " (7, 'Ada@example.org', 'active', 'x', 'x'), (12, 'bo@example.org', 'unsubscribed', 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO events (subscriber_id, kind, source, at) VALUES (7, 'subscribe', 'cli', 'x'),"
        " (12, 'unsubscribe', 'web', 'x')"
    )
    conn.execute(
        "INSERT INTO issues (id, edition, number, period_start, period_end, subject, created_at)"
        " VALUES (1, 'daily', 1, 'a', 'b', 's', 'x')"
    )
    conn.execute(
        "INSERT INTO deliveries (issue_id, subscriber_id, email, updated_at)"
        " VALUES (1, 7, 'Ada@example.org', 'x')"
    )
    conn.close()

    db = open_store(path)
    assert "m008_subscriber_email_index" in applied_migrations(db)
    assert db.execute("SELECT id, email, status FROM subscribers ORDER BY id").fetchall() == [
        (7, "Ada@example.org", "active"),
        (12, "bo@example.org", "unsubscribed"),
    ]
    # Dropping the old table fired no ON DELETE SET NULL: every reference still points at its row.
    assert db.execute("SELECT subscriber_id FROM events ORDER BY id").fetchall() == [(7,), (12,)]
    assert db.execute("SELECT subscriber_id FROM deliveries").fetchall() == [(7,)]
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE tbl_name = 'subscribers'")}
    assert {"subscribers_email", "subscribers_status"} <= indexes
    # Still one subscriber per address, case-insensitively; and the references still act.
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute(
            "INSERT INTO subscribers (email, status, created_at, updated_at)"
            " VALUES ('ADA@EXAMPLE.ORG', 'active', 'x', 'x')"
        )
    db.execute("DELETE FROM subscribers WHERE id = 12")
    assert db.execute("SELECT subscriber_id FROM events ORDER BY id").fetchall() == [(7,), (None,)]


def test_subscriber_status_is_still_checked_after_m008(tmp_path: Path) -> None:
    db = open_store(tmp_path / "d.db")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute(
            "INSERT INTO subscribers (email, status, created_at, updated_at)"
            " VALUES ('a@x.org', 'gone', 'x', 'x')"
        )
    for status in ("pending", "active", "unsubscribed", "bounced"):
        db.execute(
            "INSERT INTO subscribers (email, status, created_at, updated_at) VALUES (?, ?, 'x', 'x')",
            [f"{status}@x.org", status],
        )


def test_new_databases_get_16k_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    assert open_store(tmp_path / "new.db").execute("PRAGMA page_size").fetchone()[0] == 16384
    old = sqlite3.connect(tmp_path / "old.db")
    old.execute("PRAGMA page_size = 4096")
    old.execute("CREATE TABLE t (x)")
    old.commit()
    old.close()
    db = open_store(tmp_path / "old.db")
    assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert "subscribers" in db.table_names()


def test_m008_ignores_a_reference_that_was_dangling_before(tmp_path: Path) -> None:
    import sqlite_utils

    path = tmp_path / "dangling.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    conn.execute(
        "CREATE TABLE _migrations"
        " (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
    )
    old = sqlite_utils.Database(conn)
    for migration in [m for m in MIGRATIONS if m.__name__ < "m008"]:
        migration(old)
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, 'x')", [migration.__name__])
    conn.execute("INSERT INTO events (subscriber_id, kind, source, at) VALUES (99, 'subscribe', 'cli', 'x')")
    conn.close()  # foreign keys were off: subscriber 99 never existed

    db = open_store(path)
    assert "m008_subscriber_email_index" in applied_migrations(db)
    assert db.execute("SELECT subscriber_id FROM events").fetchall() == [(99,)]


def test_a_table_rebuild_refuses_to_run_inside_a_transaction(tmp_path: Path) -> None:
    from digest.store.database import migrate_store

    db = open_store(tmp_path / "d.db")
    db.execute("DELETE FROM _migrations WHERE name = 'm008_subscriber_email_index'")
    db.execute("BEGIN")
    with pytest.raises(DigestError, match="outside a transaction"):
        migrate_store(db)
    db.execute("ROLLBACK")
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


# ---------------------------------------------------------------- waiting for another writer


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> float:
    """Hold the write lock from another connection for ``seconds``; return when it was let go."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    taken.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    released = time.monotonic()
    conn.close()
    return released


def test_a_writer_starts_soon_after_another_lets_go(tmp_path: Path) -> None:
    """SQLite's own busy handler sleeps 1, 2, 5 ... 25, 50, 100 ms between tries: after 0.3 s
    of waiting a writer noticed a free lock 30 ms late or more. Ours retries every 2 ms."""
    path = tmp_path / "d.db"
    db = open_store(path)
    lags = []
    for _ in range(3):
        taken = threading.Event()
        result: list[float] = []
        holder = threading.Thread(
            target=lambda out, ev: out.append(_hold_write_lock(path, 0.3, ev)), args=(result, taken)
        )
        holder.start()
        taken.wait(5)
        with transaction(db):
            started = time.monotonic()
            db.execute("INSERT INTO feeds (url, created_at) VALUES (?, 'x')", [f"https://e.org/{len(lags)}"])
        holder.join()
        lags.append(started - result[0])
    assert sorted(lags)[1] < 0.015, lags  # SQLite's handler: about 0.03 here
    assert db.execute("SELECT count(*) FROM feeds").fetchone()[0] == 3
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS  # put back


def test_a_writer_still_gives_up_after_the_busy_timeout(tmp_path: Path, monkeypatch) -> None:
    import digest.store.database

    monkeypatch.setattr(digest.store.database, "BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "d.db"
    db = open_store(path)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 1.0, taken))
    holder.start()
    taken.wait(5)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"), transaction(db):
        db.execute("INSERT INTO feeds (url, created_at) VALUES ('https://e.org/x', 'x')")
    waited = time.monotonic() - started
    holder.join()
    assert 0.2 <= waited < 0.9
    assert db.execute("SELECT count(*) FROM feeds").fetchone()[0] == 0
    assert not db.conn.in_transaction


def test_m017_rebuilds_the_outbox_keeping_rows_and_indexes(tmp_path: Path) -> None:
    import sqlite_utils

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    conn.execute(
        "CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT)"
    )
    old = sqlite_utils.Database(conn)
    names = [m.__name__ for m in MIGRATIONS]
    before = MIGRATIONS[: names.index("m017_forged_reports")]
    for migration in before:
        migration(old)
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, 'x')", [migration.__name__])
    conn.execute(
        "INSERT INTO subscribers (email, status, created_at, updated_at)"
        " VALUES ('a@x.org', 'active', 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO outbox (kind, subscriber_id, email, message, message_id, created_at, updated_at)"
        " VALUES ('confirm', 1, 'a@x.org', x'00', '<m@x>', 'x', 'x')"
    )
    conn.close()
    db = open_store(path)
    assert applied_migrations(db)[len(before)] == "m017_forged_reports"
    assert [(r["kind"], r["message_id"]) for r in db["outbox"].rows] == [("confirm", "<m@x>")]
    assert {"outbox_status", "outbox_email"} <= {i.name for i in db["outbox"].indexes}
    db.execute(
        "INSERT INTO outbox (kind, subscriber_id, email, message, message_id, created_at, updated_at)"
        " VALUES ('unsubscribe-confirm', 1, 'a@x.org', x'00', '<n@x>', 'x', 'x')"
    )
    assert "held_reports" in db.table_names()


def test_m018_marks_the_merged_rows_of_stored_issues_and_lets_the_outbox_take_review_mail(
    tmp_path: Path,
) -> None:
    import json

    import sqlite_utils

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    conn.execute(
        "CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT)"
    )
    old = sqlite_utils.Database(conn)
    names = [m.__name__ for m in MIGRATIONS]
    for migration in MIGRATIONS[: names.index("m018_editor_desk")]:
        migration(old)
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, 'x')", [migration.__name__])
    for n in (1, 2, 3):
        conn.execute(
            "INSERT INTO articles (id, guid, url, title, category, published_at, created_at, updated_at)"
            f" VALUES ({n}, 'g{n}', 'https://x.example/{n}', 'T{n}', 'World', '2026-01-22T10:00:00+00:00',"
            " 'x', 'x')"
        )
    snapshot = {
        "categories": [
            {
                "name": "World",
                "articles": [
                    {"id": 1, "also_covered": [{"source": "x", "url": "https://x.example/3"}]},
                    {"id": 2, "also_covered": []},
                ],
            }
        ]
    }
    conn.execute(
        "INSERT INTO issues (id, edition, number, period_start, period_end, subject, snapshot, created_at)"
        " VALUES (1, 'daily', 1, 'a', 'b', 's', ?, 'x')",
        [json.dumps(snapshot)],
    )
    for article_id, position in ((1, 1), (2, 2), (3, 3)):
        conn.execute(
            "INSERT INTO issue_articles (issue_id, article_id, category, position) VALUES (1, ?, 'World', ?)",
            [article_id, position],
        )
    conn.close()
    db = open_store(path)
    rows = db.execute(
        "SELECT article_id, card_of, dropped FROM issue_articles ORDER BY article_id"
    ).fetchall()
    assert rows == [(1, None, 0), (2, None, 0), (3, 1, 0)]
    db.execute(
        "INSERT INTO outbox (kind, email, message, message_id, created_at, updated_at)"
        " VALUES ('review', 'ann@x.example', x'00', '<r@x>', 'x', 'x')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO outbox (kind, email, message, message_id, created_at, updated_at)"
            " VALUES ('nonsense', 'ann@x.example', x'00', '<s@x>', 'x', 'x')"
        )
