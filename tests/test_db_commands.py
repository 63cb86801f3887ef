"""`digest db info|migrate|copy` and the `[storage] url` setting: which store a workspace uses,
and moving a whole workspace between SQLite files and PostgreSQL with every row and the
ledger's totals checked, the source untouched and a non-empty target refused.

The PostgreSQL variants run against a private server (tests/pg_server.py) and skip where
PostgreSQL (or digest's PostgreSQL store) is missing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner, Result
from conftest import new_workspace
from delivery_fixtures import AFTER, Setup, make_setup

from digest.cli import cli
from digest.config import display_store, without_password
from digest.delivery.send import deliver_issue
from digest.store.database import MIGRATIONS, open_store
from digest.store_tools import copy_order, copy_store, data_tables, row_counts
from subscribers.store import add_subscriber

SECRET = "hunter2-not-for-anyone"


def sent_workspace(path: Path) -> Setup:
    """A workspace with six readers, a composed issue sent to them (a ledger of `sent` rows)
    and a seventh reader who came later; every connection closed, the WAL folded into the file."""
    setup = make_setup(path, subscribers=6)
    report = deliver_issue(setup.db, setup.config, int(setup.issue["id"]), now=AFTER)
    assert report.sent == 6
    add_subscriber(setup.db, email="late@example.net")
    setup.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    setup.db.close()
    return setup


def everything(db: sqlite_utils.Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table's rows, sorted, for comparing two stores."""
    return {
        name: sorted((tuple(row) for row in db.execute(f'SELECT * FROM "{name}"')), key=repr)
        for name in data_tables(db)
    }


def contents(target: str | Path) -> dict[str, list[tuple[Any, ...]]]:
    db = open_store(target, migrate=False)
    try:
        return everything(db)
    finally:
        db.conn.close()


def digest_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# -- SQLite to SQLite ----------------------------------------------------------------------


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_a_copy_to_a_new_file_holds_every_row_and_leaves_the_source_as_it_was(tmp_path: Path) -> None:
    setup = sent_workspace(tmp_path / "ws")
    source = setup.path / "digest.db"
    before = source.read_bytes()
    result = digest_cli(setup.config_file, "db", "copy", "--to", str(tmp_path / "copy.db"))
    assert result.exit_code == 0, result.output
    assert "row count and the ledger's totals (6 deliveries) match" in result.output
    assert source.read_bytes() == before
    original, copied = contents(source), contents(tmp_path / "copy.db")
    assert copied == original
    assert len(original["subscribers"]) == 7 and len(original["deliveries"]) == 6
    assert {row[0] for row in original["issues"]} == {int(setup.issue["id"])}


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_copy_from_fills_an_empty_workspace_and_new_rows_take_the_next_ids(tmp_path: Path) -> None:
    setup = sent_workspace(tmp_path / "old")
    fresh = new_workspace(tmp_path / "new")
    result = digest_cli(fresh.config_file, "db", "copy", "--from", str(setup.path / "digest.db"))
    assert result.exit_code == 0, result.output
    assert contents(fresh.db_path) == contents(setup.path / "digest.db")
    db = fresh.db()
    newest = max(row[0] for row in db.execute("SELECT id FROM subscribers"))
    assert add_subscriber(db, email="after@example.net")["id"] > newest
    db.close()


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_a_target_that_holds_rows_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    setup = sent_workspace(tmp_path / "ws")
    other = new_workspace(tmp_path / "other", subscribers=["keep@example.net"])
    before = contents(other.db_path)
    line = one_line_error(digest_cli(setup.config_file, "db", "copy", "--to", str(other.db_path)))
    assert "not empty (subscribers has 1 rows)" in line and "new, empty database" in line
    assert contents(other.db_path) == before


def test_a_copy_that_fails_midway_leaves_the_target_empty(tmp_path: Path) -> None:
    setup = sent_workspace(tmp_path / "ws")
    target = open_store(tmp_path / "copy.db")
    target.execute(
        "CREATE TRIGGER no_ledger BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'disk said no'); END"
    )
    target.close()
    line = one_line_error(digest_cli(setup.config_file, "db", "copy", "--to", str(tmp_path / "copy.db")))
    assert "disk said no" in line
    assert set(row_counts(open_store(tmp_path / "copy.db")).values()) == {0}


def test_a_source_behind_this_schema_is_refused_until_db_migrate_brings_it_up(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    db = open_store(old)
    db.execute("DELETE FROM _migrations WHERE name = ?", [MIGRATIONS[-1].__name__])
    db.close()
    fresh = new_workspace(tmp_path / "ws")
    line = one_line_error(digest_cli(fresh.config_file, "db", "copy", "--from", str(old)))
    assert "schema is behind" in line and "digest db migrate" in line
    migrated = digest_cli(fresh.config_file, "--db", str(old), "db", "migrate")
    assert migrated.exit_code == 0 and MIGRATIONS[-1].__name__ in migrated.output
    assert digest_cli(fresh.config_file, "db", "copy", "--from", str(old)).exit_code == 0


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_a_copy_reports_its_progress_table_by_table_in_batches(tmp_path: Path) -> None:
    setup = sent_workspace(tmp_path / "ws")
    seen: list[tuple[str, int, int]] = []
    report = copy_store(
        setup.path / "digest.db", tmp_path / "copy.db", progress=lambda *step: seen.append(step)
    )
    assert seen[-1][1:] == (report.rows, report.rows)
    assert [done for _table, done, _total in seen] == sorted(done for _table, done, _total in seen)
    assert {table for table, _done, _total in seen} == {name for name, rows in report.tables.items() if rows}


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_copy_wants_exactly_one_direction_and_an_existing_source(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    assert "exactly one of --to" in one_line_error(digest_cli(ws.config_file, "db", "copy"))
    line = one_line_error(digest_cli(ws.config_file, "db", "copy", "--from", str(tmp_path / "nowhere.db")))
    assert "no such database file" in line
    assert not (tmp_path / "nowhere.db").exists()
    assert "the same store" in one_line_error(
        digest_cli(ws.config_file, "db", "copy", "--to", str(ws.db_path))
    )


def test_tables_are_copied_after_the_tables_their_foreign_keys_name(tmp_path: Path) -> None:
    db = open_store(tmp_path / "digest.db")
    order = copy_order(db)
    db.close()
    assert sorted(order) == sorted(row_counts(open_store(tmp_path / "digest.db")))
    for child, parent in [("deliveries", "subscribers"), ("deliveries", "issues"), ("bounces", "deliveries")]:
        assert order.index(parent) < order.index(child)


# -- db info -------------------------------------------------------------------------------


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_db_info_names_the_store_its_schema_and_every_tables_rows(tmp_path: Path) -> None:
    setup = sent_workspace(tmp_path / "ws")
    result = digest_cli(setup.config_file, "db", "info")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Store: {setup.path / 'digest.db'} (sqlite)"
    last = MIGRATIONS[-1].__name__
    assert lines[1] == f"Schema: {int(last[1:4])} {last} (current)"
    assert lines[3].split() == ["article_pages", "0"]
    assert ["deliveries", "6"] in [line.split() for line in lines]
    data = json.loads(digest_cli(setup.config_file, "db", "info", "--json").output)
    assert data["kind"] == "sqlite" and data["schema"]["state"] == "current"
    assert data["tables"]["subscribers"] == 7 and data["tables"]["deliveries"] == 6
    assert "_migrations" not in data["tables"]


def test_db_info_says_a_store_is_behind_without_migrating_it(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    db = ws.db()
    db.execute("DELETE FROM _migrations WHERE name = ?", [MIGRATIONS[-1].__name__])
    db.close()
    first = digest_cli(ws.config_file, "db", "info")
    assert "(behind: 1 migrations to apply; run `digest db migrate`)" in first.output
    again = json.loads(digest_cli(ws.config_file, "db", "info", "--json").output)
    assert again["schema"]["state"] == "behind" and again["missing_migrations"] == [MIGRATIONS[-1].__name__]


# -- [storage] url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql://digest:{SECRET}@db.example.org/digest", "has a password in it"),
        (f"postgresql://db.example.org/digest?password={SECRET}", "has a password in it"),
        ("mysql://digest@db.example.org/digest", "is not a PostgreSQL URL"),
        ("postgresql://digest@db.example.org/", "names no database"),
        ("postgresql:///digest", "names no host"),
    ],
)
def test_a_bad_storage_url_in_the_file_is_one_line_that_never_shows_a_password(
    tmp_path: Path, url: str, says: str
) -> None:
    ws = new_workspace(tmp_path / "ws", db=False, replace={"[storage]\n": f'[storage]\nurl = "{url}"\n'})
    line = one_line_error(digest_cli(ws.config_file, "db", "info"))
    assert says in line and "'storage.url'" in line and str(ws.config_file) in line
    assert SECRET not in line
    if "password" in says:
        assert "DIGEST_DB_PASSWORD" in line and "~/.pgpass" in line


@pytest.mark.sqlite_only("copies or reads SQLite files by path; PostgreSQL has its own tests below")
def test_digest_db_url_overrides_the_file_and_is_checked_the_same_way(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    line = one_line_error(digest_cli(ws.config_file, "db", "info", env={"DIGEST_DB_URL": "sqlite:///x.db"}))
    assert "is not a PostgreSQL URL" in line and "DIGEST_* override" in line
    config = ws.config
    assert config.store == ws.db_path and config.store_file == ws.db_path


def test_a_url_is_shown_without_its_password() -> None:
    assert without_password(f"postgresql://digest:{SECRET}@h:5432/d") == "postgresql://digest:***@h:5432/d"
    assert SECRET not in without_password(f"postgresql://h/d?sslmode=require&password={SECRET}")
    assert (
        without_password("postgresql://digest@h/d?sslmode=require")
        == "postgresql://digest@h/d?sslmode=require"
    )
    assert display_store(Path("/srv/digest.db")) == "/srv/digest.db"


def test_init_refuses_a_db_url_with_a_password_and_writes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "ws"), "--db-url", f"postgresql://digest:{SECRET}@db.example.org/digest"]
    )
    line = one_line_error(result)
    assert "DIGEST_DB_PASSWORD" in line and SECRET not in result.output
    assert not (tmp_path / "ws" / "digest.toml").exists()


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.sqlite_only("moves an SQLite workspace; the default pass runs it against PostgreSQL")
def test_a_workspace_goes_to_postgresql_and_back_with_every_row(tmp_path: Path, pg_url: str) -> None:
    setup = sent_workspace(tmp_path / "ws")
    # What COPY's text format must escape: tabs, newlines, backslashes, "\N", bytes of every value.
    odd_name, odd_bytes = "Tab\there\nnew\\line \\N Ünïcode ✓", bytes(range(256))
    raw = sqlite3.connect(setup.path / "digest.db")
    with raw:
        raw.execute("UPDATE subscribers SET name = ? WHERE email = 'late@example.net'", [odd_name])
        raw.execute(
            "INSERT INTO outbox (kind, subscriber_id, email, message, message_id, status, created_at,"
            " updated_at) VALUES ('confirm', NULL, 'x@example.net', ?, '<m@x>', 'queued', 'a', 'a')",
            [odd_bytes],
        )
    raw.close()
    url = pg_url
    there = digest_cli(setup.config_file, "db", "copy", "--to", url)
    assert there.exit_code == 0, there.output
    back = new_workspace(tmp_path / "back")
    home = digest_cli(back.config_file, "db", "copy", "--from", url)
    assert home.exit_code == 0, home.output
    assert contents(back.db_path) == contents(setup.path / "digest.db")
    db = open_store(url)
    assert db.execute("SELECT message FROM outbox").fetchone()[0] == odd_bytes
    assert (
        db.execute("SELECT name FROM subscribers WHERE email = 'late@example.net'").fetchone()[0] == odd_name
    )
    newest = max(row[0] for row in db.execute("SELECT id FROM subscribers"))
    assert add_subscriber(db, email="after@example.net")["id"] == newest + 1
    db.conn.close()
    again = digest_cli(setup.config_file, "db", "copy", "--to", url)
    assert "not empty" in one_line_error(again)


def test_db_info_on_postgresql_shows_the_url_but_never_its_password(tmp_path: Path, pg_url: str) -> None:
    ws = new_workspace(tmp_path / "ws")
    url = pg_url
    with_password = url.replace("digest@", f"digest:{SECRET}@")
    env = {"DIGEST_DB_URL": with_password}
    assert digest_cli(ws.config_file, "db", "migrate", env=env).exit_code == 0
    result = digest_cli(ws.config_file, "db", "info", env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"Store: {url.replace('digest@', 'digest:***@')} (postgresql)"
    assert SECRET not in result.output
    data = json.loads(digest_cli(ws.config_file, "db", "info", "--json", env=env).output)
    assert data["schema"]["state"] == "current" and data["tables"]["subscribers"] == 0


def test_init_with_db_url_creates_the_schema_there_and_writes_the_url(tmp_path: Path, pg_url: str) -> None:
    url = pg_url
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "ws"), "--db-url", url])
    assert result.exit_code == 0, result.output
    assert f"Database ready at {url}" in result.output
    assert f'url = "{url}"' in (tmp_path / "ws" / "digest.toml").read_text()
    assert not (tmp_path / "ws" / "digest.db").exists()
    info = json.loads(digest_cli(tmp_path / "ws" / "digest.toml", "db", "info", "--json").output)
    assert info["kind"] == "postgresql" and info["schema"]["state"] == "current"
