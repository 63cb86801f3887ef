"""`digest feeds add/list/remove` against a real workspace database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from store_switch import store_at

from digest.ingest.feeds import add_feed, find_feed, list_feeds, remove_feed

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def test_add_list_remove(run_cli, tmp_path: Path) -> None:
    feed_file = tmp_path / "gazette.rss"
    shutil.copy(FIXTURES / "harbour-gazette.rss", feed_file)

    result = run_cli("feeds", "add", "https://news.example.org/feed.xml", "--category", "World")
    assert result.exit_code == 0, result.output
    assert "Added feed 1: https://news.example.org/feed.xml" in result.output
    result = run_cli("feeds", "add", str(feed_file), "--name", "Gazette")
    assert result.exit_code == 0, result.output

    rows = json.loads(run_cli("feeds", "list", "--json").stdout)
    assert [(r["id"], r["url"], r["category"], r["name"]) for r in rows] == [
        (1, "https://news.example.org/feed.xml", "World", None),
        (2, str(feed_file.resolve()), None, "Gazette"),
    ]
    human = run_cli("feeds", "list").output
    assert "https://news.example.org/feed.xml" in human and "never fetched" in human

    removed = run_cli("feeds", "remove", "https://news.example.org/feed.xml")
    assert removed.exit_code == 0 and "Removed feed 1" in removed.output
    removed = run_cli("feeds", "remove", "2")
    assert removed.exit_code == 0
    assert json.loads(run_cli("feeds", "list", "--json").stdout) == []
    assert "No feeds yet" in run_cli("feeds", "list").output


def test_bad_adds_are_one_line_errors(run_cli) -> None:
    assert run_cli("feeds", "add", "https://news.example.org/feed.xml").exit_code == 0
    dup = run_cli("feeds", "add", "https://news.example.org/feed.xml")
    assert dup.exit_code == 1
    assert "Error: https://news.example.org/feed.xml: already added as feed 1" in dup.output
    missing = run_cli("feeds", "add", "no-such-feed.xml")
    assert missing.exit_code == 1 and "no such file" in missing.output
    scheme = run_cli("feeds", "add", "https://")
    assert scheme.exit_code == 1 and "not a valid URL" in scheme.output
    gone = run_cli("feeds", "remove", "99")
    assert gone.exit_code == 1 and "feed '99' not found" in gone.output
    for result in (dup, missing, scheme, gone):
        assert "Traceback" not in result.output


def test_relative_paths_are_stored_absolute_and_found_again(tmp_path: Path) -> None:
    db = store_at(tmp_path / "f.db")
    shutil.copy(FIXTURES / "lab-notes.atom", tmp_path / "lab.atom")
    feed = add_feed(db, "lab.atom", category="Science")  # tests run inside tmp_path
    assert feed["url"] == str((tmp_path / "lab.atom").resolve())
    assert find_feed(db, "lab.atom")["id"] == feed["id"]
    assert find_feed(db, str(feed["id"]))["id"] == feed["id"]
    assert len(list_feeds(db)) == 1
    remove_feed(db, "lab.atom")
    assert list_feeds(db) == []


def test_urls_differing_only_in_scheme_or_host_case_are_one_feed(run_cli, workspace: Path) -> None:
    first = run_cli("feeds", "add", "HTTP://Example.ORG/Feed.xml")
    assert first.exit_code == 0, first.output
    assert "Added feed 1: http://example.org/Feed.xml" in first.output  # the path keeps its case
    again = run_cli("feeds", "add", "http://example.org/Feed.xml")
    assert again.exit_code == 1
    assert "already added as feed 1" in again.output
    other_path = run_cli("feeds", "add", "http://example.org/feed.xml")
    assert other_path.exit_code == 0, other_path.output  # a different path is a different feed
    rows = json.loads(run_cli("feeds", "list", "--json").stdout)
    assert [r["url"] for r in rows] == ["http://example.org/Feed.xml", "http://example.org/feed.xml"]
    removed = run_cli("feeds", "remove", "hTTp://EXAMPLE.org/Feed.xml")
    assert removed.exit_code == 0 and "Removed feed 1" in removed.output


def test_a_feed_stored_with_an_upper_case_host_before_is_still_found(workspace: Path) -> None:
    db = store_at(workspace / "digest.db")
    db["feeds"].insert({"url": "HTTPS://News.Example.ORG/rss", "created_at": "2026-01-01T00:00:00Z"})
    feed = find_feed(db, "https://news.example.org/rss")
    assert feed is not None and feed["url"] == "HTTPS://News.Example.ORG/rss"
    from digest.errors import DigestError

    try:
        add_feed(db, "https://NEWS.example.org/rss")
    except DigestError as exc:
        assert "already added as feed" in str(exc)
    else:
        raise AssertionError("a second copy of the feed was stored")


def test_feeds_list_shows_the_fetch_error_without_repeating_the_url(run_cli, workspace: Path) -> None:
    from digest.ingest.feeds import record_fetch

    run_cli("feeds", "add", "http://127.0.0.1:1/feed.xml")
    db = store_at(workspace / "digest.db")
    record_fetch(db, 1, status="error", error="http://127.0.0.1:1/feed.xml: cannot connect (refused)")
    lines = run_cli("feeds", "list").output.splitlines()
    assert lines[1].count("http://127.0.0.1:1/feed.xml") == 1, lines
    assert lines[1].rstrip().endswith("cannot connect (refused)")
