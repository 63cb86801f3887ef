"""Category aliases: the sample config maps nothing by itself, and `digest ingest --recategorize`
applies changed aliases to the articles already stored (a feed's own --category stays)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Workspace, new_workspace

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
