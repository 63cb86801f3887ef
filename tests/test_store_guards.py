"""The database guards itself: a newer or corrupt file is refused in one line and left alone,
its files are private, and ids past 2**63 are "not found" everywhere (CLI and web)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import new_workspace
from werkzeug.serving import make_server

from digest.cli import cli
from digest.config import load_config
from digest.errors import DigestError, NotFound
from digest.ingest.articles import get_article
from digest.store.database import MAX_ID, open_store

HUGE = str(2**63)


def _workspace(folder: Path) -> Path:
    """An empty digest.toml: the CLI runs only inside a workspace."""
    return new_workspace(folder, config="", db=False).config_file


def test_a_database_from_a_newer_digest_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    db = open_store(path)
    db.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m099_from_the_future', 'x')")
    count = db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0]
    db.close()
    with pytest.raises(DigestError) as caught:
        open_store(path)
    assert (
        str(caught.value) == f"this database was written by a newer digest (schema {count}); upgrade digest"
    )
    result = CliRunner().invoke(
        cli, ["--config", str(_workspace(tmp_path)), "--db", str(path), "articles", "list"]
    )
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: this database was written by a newer digest (schema {count}); upgrade digest\n"
    )
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == count
    check.close()


def test_a_corrupt_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    db = open_store(path)
    db.close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # keep the header, wreck every page
    path.write_bytes(bytes(data))
    for name in ("digest.db-wal", "digest.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    result = CliRunner().invoke(
        cli, ["--config", str(_workspace(tmp_path)), "--db", str(path), "articles", "list"]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert "retry" not in result.output
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all " * 100)
    result = CliRunner().invoke(
        cli, ["--config", str(_workspace(tmp_path)), "--db", str(garbage), "issues", "list"]
    )
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output


def test_the_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = open_store(tmp_path / "digest.db")
        db.execute("CREATE TABLE t (x)")  # makes SQLite write the WAL
        for name in ("digest.db", "digest.db-wal", "digest.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        db.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    "args",
    [
        ["articles", "show", HUGE],
        ["issues", "show", HUGE],
        ["preview", HUGE],
        ["send", HUGE, "--dry-run"],
        ["deliveries", HUGE],
        ["feeds", "remove", HUGE],
        ["subscribers", "show", HUGE],
    ],
)
def test_ids_past_two_to_the_63_are_not_found(run_cli, args: list[str]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 1
    assert "not found" in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1


def test_get_article_past_max_id(tmp_path: Path) -> None:
    db = open_store(tmp_path / "d.db")
    with pytest.raises(NotFound):
        get_article(db, MAX_ID + 1)


def test_the_web_app_answers_404_for_a_huge_issue_id(workspace: Path) -> None:
    from digest.web import create_app

    config = load_config(workspace / "digest.toml")
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        for issue_id in (HUGE, "99999999999999999999999"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(f"http://127.0.0.1:{server.port}/issues/{issue_id}", timeout=10)
            assert caught.value.code == 404
            caught.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
