"""Helpers for the compose, render, preview and issues tests: a config, articles inserted
directly into the store, and a fixed fixture issue. (No tests here.)"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from conftest import new_workspace
from store_switch import store_at

from digest.compose.build import compose_issue
from digest.compose.notes import set_issue_note
from digest.config import Config, load_config
from digest.store.database import iso

# The fixture issue's period ends here: 07:00 in Berlin on 23 Jan 2026.
PERIOD_END = datetime(2026, 1, 23, 6, 0, tzinfo=UTC)

CONFIG_TOML = """
[publication]
name = "The Harbour Gazette"
from = "The Harbour Gazette <news@harbour-gazette.example>"
base_url = "https://news.harbour-gazette.example"
postal_address = "Harbour Gazette Ltd, 4 Quay Lane, Port Elwyn, PE1 2AB"
timezone = "Europe/Berlin"

[render]
max_html_bytes = 100000

[editions.daily]
title = "Daily Briefing"
schedule = "0 7 * * *"
timezone = "Europe/Berlin"
window = "1d"
max_articles = 40
categories = ["World", "Technology", "Science"]

[editions.weekly]
title = "Weekly Review"
schedule = "0 8 * * 1"
timezone = "Europe/Berlin"
window = "7d"
max_articles = 60
categories = ["Science", "World"]

[editions.big]
title = "Everything"
schedule = "0 7 * * *"
timezone = "Europe/Berlin"
window = "1d"
max_articles = 500
categories = ["World", "Technology", "Science", "Culture"]
"""

# Invented vocabulary with a realistic spread of word lengths (mean ≈ 6 letters).
_PROSE = (
    "harbour council announced the new tidal barrier would open next spring after years of "
    "planning engineers said measurements from sensors along the estuary showed water levels "
    "rising faster than expected while residents questioned costs and the timetable for "
    "construction of flood defences across three districts researchers published findings "
    "about coastal erosion fisheries reported stronger catches market traders welcomed "
    "investment transport officials described improvements to ferries and rail connections"
)
_VOCAB = _PROSE.split()

FIXTURE_ARTICLES: list[dict[str, Any]] = [
    {
        "title": "Tidal barrier opens a year early",
        "category": "World",
        "source": "Estuary Wire",
        "minutes_before": 50,
        "summary": "Engineers finished the barrier ahead of schedule after a dry autumn let crews work "
        "through the night. The council says the first closure test will run next week.",
        "reading_minutes": 3,
    },
    {
        "title": "Q&A: <why> ferries keep running late",
        "category": "World",
        "source": "Port Elwyn Post",
        "minutes_before": 400,
        "summary": 'Timetables were written for older boats, operators say; "new hulls" need longer to '
        "dock & turn around.",
        "reading_minutes": 5,
    },
    {
        "title": "Open-source tide tables reach version 2",
        "category": "Technology",
        "source": "Quay Labs",
        "minutes_before": 120,
        "summary": "The volunteer project now predicts tides for forty harbours and publishes its "
        "data under an open licence.",
        "reading_minutes": 2,
    },
    {
        "title": "Seagrass meadows store more carbon than thought",
        "category": "Science",
        "source": "Coastal Review",
        "minutes_before": 200,
        "summary": "Core samples from the bay suggest the meadows lock away carbon three times faster "
        "than the estimate used in regional plans.",
        "reading_minutes": 4,
    },
    {
        "title": "Lighthouse festival returns",
        "category": "Arts",
        "source": "",
        "minutes_before": 300,
        "summary": "",
        "reading_minutes": 1,
    },
]


def write_config(folder: Path) -> Path:
    """A digest.toml for the tests (with a database beside it)."""
    return new_workspace(folder, config=CONFIG_TOML, db=False).config_file


def make_store(folder: Path) -> tuple[Config, sqlite_utils.Database]:
    """Config and an empty, migrated store in ``folder``."""
    config = load_config(write_config(folder))
    return config, store_at(config.db_path)


def add_article(
    db: sqlite_utils.Database,
    *,
    title: str,
    category: str,
    published_at: datetime,
    url: str | None = None,
    source: str = "Estuary Wire",
    summary: str = "",
    reading_minutes: int = 2,
) -> int:
    """Insert one article row as the ingest would store it; returns its id."""
    now = iso(published_at)
    guid = url or f"urn:test:{category}:{title}:{now}"
    return (
        db["articles"]
        .insert(
            {
                "guid": guid,
                "url": url
                or f"https://news.example.org/{category.lower()}/{hashlib.sha1(guid.encode()).hexdigest()[:10]}",
                "title": title,
                "source": source,
                "author": "",
                "category": category,
                "published_at": now,
                "summary": summary,
                "summary_text": summary,
                "reading_minutes": reading_minutes,
                "created_at": now,
                "updated_at": now,
            }
        )
        .last_pk
    )


def add_fixture_articles(db: sqlite_utils.Database, *, query: str = "") -> None:
    """Store the five fixture articles; ``query`` is appended to each URL."""
    for i, a in enumerate(FIXTURE_ARTICLES):
        add_article(
            db,
            title=a["title"],
            category=a["category"],
            published_at=PERIOD_END - timedelta(minutes=a["minutes_before"]),
            url=f"https://news.harbour-gazette.example/2026/01/22/story-{i + 1}{query}",
            source=a["source"],
            summary=a["summary"],
            reading_minutes=a["reading_minutes"],
        )


def fixture_issue(config: Config, db: sqlite_utils.Database) -> dict[str, Any]:
    """The fixed five-article issue used by the golden and screenshot tests."""
    add_fixture_articles(db, query="?ref=digest&src=email")
    result = compose_issue(db, config, "daily", period_end=PERIOD_END)
    assert result.issue is not None
    return result.issue


def summary_words(n: int, seed: int) -> str:
    """``n`` words of invented prose, the same for the same seed."""
    rng = random.Random(seed)
    words = [rng.choice(_VOCAB) for _ in range(n)]
    return (" ".join(words).capitalize() + ".")[:2000]


def big_issue(
    config: Config, db: sqlite_utils.Database, count: int, *, words: int = 60, edition: str = "big"
) -> dict[str, Any]:
    """An issue of ``count`` articles with ``words``-word summaries and long, realistic URLs."""
    categories = ["World", "Technology", "Science", "Culture", "Business", "Sport"]
    for i in range(count):
        add_article(
            db,
            title=f"Council weighs plan {i} for the estuary as costs of the tidal barrier rise again",
            category=categories[i % len(categories)],
            published_at=PERIOD_END - timedelta(minutes=5 * i + 1),
            url=f"https://www.harbour-gazette-news.example/2026/01/22/estuary/council-weighs-plan-{i}-tidal-barrier",
            source="Harbour Gazette Newsroom",
            summary=summary_words(words, i),
            reading_minutes=1 + i % 9,
        )
    result = compose_issue(db, config, edition, period_end=PERIOD_END)
    assert result.issue is not None
    return result.issue


def enrich(db: sqlite_utils.Database, issue: dict[str, Any], *, image: bool = False) -> dict[str, Any]:
    """The fixture issue with every optional card field (a byline, a labelled summary, "also
    covered by", an undated story, optionally a lead image) and an editor's note."""
    snapshot = json.loads(issue["snapshot"])
    first = snapshot["categories"][0]["articles"][0]
    first.update(
        author="Mara Quill",
        summary_label="AI-generated summary",
        also_covered=[
            {"source": "Port Elwyn Post", "url": "https://post.example/barrier"},
            {"source": "Coastal Review", "url": "https://review.example/b?x=1&y=2"},
        ],
    )
    if image:
        first["image"] = {"url": "https://images.example/barrier.jpg", "width": 1200, "height": 800}
    snapshot["categories"][-1]["articles"][0]["undated"] = True
    db.execute("UPDATE issues SET snapshot = ? WHERE id = ?", [json.dumps(snapshot), issue["id"]])
    set_issue_note(
        db, issue["id"], "A word from the editor: the festival starts on Friday.\n\nSee you there."
    )
    return dict(db["issues"].get(issue["id"]))


def png_bytes(width: int, height: int, rgb: tuple[int, int, int] = (29, 78, 216)) -> bytes:
    """A real PNG file of one colour (made here: no image library needed to write one)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
