"""Category aliases: the sample config maps nothing by itself, and `digest ingest --recategorize`
applies changed aliases to the articles already stored (a feed's own --category stays)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from conftest import Workspace, new_workspace

from digest.ingest.articles import recategorize_articles
from digest.store.database import MIGRATIONS, open_store

ALIASES = '\n[ingest.category_aliases]\n"politics" = "World"\n'


def write_articles(folder: Path) -> Path:
    rows = [
        {"title": "Vote on the budget", "url": "https://example.org/a/1", "category": "Politics"},
        {"title": "A new phone", "url": "https://example.org/a/2", "category": "tech"},
        {"title": "Rain on Sunday", "url": "https://example.org/a/3"},
    ]
    path = folder / "articles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_feed(folder: Path) -> Path:
    path = folder / "culture.xml"
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Arts</title><link>https://arts.example/</link>'
        "<description>d</description><item><title>Opera and parliament</title>"
        "<link>https://arts.example/1</link><category>politics</category>"
        "<pubDate>Thu, 22 Jan 2026 10:00:00 +0000</pubDate></item></channel></rss>",
        encoding="utf-8",
    )
    return path


def categories(ws: Workspace) -> dict[str, str]:
    db = ws.db()
    try:
        return {r["title"]: r["category"] for r in db.query("SELECT title, category FROM articles")}
    finally:
        db.close()


def test_the_sample_config_maps_no_category(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")  # `digest init`'s own digest.toml
    assert ws.config.ingest.category_aliases == {}
    result = ws.run_cli("ingest", str(write_articles(tmp_path)))
    assert result.exit_code == 0, result.output
    assert categories(ws)["Vote on the budget"] == "Politics"


def test_recategorize_applies_changed_aliases_to_stored_articles(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", append=ALIASES)
    assert ws.run_cli("feeds", "add", str(write_feed(tmp_path)), "--category", "Culture").exit_code == 0
    assert ws.run_cli("ingest").exit_code == 0
    assert ws.run_cli("ingest", str(write_articles(tmp_path))).exit_code == 0
    assert categories(ws) == {
        "Vote on the budget": "World",
        "A new phone": "tech",
        "Rain on Sunday": "General",
        "Opera and parliament": "Culture",
    }
    ws.edit_config('"politics" = "World"', '"tech" = "Technology"')

    result = ws.run_cli("ingest", "--recategorize")

    assert result.exit_code == 0, result.output
    assert result.output == "Recategorized 2 articles\n"
    assert categories(ws) == {
        "Vote on the budget": "Politics",
        "A new phone": "Technology",
        "Rain on Sunday": "General",
        "Opera and parliament": "Culture",  # the feed's own category, not an alias's
    }
    again = ws.run_cli("ingest", "--recategorize")
    assert again.output == "Recategorized 0 articles\n"
    # a later ingest of the same items sees nothing new: the stored rows match what it makes
    refetch = ws.run_cli("ingest", str(tmp_path / "articles.jsonl"))
    assert "0 new, 0 updated, 3 unchanged" in refetch.output


def test_recategorize_takes_no_source(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    result = ws.run_cli("ingest", "--recategorize", "feed.xml")
    assert result.exit_code == 2 and "--recategorize fetches nothing" in result.output


@pytest.mark.sqlite_only("builds a database of an older schema by hand, as an SQLite file, and upgrades it")
def test_articles_stored_before_m018_take_their_category_as_the_sources(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    conn.execute(
        "CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT)"
    )
    old = sqlite_utils.Database(conn)
    for migration in MIGRATIONS:
        if migration.__name__ == "m020_source_categories":
            continue
        migration(old)
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, 'x')", [migration.__name__])
    conn.execute("INSERT INTO feeds (id, url, category, created_at) VALUES (1, '/f1', 'Culture', 'x')")
    conn.execute("INSERT INTO feeds (id, url, category, created_at) VALUES (2, '/f2', NULL, 'x')")
    for n, (category, feed_id) in enumerate([("tech", 1), ("tech", 2), ("tech", None)], 1):
        conn.execute(
            "INSERT INTO articles (guid, url, title, category, published_at, feed_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, '2026-01-22T10:00:00Z', ?, 'x', 'x')",
            [f"g{n}", f"https://example.org/{n}", f"Story {n}", category, feed_id],
        )
    conn.close()
    ws = new_workspace(
        tmp_path / "ws", append='\n[ingest.category_aliases]\n"tech" = "Technology"\n', db=False
    )
    db = open_store(path)
    try:
        rows = db.execute("SELECT title, source_category FROM articles ORDER BY id").fetchall()
        assert rows == [("Story 1", None), ("Story 2", "tech"), ("Story 3", "tech")]
        assert recategorize_articles(db, ws.config) == 2
        after = db.execute("SELECT category FROM articles ORDER BY id").fetchall()
        # a --category feed's article is left as stored
        assert after == [("tech",), ("Technology",), ("Technology",)]
    finally:
        db.close()
