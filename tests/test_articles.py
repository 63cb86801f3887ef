"""Article identity, upsert rules, listing and the `digest articles` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_switch import store_at

from digest.config import load_config
from digest.errors import DigestError, NotFound
from digest.ingest.articles import (
    ArticleInput,
    add_article,
    get_article,
    identity,
    list_articles,
    parse_date,
    parse_when,
    prepare_article,
    upsert_article,
)
from digest.ingest.urls import canonical_url, clean_url
from digest.store.database import transaction

NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path):
    return store_at(tmp_path / "a.db")


@pytest.fixture
def config():
    cfg = load_config(None)
    cfg.ingest.category_aliases = {"tech": "Technology"}
    return cfg


def test_tracking_parameters_are_removed() -> None:
    url = "https://ex.org/story?id=7&utm_source=rss&utm_medium=x&fbclid=abc&gclid=1&page=2#comments"
    assert clean_url(url) == "https://ex.org/story?id=7&page=2#comments"
    assert canonical_url(url) == "https://ex.org/story?id=7&page=2"
    assert canonical_url("HTTPS://Ex.Org:443") == "https://ex.org/"
    assert canonical_url("http://ex.org:8080/a") == "http://ex.org:8080/a"


def test_identity_rules() -> None:
    when = datetime(2026, 1, 5, tzinfo=UTC)
    # guid first; URL-shaped guids are canonicalised, tag:/urn: kept, bare ones scoped.
    assert identity("tag:ex.org,2026:1", "https://ex.org/a", "T", when) == "tag:ex.org,2026:1"
    assert identity("https://ex.org/a?utm_source=x", None, "T", when) == "https://ex.org/a"
    assert identity("42", "https://ex.org/a", "T", when, scope="feedA") == "feedA#42"
    assert identity("42", "https://ex.org/a", "T", when, scope="feedB") == "feedB#42"
    # then the canonical link
    assert identity(None, "https://ex.org/a?utm_campaign=y", "T", when) == "https://ex.org/a"
    # then a hash of title + date
    hashed = identity(None, None, "Title", when)
    assert hashed.startswith("sha256:")
    assert hashed == identity(None, None, "  Title ", when)
    assert hashed != identity(None, None, "Title", when + timedelta(days=1))


def _row(config, **kw):
    item = ArticleInput(
        title=kw.pop("title", "Harbour opens"), url=kw.pop("url", "https://ex.org/harbour"), **kw
    )
    return prepare_article(config, item, now=NOW)


def test_upsert_new_unchanged_updated(db, config) -> None:
    when = datetime(2026, 1, 5, 8, tzinfo=UTC)
    with transaction(db):
        assert upsert_article(db, _row(config, published=when), now=NOW) == "new"
        assert upsert_article(db, _row(config, published=when), now=NOW) == "unchanged"
        assert upsert_article(db, _row(config, published=when, title="Harbour reopens"), now=NOW) == "updated"
    rows = list_articles(db)
    assert len(rows) == 1
    assert rows[0]["title"] == "Harbour reopens"


def test_estimated_date_never_replaces_a_stored_one(db, config) -> None:
    with transaction(db):
        upsert_article(db, _row(config), now=NOW)
        later = NOW + timedelta(hours=5)
        assert upsert_article(db, prepare_article(config, _input(), now=later), now=later) == "unchanged"
    (row,) = list_articles(db)
    assert row["published_at"] == "2026-01-12T06:00:00+00:00"
    assert row["date_estimated"] is True


def _input() -> ArticleInput:
    return ArticleInput(title="Harbour opens", url="https://ex.org/harbour")


def test_same_article_from_another_feed_is_not_rewritten(db, config) -> None:
    db["feeds"].insert({"id": 1, "url": "https://a.example/feed", "created_at": "2026-01-01T00:00:00+00:00"})
    db["feeds"].insert({"id": 2, "url": "https://b.example/feed", "created_at": "2026-01-01T00:00:00+00:00"})
    first = prepare_article(
        config, ArticleInput(title="T", url="https://ex.org/x", category="A"), now=NOW, feed_id=1
    )
    second = prepare_article(
        config, ArticleInput(title="T", url="https://ex.org/x", category="B"), now=NOW, feed_id=2
    )
    with transaction(db):
        assert upsert_article(db, first, now=NOW) == "new"
        assert upsert_article(db, second, now=NOW) == "unchanged"
    (row,) = list_articles(db)
    assert row["category"] == "A" and row["feed_id"] == 1


def test_list_filters(db, config) -> None:
    with transaction(db):
        for day, category in [(1, "World"), (2, "Technology"), (3, "World"), (4, "Science")]:
            upsert_article(
                db,
                _row(
                    config,
                    url=f"https://ex.org/{day}",
                    title=f"Day {day}",
                    category=category,
                    published=datetime(2026, 1, day, 12, tzinfo=UTC),
                ),
                now=NOW,
            )
    assert [r["title"] for r in list_articles(db)] == ["Day 4", "Day 3", "Day 2", "Day 1"]
    since = datetime(2026, 1, 2, tzinfo=UTC)
    until = datetime(2026, 1, 4, tzinfo=UTC)
    assert [r["title"] for r in list_articles(db, since=since, until=until)] == ["Day 3", "Day 2"]
    assert [r["title"] for r in list_articles(db, category="world")] == ["Day 3", "Day 1"]
    assert [r["title"] for r in list_articles(db, limit=1)] == ["Day 4"]


def test_parse_date_forms() -> None:
    assert parse_date("2026-01-05") == datetime(2026, 1, 5, tzinfo=UTC)
    assert parse_date("2026-01-05T08:00:00+01:00") == datetime(2026, 1, 5, 7, tzinfo=UTC)
    assert parse_date("2026-01-05T08:00:00Z") == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert parse_date("Mon, 05 Jan 2026 08:00:00 +0000") == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert parse_date("1767600000") == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert parse_date(1767600000) == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert parse_date("1767600000000") == datetime(2026, 1, 5, 8, tzinfo=UTC)
    for bad in (
        "yesterday",
        "",
        "Σάβ, 10 Ιαν 2026 09:00:00 GMT",
        "2026-13-45",
        True,
        None,
        "99999999999999999",
    ):
        with pytest.raises(ValueError):
            parse_date(bad)


def test_parse_when() -> None:
    assert parse_when("2026-01-05", zone="Europe/Berlin") == datetime(2026, 1, 4, 23, tzinfo=UTC)
    assert parse_when("2d", now=NOW) == NOW - timedelta(days=2)
    assert parse_when("2026-01-05T10:00:00+00:00") == datetime(2026, 1, 5, 10, tzinfo=UTC)
    with pytest.raises(DigestError, match="invalid date"):
        parse_when("last week")


def test_add_article_and_get(db, config) -> None:
    result = add_article(
        db,
        config,
        title="Rust 2.0",
        url="https://ex.org/rust?utm_source=newsletter",
        category="tech",
        summary='<p onclick="x()">Big <script>alert(1)</script>news.</p>',
        source="Example Times",
        published="2026-01-05T08:00:00Z",
        now=NOW,
    )
    assert result.status == "new"
    art = get_article(db, result.article["id"])
    assert art["url"] == "https://ex.org/rust"
    assert art["category"] == "Technology"  # through the alias
    assert art["summary"] == "<p>Big news.</p>"
    assert art["published_at"] == "2026-01-05T08:00:00+00:00"
    again = add_article(db, config, title="Rust 2.0", url="https://ex.org/rust", now=NOW)
    assert again.article["id"] == art["id"]
    with pytest.raises(NotFound):
        get_article(db, 999)
    with pytest.raises(DigestError, match="--published"):
        add_article(db, config, title="x", url="https://ex.org/y", published="soon")
    with pytest.raises(DigestError, match="http"):
        add_article(db, config, title="x", url="javascript:alert(1)")


def test_cli_add_list_show(run_cli) -> None:
    result = run_cli(
        "articles",
        "add",
        "--title",
        "Museum night returns",
        "--url",
        "https://city.example.org/museum-night",
        "--category",
        "Culture",
        "--summary",
        "Doors open at <b>eight</b>.",
        "--published",
        "2026-01-03T18:00:00Z",
    )
    assert result.exit_code == 0, result.output
    assert "Added article 1: Museum night returns" in result.output
    result = run_cli("articles", "add", "--title", "Bridge", "--url", "https://city.example.org/bridge")
    assert result.exit_code == 0, result.output

    listed = run_cli("articles", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [r["title"] for r in rows] == ["Bridge", "Museum night returns"]
    assert rows[1]["date_estimated"] is False and rows[0]["date_estimated"] is True

    listed = run_cli("articles", "list", "--category", "culture")
    assert "Museum night returns" in listed.output and "Bridge" not in listed.output
    listed = run_cli("articles", "list", "--until", "2026-01-04", "--since", "2026-01-01")
    assert "Museum night returns" in listed.output and "Bridge" not in listed.output

    shown = run_cli("articles", "show", "1")
    assert shown.exit_code == 0
    assert "Doors open at eight." in shown.output and "Category:  Culture" in shown.output
    shown = json.loads(run_cli("articles", "show", "1", "--json").stdout)
    assert shown["summary"] == "Doors open at <b>eight</b>."

    missing = run_cli("articles", "show", "77")
    assert missing.exit_code == 1 and "Error: article 77 not found" in missing.output
    bad = run_cli("articles", "add", "--title", "X", "--url", "https://x.example/", "--published", "soonish")
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    bad = run_cli("articles", "list", "--since", "whenever")
    assert bad.exit_code == 1 and "invalid date" in bad.output


def test_long_description_is_cut_but_reading_time_counts_all_of_it(config) -> None:
    sentence = "The harbour crane lifted twelve containers before noon today. "
    item = ArticleInput(title="Crane", url="https://ex.org/crane", summary_html=f"<p>{sentence * 100}</p>")
    row = prepare_article(config, item, now=NOW)
    assert len(row["summary_text"].split()) <= config.ingest.summary_words
    assert row["summary_text"].endswith("noon today.")
    assert row["reading_minutes"] == 4  # 900 words at ~230 a minute


def test_adding_an_article_a_feed_already_stored_under_its_own_guid_returns_that_one(db, config) -> None:
    feed_id = db["feeds"].insert({"url": "https://ex.org/feed.xml", "created_at": "x"}).last_pk
    item = ArticleInput(title="Harbour reopens", url="https://ex.org/harbour", guid="42")
    with transaction(db):
        assert upsert_article(db, prepare_article(config, item, now=NOW, feed_id=feed_id), now=NOW) == "new"
    stored = list_articles(db)
    assert len(stored) == 1

    again = add_article(db, config, title="Harbour reopens", url="https://ex.org/harbour", now=NOW)
    assert again.status == "unchanged"
    assert again.article["id"] == stored[0]["id"]
    assert len(list_articles(db)) == 1
