"""Ingest from files: feeds and article files, identity, dates, categories, bad input."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import load_config
from digest.ingest.articles import list_articles
from digest.ingest.sources import ingest_sources
from digest.store.database import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path):
    return open_store(tmp_path / "ingest.db")


@pytest.fixture
def config():
    cfg = load_config(None)
    cfg.ingest.category_aliases = {"tech": "Technology", "sci": "Science"}
    return cfg


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The fixtures copied next to the test (so relative names work as a user types them)."""
    for f in FIXTURES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def by_title(db) -> dict[str, dict]:
    return {row["title"]: row for row in list_articles(db)}


def test_rss_feed_fields(db, config, files) -> None:
    (result,) = ingest_sources(db, config, ["harbour-gazette.rss"], now=NOW)
    assert result.error is None
    assert (result.new, result.updated, result.unchanged) == (4, 0, 0)
    assert any("without a link" in w for w in result.warnings)
    rows = by_title(db)

    ferry = rows["Ferry timetable changes for winter"]
    assert ferry["url"] == "https://gazette.example.net/2026/ferry-winter?page=2"  # utm_* gone
    assert ferry["published_at"] == "2026-01-05T06:30:00+00:00"
    assert ferry["date_estimated"] is False
    assert ferry["author"] == "Mira Holt"
    assert ferry["source"] == "The Harbour Gazette"
    assert ferry["category"] == "transport"  # first item category, no alias for it
    assert ferry["summary"] == (
        '<p>The <b>night ferry</b> will stop at 22:00. See the <a href="https://gazette.example.net'
        '/timetables/winter">new timetable</a> or this.</p>'
    )
    assert ferry["summary_text"] == "The night ferry will stop at 22:00. See the new timetable or this."

    light = rows["Lighthouse restoration finished"]
    assert light["category"] == "Technology"  # "tech" through the alias
    assert light["published_at"] == "2026-01-07T08:00:00+00:00"  # dc:date as a Unix timestamp
    # No description: a summary from the content, cut at a sentence boundary within 60 words.
    assert light["summary_text"].startswith("After three years of work the old lighthouse shines again.")
    assert light["summary_text"].endswith("painted the new door.")
    assert len(light["summary_text"].split()) <= 60
    assert light["summary"] == f"<p>{light['summary_text']}</p>"

    fish = rows["Fish market moves indoors"]  # a Greek date: no crash, estimated
    assert fish["date_estimated"] is True
    assert fish["published_at"] == "2026-01-12T06:00:00+00:00"
    assert fish["category"] == "General"
    assert fish["summary_text"] == "Plain text summary: stalls open at six & close at noon."


def test_duplicate_guid_in_one_feed_keeps_different_articles_apart(db, config, files) -> None:
    (result,) = ingest_sources(db, config, ["harbour-gazette.rss"], now=NOW)
    rows = by_title(db)
    assert "Fish market moves indoors" in rows and "Harbour festival programme" in rows
    assert rows["Fish market moves indoors"]["guid"] != rows["Harbour festival programme"]["guid"]
    assert any("guid" in w for w in result.warnings)


def test_reingest_adds_nothing_and_a_change_updates(db, config, files) -> None:
    sources = ["harbour-gazette.rss", "lab-notes.atom", "articles.jsonl", "articles.json", "articles.csv"]
    first = ingest_sources(db, config, sources, now=NOW)
    assert all(r.error is None for r in first), [r.error for r in first]
    count = len(list_articles(db))
    assert count == sum(r.new for r in first) == 13
    later = datetime(2026, 1, 13, 6, 0, tzinfo=UTC)
    again = ingest_sources(db, config, sources, now=later)
    assert [(r.new, r.updated) for r in again] == [(0, 0)] * len(sources)
    assert sum(r.unchanged for r in again) == count
    assert len(list_articles(db)) == count
    # Undated items keep their first estimated date.
    assert by_title(db)["Fish market moves indoors"]["published_at"] == "2026-01-12T06:00:00+00:00"

    feed = files / "harbour-gazette.rss"
    feed.write_text(feed.read_text().replace("Lighthouse restoration finished", "Lighthouse restored"))
    (changed,) = ingest_sources(db, config, ["harbour-gazette.rss"], now=later)
    assert (changed.new, changed.updated, changed.unchanged) == (0, 1, 3)
    titles = by_title(db)
    assert "Lighthouse restored" in titles and "Lighthouse restoration finished" not in titles
    assert len(titles) == count


def test_atom_relative_links_categories_and_html_titles(db, config, files) -> None:
    (result,) = ingest_sources(db, config, ["lab-notes.atom"], now=NOW)
    assert result.error is None, result.error
    rows = by_title(db)
    note = rows["Calibrating the spectrometer"]  # HTML title made plain
    assert note["url"] == "https://lab.example.org/notes/2026/calibration"
    assert 'href="https://lab.example.org/notes/data/run-3.csv"' in note["summary"]
    assert note["category"] == "Science"  # the URL-shaped scheme term is skipped, label wins
    assert note["published_at"] == "2026-01-06T10:00:00+00:00"  # updated, as UTC
    assert note["source"] == "Lab Notes"
    musing = rows["Undated musings"]
    assert musing["date_estimated"] is True
    assert musing["summary_text"] == "Short thought. About us."


def test_a_category_takes_the_configured_spelling(db, workspace: Path, tmp_path: Path) -> None:
    """Subscribers store the config's spelling (Technology); a feed's technology, SCIENCE or an
    alias target in another case must arrive spelled as configured, else no reader matches."""
    config = load_config(workspace / "digest.toml")
    assert "Technology" in config.editions["daily"].categories
    config.ingest.category_aliases = {"gadgets": "technology"}
    items = "".join(
        f"<item><title>{t}</title><link>https://spelling.example/{n}</link>"
        f"<pubDate>Mon, 05 Jan 2026 0{n}:00:00 GMT</pubDate><category>{c}</category></item>"
        for n, (t, c) in enumerate(
            [("One", "technology"), ("Two", "SCIENCE"), ("Three", "Gadgets"), ("Four", "tidepools")], 1
        )
    )
    feed = tmp_path / "spelling.rss"
    feed.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Spelling</title>{items}</channel></rss>',
        encoding="utf-8",
    )
    (result,) = ingest_sources(db, config, [str(feed)], now=NOW)
    assert result.error is None, result.error
    rows = by_title(db)
    assert {t: rows[t]["category"] for t in ("One", "Two", "Three", "Four")} == {
        "One": "Technology",
        "Two": "Science",
        "Three": "Technology",
        "Four": "tidepools",  # not configured anywhere: kept as the feed spells it
    }


def test_an_eleven_digit_date_is_not_a_unix_time_and_feedparsers_reading_is_kept(
    db, config, tmp_path
) -> None:
    """One Unix-time pattern for ingest and parse_date: 9-10 digits (seconds) or 12-13
    (milliseconds). An 11-digit value is neither, so feedparser's own date (20260105123 reads
    as 5 Jan 2026) is used rather than skipped; 10 digits are still seconds."""
    from digest.ingest.articles import UNIX_TIME

    assert not UNIX_TIME.match("20260105123") and UNIX_TIME.match("1767609000")
    items = "".join(
        f"<item><title>{t}</title><link>https://digits.example/{t}</link><pubDate>{d}</pubDate></item>"
        for t, d in (("eleven", "20260105123"), ("ten", "1767609000"))
    )
    feed = tmp_path / "digits.rss"
    feed.write_text(
        f'<rss version="2.0"><channel><title>Digits</title>{items}</channel></rss>', encoding="utf-8"
    )
    (result,) = ingest_sources(db, config, [str(feed)], now=NOW)
    assert result.error is None, result.error
    rows = by_title(db)
    assert rows["eleven"]["published_at"] == "2026-01-05T00:00:00+00:00"
    assert rows["eleven"]["date_estimated"] is False
    assert rows["ten"]["published_at"] == "2026-01-05T10:30:00+00:00"


def test_feed_category_wins_and_the_feed_learns_its_name(db, config, files) -> None:
    from digest.ingest.feeds import add_feed, get_feed

    feed = add_feed(db, "harbour-gazette.rss", category="Local news")
    (result,) = ingest_sources(db, config, None, now=NOW)
    assert result.error is None and result.new == 4
    assert {r["category"] for r in list_articles(db)} == {"Local news"}
    assert {r["feed_id"] for r in list_articles(db)} == {feed["id"]}
    stored = get_feed(db, feed["id"])
    assert stored["name"] == "The Harbour Gazette"
    assert stored["last_status"] == "4 new, 0 updated, 0 unchanged"
    assert stored["last_error"] is None


def test_article_files_in_three_formats(db, config, files) -> None:
    results = ingest_sources(db, config, ["articles.jsonl", "articles.json", "articles.csv"], now=NOW)
    assert [(r.error, r.new) for r in results] == [(None, 3), (None, 2), (None, 2)]
    rows = by_title(db)
    tidal = rows["Tidal power plant approved"]
    assert tidal["url"] == "https://coast.example.com/tidal"
    assert (tidal["category"], tidal["source"], tidal["author"]) == ("Energy", "Coast Weekly", "Ines Varga")
    assert rows["New cycle lane on the esplanade"]["published_at"] == "2026-01-04T08:15:00+00:00"
    assert rows["New cycle lane on the esplanade"]["summary_text"].startswith("The lane opens in spring.")
    assert rows["Sea swimming club turns 100"]["published_at"] == "2026-01-05T08:00:00+00:00"
    assert rows["Museum night returns"]["published_at"] == "2026-01-03T00:00:00+00:00"
    assert (
        rows["Bridge inspection results"]["summary"] == "<p>All <strong>twelve</strong> bridges passed.</p>"
    )
    assert rows["Bridge inspection results"]["date_estimated"] is True
    assert rows["Market, square and stage"]["published_at"] == "2026-01-02T12:00:00+00:00"
    assert rows["Library extends hours"]["category"] == "Culture"


def test_format_is_sniffed_from_content_not_the_name(db, config, files) -> None:
    shutil.copy(files / "articles.jsonl", files / "export.txt")
    shutil.copy(files / "harbour-gazette.rss", files / "misnamed.json")
    shutil.copy(files / "articles.csv", files / "table.xml")
    results = ingest_sources(db, config, ["export.txt", "misnamed.json", "table.xml"], now=NOW)
    assert [(r.error, r.kind, r.new) for r in results] == [
        (None, "articles", 3),
        (None, "feed", 4),
        (None, "articles", 2),
    ]


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return path.name


GOOD = '{"title": "Row %d", "url": "https://ex.org/%d"}'


def test_bad_jsonl_rows_name_the_line_and_store_nothing(db, config, files) -> None:
    lines = [GOOD % (i, i) for i in range(1, 7)] + ['{"title": "No link here"}'] + [GOOD % (8, 8)]
    name = write(files / "articles.jsonl", "\n".join(lines) + "\n")
    (result,) = ingest_sources(db, config, [name], now=NOW)
    assert result.error == 'articles.jsonl line 7: missing "url"'
    assert (result.new, result.updated, result.unchanged) == (0, 0, 0)
    assert list_articles(db) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"title": "A", "url": "https://ex.org/a", "published": "next tuesday"}', 'bad date in "published"'),
        ('{"title": "A", "url": "https://ex.org/a", "published": "2026-02-31"}', 'bad date in "published"'),
        ('{"title": "A", "url": "https://ex.org/a"', "invalid JSON"),
        ('{"url": "https://ex.org/a"}', 'missing "title"'),
        ('{"title": "A", "url": "javascript:alert(1)"}', '"url" is not an http(s) URL'),
        ('{"title": ["A"], "url": "https://ex.org/a"}', '"title" must be text'),
        ('["not", "an", "object"]', "expected an object"),
    ],
)
def test_each_kind_of_bad_row(db, config, files, line: str, message: str) -> None:
    name = write(files / "feed-export.jsonl", f"{GOOD % (1, 1)}\n{GOOD % (2, 2)}\n{line}\n")
    (result,) = ingest_sources(db, config, [name], now=NOW)
    assert result.error is not None
    assert result.error.startswith(f"feed-export.jsonl line 3: {message}")
    assert list_articles(db) == []


def test_skip_invalid_stores_the_valid_rows_and_lists_the_rest(db, config, files) -> None:
    lines = [
        GOOD % (1, 1),
        '{"title": "No link"}',
        "{broken json",
        GOOD % (4, 4),
        '{"title": "Bad date", "url": "https://ex.org/5", "published": "31/31/2026"}',
    ]
    name = write(files / "articles.jsonl", "\n".join(lines))
    (result,) = ingest_sources(db, config, [name], skip_invalid=True, now=NOW)
    assert result.error is None
    assert result.new == 2
    assert sorted(r["title"] for r in list_articles(db)) == ["Row 1", "Row 4"]
    skipped = [w for w in result.warnings if w.endswith("(skipped)")]
    assert [w.split(":")[0] for w in skipped] == [
        "articles.jsonl line 2",
        "articles.jsonl line 3",
        "articles.jsonl line 5",
    ]
    assert skipped[0] == 'articles.jsonl line 2: missing "url" (skipped)'


def test_json_array_errors_point_at_the_line(db, config, files) -> None:
    text = '[\n  {"title": "A", "url": "https://ex.org/a"},\n  {"title": "B"},\n  {"title": "C", "url": "https://ex.org/c"}\n]\n'
    name = write(files / "articles.json", text)
    (result,) = ingest_sources(db, config, [name], now=NOW)
    assert result.error == 'articles.json line 3: missing "url"'
    broken = write(
        files / "broken.json", '[\n  {"title": "A", "url": "https://ex.org/a"},\n  {"title": "B",,}\n]'
    )
    (result,) = ingest_sources(db, config, [broken], skip_invalid=True, now=NOW)
    assert result.error is not None and result.error.startswith("broken.json line 3: invalid JSON")
    assert list_articles(db) == []


def test_csv_errors_count_physical_lines(db, config, files) -> None:
    text = 'title,url,summary\nA,https://ex.org/a,"two\nlines"\nB,,no url\n'
    name = write(files / "list.csv", text)
    (result,) = ingest_sources(db, config, [name], now=NOW)
    assert result.error == 'list.csv line 4: missing "url"'
    nourl = write(files / "nourl.csv", "title,link\nA,https://ex.org/a\n")
    (result,) = ingest_sources(db, config, [nourl], now=NOW)
    assert result.error is not None and "nourl.csv" in result.error


def test_one_failing_source_does_not_stop_the_others(db, config, files) -> None:
    write(files / "garbage.txt", "just some words\nnothing structured\n")
    write(files / "empty.xml", "")
    write(files / "page.html", "<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>")
    write(files / "not-a-feed.xml", "<?xml version='1.0'?><note><to>x</to></note>")
    results = ingest_sources(
        db,
        config,
        [
            "missing.rss",
            "garbage.txt",
            "empty.xml",
            "page.html",
            "not-a-feed.xml",
            "articles.csv",
            "gopher://x/",
        ],
        now=NOW,
    )
    errors = [r.error for r in results]
    assert errors[0] == "missing.rss: no such file"
    assert errors[1] is not None and errors[1].startswith("garbage.txt: not a feed")
    assert errors[2] == "empty.xml: empty"
    assert errors[3] is not None and "web page" in errors[3]
    assert errors[4] is not None and errors[4].startswith("not-a-feed.xml:")
    assert errors[5] is None and results[5].new == 2
    assert errors[6] is not None and "unsupported URL scheme" in errors[6]
    for error in errors:
        assert error is None or "\n" not in error
    assert len(list_articles(db)) == 2


def test_cli_ingest_prints_one_line_per_source_and_exits_1(run_cli, files) -> None:
    lines = [GOOD % (i, i) for i in range(1, 7)] + ['{"title": "No link here"}']
    write(files / "articles.jsonl", "\n".join(lines) + "\n")
    result = run_cli("ingest", "articles.csv", "articles.jsonl", "nothing-here.xml")
    assert result.exit_code == 1
    assert "articles.csv: 2 new, 0 updated, 0 unchanged" in result.stdout
    assert 'Error: articles.jsonl line 7: missing "url"' in result.stderr
    assert "Error: nothing-here.xml: no such file" in result.stderr
    assert "Traceback" not in result.output

    result = run_cli("ingest", "articles.jsonl", "--skip-invalid")
    assert result.exit_code == 0
    assert "articles.jsonl: 6 new, 0 updated, 0 unchanged" in result.stdout
    assert 'articles.jsonl line 7: missing "url" (skipped)' in result.stderr

    again = run_cli("ingest", "articles.csv", "articles.jsonl", "--skip-invalid")
    assert again.exit_code == 0
    assert "articles.csv: 0 new, 0 updated, 2 unchanged" in again.stdout
    rows = json.loads(run_cli("articles", "list", "--json").stdout)
    assert len(rows) == 8


def test_cli_ingest_stored_feeds(run_cli, files) -> None:
    assert run_cli("ingest").output.startswith("No feeds to ingest")
    assert run_cli("feeds", "add", str(files / "lab-notes.atom"), "--category", "Science").exit_code == 0
    result = run_cli("ingest")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{files / 'lab-notes.atom'}: 2 new, 0 updated, 0 unchanged"


def test_the_same_article_in_two_feeds_is_one_row(db, config, files) -> None:
    from digest.ingest.feeds import add_feed

    shutil.copy(files / "harbour-gazette.rss", files / "gazette-mirror.rss")
    add_feed(db, "harbour-gazette.rss", category="Harbour")
    add_feed(db, "gazette-mirror.rss", category="Mirror")
    config.ingest.concurrency = 1  # one at a time, so the first feed is the one read first
    first, mirror = ingest_sources(db, config, None, now=NOW)
    assert (first.new, mirror.new, mirror.unchanged) == (4, 0, 4)
    assert {r["category"] for r in list_articles(db)} == {"Harbour"}
    assert len(list_articles(db)) == 4


def test_dates_far_in_the_future_or_out_of_range_never_crash(db, config, files) -> None:
    feed = (files / "harbour-gazette.rss").read_text()
    feed = feed.replace("Mon, 05 Jan 2026 07:30:00 +0100", "Fri, 31 Dec 2055 07:30:00 +0000")
    feed = feed.replace("<dc:date>1767772800</dc:date>", "<dc:date>99999999999999</dc:date>")
    write(files / "future.rss", feed)
    (result,) = ingest_sources(db, config, ["future.rss"], now=NOW)
    assert result.error is None and result.new == 4
    assert any("dated in the future" in w for w in result.warnings)
    rows = by_title(db)
    ferry = rows["Ferry timetable changes for winter"]
    assert (ferry["published_at"], ferry["date_estimated"]) == ("2026-01-12T06:00:00+00:00", True)
    assert rows["Lighthouse restoration finished"]["date_estimated"] is True

    lines = [
        '{"title": "A", "url": "https://ex.org/a", "published": "9999-12-31T23:00:00-05:00"}',
        '{"title": "B", "url": "https://ex.org/b", "published": "0001-01-01T00:00:00+05:00"}',
        '{"title": "C", "url": "https://ex.org/c", "published": 1e300}',
    ]
    name = write(files / "odd-dates.jsonl", "\n".join(lines))
    (result,) = ingest_sources(db, config, [name], skip_invalid=True, now=NOW)
    assert result.error is None and result.new == 0
    assert [w.split(":")[0] for w in result.warnings] == [f"odd-dates.jsonl line {n}" for n in (1, 2, 3)]


def test_csv_with_semicolons_or_tabs(db, config, files) -> None:
    semi = write(files / "export.csv", "Title;URL;Category\nFerry news;https://ex.org/f;World\n")
    tabs = write(files / "export.tsv", "title\turl\nTide news\thttps://ex.org/t\n")
    results = ingest_sources(db, config, [semi, tabs], now=NOW)
    assert [(r.error, r.new) for r in results] == [(None, 1), (None, 1)]
    assert by_title(db)["Ferry news"]["category"] == "World"
