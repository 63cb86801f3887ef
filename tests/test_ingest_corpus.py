"""Every file in the shared real-world feed corpus ingests or fails with one clear line.

The corpus (../shared/corpus/feeds, see its INDEX.md) holds feeds copied from the test
suites of feedparser and feedjira: broken XML, odd encodings, script and event-handler
payloads, relative links, a 614 KB feed. Skipped only when the folder is absent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_switch import store_at

from digest.cli import cli
from digest.config import load_config
from digest.errors import DigestError
from digest.ingest.articles import prepare_article
from digest.ingest.feed_entries import parse_feed
from digest.ingest.fetch import fetch
from digest.ingest.sources import ingest_sources

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds"

NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
UNSAFE = re.compile(
    r"<script|javascript:|<iframe|<style|<[^>]*\son[a-z]+\s*=[^>]*>|\bon[a-z]+\s*=\s*[\"']",
    re.IGNORECASE,
)

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus folder {CORPUS} is absent")


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []


def test_the_corpus_is_there() -> None:
    assert len([p for p in corpus_files() if p.suffix == ".xml"]) >= 30


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_each_file_ingests_or_fails_with_one_clear_line(path: Path, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("")  # a workspace with the defaults
    db = tmp_path / "corpus.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "ingest", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    out_lines = result.stdout.splitlines()
    if result.exit_code == 0:
        assert out_lines == [f"{path}: " + out_lines[0].split(": ", 1)[1]]
        assert re.fullmatch(r"\d+ new, \d+ updated, \d+ unchanged", out_lines[0].split(": ", 1)[1])
    else:
        assert result.exit_code == 1
        assert out_lines == []
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr
        assert str(path) in errors[0]
        assert "unexpected" not in errors[0]  # a clear reason, not a caught crash


def test_whole_corpus_safe_and_idempotent(tmp_path: Path) -> None:
    config = load_config(None)
    db = store_at(tmp_path / "corpus.db")
    sources = [str(p) for p in corpus_files()]
    first = ingest_sources(db, config, sources, now=NOW)
    for result in first:
        assert result.error is None or ("\n" not in result.error and "unexpected" not in result.error), (
            result.error
        )
    stored = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    assert stored == sum(r.new for r in first) > 100
    # Feeds that parse with warnings but have entries are ingested.
    ok = {Path(r.source).name for r in first if r.error is None and r.new}
    assert {
        "rss20_techcrunch_javascript_urls_leading_ws.xml",
        "rss20_cre_614kb_scripts.xml",
        "atom_undeclared_namespace_prefix.xml",
        "sanitize_large_css_backtracking_russian.xml",
        "rss20_invalid_date_unix_timestamp.xml",
    } <= ok

    for row in db.query("SELECT id, summary, summary_text, title FROM articles"):
        assert not UNSAFE.search(row["summary"]), (row["id"], row["summary"])

    again = ingest_sources(db, config, sources, now=datetime(2026, 1, 13, tzinfo=UTC))
    assert sum(r.new + r.updated for r in again) == 0
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == stored


def test_every_entry_sanitises_clean_even_those_not_stored() -> None:
    """Entries without a link are not stored, so check the sanitised output of every entry."""
    config = load_config(None)
    checked = 0
    for path in corpus_files():
        if path.suffix != ".xml":
            continue
        fetched = fetch(str(path))
        try:
            items, _ = parse_feed(config, str(path), fetched, None, [])
        except DigestError:  # a rejected file has nothing to check
            continue
        for item in items:
            item.url = item.url or "https://placeholder.example/"
            row = prepare_article(config, item, now=NOW)
            assert not UNSAFE.search(row["summary"]), (path.name, row["summary"])
            checked += 1
    assert checked > 150


def test_known_cases_come_out_right(tmp_path: Path) -> None:
    config = load_config(None)
    db = store_at(tmp_path / "corpus.db")
    names = [
        "rss20_invalid_date_unix_timestamp.xml",
        "atom_samruby_xhtml_relative.xml",
        "malformed_unescaped_ampersand_link.xml",
        "rss20_no_dates_guid_permalink_variants.xml",
    ]
    results = ingest_sources(db, config, [str(CORPUS / n) for n in names], now=NOW)
    assert [r.error for r in results] == [None] * 4

    def row(where: str, *args: str) -> dict:
        return next(iter(db.query(f"SELECT * FROM articles WHERE {where}", list(args))))

    # pubDate wins over a dc:date Unix timestamp.
    assert row("url = ?", "http://example.com/item0")["published_at"] == "2017-10-16T15:10:00+00:00"
    # Relative Atom links resolve against the feed's self link (the file has no URL of its own).
    plex = row("title = ?", "Plex")
    assert plex["url"] == "http://intertwingly.net/blog/2013/01/30/Plex"
    assert plex["published_at"] == "2013-01-30T18:12:03+00:00"  # only <updated>
    # A bare & in a link must not turn into &b;=.
    amp = row("url LIKE ?", "%a=1%")
    assert "a=1&b=2" in amp["url"]
    # No dates anywhere: estimated; guid/link variants: four distinct articles.
    nodates = list(db.query("SELECT * FROM articles WHERE url LIKE 'http://example.com/_'"))
    assert len(nodates) == 4 and all(r["date_estimated"] for r in nodates)
    assert row("title = ?", "Item 4")["url"] == "http://example.com/4"
