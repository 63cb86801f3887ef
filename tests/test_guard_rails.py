"""Database guard rails and content that must read right (issue #11, defects 6, 7 and 8)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import new_workspace
from werkzeug.serving import make_server

from digest.articles import get_article, unwrap_redirect
from digest.cli import cli
from digest.config import load_config
from digest.errors import DigestError, NotFound
from digest.ingest import ingest_sources
from digest.store import MAX_ID, open_store

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds"
NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
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


def test_control_characters_and_line_breaks_never_reach_a_stored_field(run_cli, workspace: Path) -> None:
    added = run_cli(
        "articles",
        "add",
        "--title",
        "Bell\x07 rings\x1b[0m",
        "--url",
        "https://example.org/a\r\nX-Evil: 1",
        "--summary",
        "Quiet\x0b night",
    )
    assert added.exit_code == 0, added.output
    file = workspace / "articles.json"
    file.write_text(
        json.dumps(
            [
                {
                    "title": "JSON \u0007 bell\ufffe",
                    "url": "https://example.org/js\u0085on",
                    "author": "A\u009bB",
                }
            ]
        ),
        encoding="utf-8",
    )
    assert run_cli("ingest", str(file)).exit_code == 0
    db = open_store(workspace / "digest.db")
    rows = {r[0]: r for r in db.execute("SELECT title, url, summary_text, author FROM articles").fetchall()}
    assert rows["Bell rings[0m"][1] == "https://example.org/a%0D%0AX-Evil:%201"
    assert rows["Bell rings[0m"][2] == "Quiet night"
    assert rows["JSON bell"][1] == "https://example.org/js%C2%85on"
    assert rows["JSON bell"][3] == "AB"


def test_google_alerts_links_are_unwrapped() -> None:
    wrapped = (
        "https://www.google.com/url?rct=j&sa=t&url=https://investorplace.com/2019/07/slack/"
        "&ct=ga&cd=CAIy&usg=AFQ"
    )
    assert unwrap_redirect(wrapped) == "https://investorplace.com/2019/07/slack/"
    assert unwrap_redirect("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.org%2Fx&h=1") == (
        "https://example.org/x"
    )
    assert unwrap_redirect("https://www.google.com/url?url=javascript:alert(1)") == (
        "https://www.google.com/url?url=javascript:alert(1)"
    )
    assert (
        unwrap_redirect("https://example.org/url?url=https://a.example")
        == "https://example.org/url?url=https://a.example"
    )


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
def test_the_google_alerts_feed_links_to_the_articles(tmp_path: Path) -> None:
    config = load_config(None, db=str(tmp_path / "d.db"))
    db = open_store(config.db_path)
    (result,) = ingest_sources(db, config, [str(CORPUS / "atom_google_alerts_redirect_links.xml")], now=NOW)
    assert result.ok and result.new > 0
    urls = [r[0] for r in db.execute("SELECT url FROM articles")]
    assert not [u for u in urls if "google.com/url" in u]


def test_an_untitled_undated_item_is_named_by_its_words_and_shown_undated(
    tmp_path: Path, workspace: Path
) -> None:
    from digest.compose import compose_issue
    from digest.render import render_issue

    feed = tmp_path / "f.xml"
    feed.write_text(
        '<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>'
        "<item><link>https://t.example/1</link><description>The tide came in early and "
        "flooded the quay.</description></item></channel></rss>",
        encoding="utf-8",
    )
    config = load_config(workspace / "digest.toml")
    db = open_store(config.db_path)
    ingest_sources(db, config, [str(feed)], now=NOW)
    (title,) = [r[0] for r in db.execute("SELECT title FROM articles")]
    assert title == "The tide came in early and flooded the quay."
    edition = next(iter(config.editions))
    issue = compose_issue(db, config, edition, period_end=datetime(2026, 1, 13, tzinfo=UTC)).issue
    snapshot = json.loads(issue["snapshot"])
    assert snapshot["categories"][0]["articles"][0]["undated"] is True
    rendered = render_issue(db, config, issue["id"])
    assert "undated" in rendered.text and "undated" in rendered.html
    assert "12 Jan 2026, 06:00" not in rendered.text
