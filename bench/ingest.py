"""Ingest throughput over the shared feed corpus, and the sanitiser on its worst inputs.

Prints figures; never passes or fails on time.

    python bench/ingest.py [--rounds N] [--corpus DIR] [--big-items N] [--entity-mb MB]

- items/second: every corpus file parsed, sanitised and stored into a fresh SQLite file
  (best of N rounds, each into a new database);
- the 614 KB feed (rss20_cre_614kb_scripts.xml) and the regex-torture file
  (sanitize_crazy_html_regex_breaker.xml): parse + sanitise + summarise, best of N;
- the sanitiser alone on inputs of growing size, to show it stays linear;
- a generated feed of ``--big-items`` items (default 100,000): the whole ingest into a
  fresh database next to feedparser's own parse of the same bytes (with the options digest
  uses: no sanitising, no URI resolving) — the ingest should stay within 3x of it;
- a feed whose one description is ``--entity-mb`` MB (default 10) of ``&amp;``: the
  whole ingest (oversized fields are cut before sanitising, with a warning).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import feedparser

from digest.config import load_config
from digest.ingest.articles import prepare_article
from digest.ingest.feed_entries import parse_feed
from digest.ingest.fetch import fetch
from digest.ingest.sanitize import sanitize_html
from digest.ingest.sources import ingest_sources
from digest.store.database import open_store

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds"
NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)


def corpus_round(files: list[Path]) -> tuple[float, int, int]:
    config = load_config(None)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_store(Path(tmp) / "bench.db")
        start = time.perf_counter()
        results = ingest_sources(db, config, [str(f) for f in files], now=NOW)
        elapsed = time.perf_counter() - start
        stored = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        db.conn.close()
    return elapsed, stored, sum(1 for r in results if r.error)


def one_file(path: Path, rounds: int) -> tuple[float, int]:
    config = load_config(None)
    best = float("inf")
    count = 0
    for _ in range(rounds):
        start = time.perf_counter()
        fetched = fetch(str(path))
        items, _ = parse_feed(config, str(path), fetched, None, [])
        for item in items:
            item.url = item.url or "https://placeholder.example/"
            prepare_article(config, item, now=NOW)
        best = min(best, time.perf_counter() - start)
        count = len(items)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--big-items", type=int, default=100_000)
    parser.add_argument("--entity-mb", type=int, default=10)
    parser.add_argument("--only-big", action="store_true", help="Only the big-feed and entity figures.")
    args = parser.parse_args()
    if args.only_big:
        big_feed_figures(args.big_items)
        entity_figures(args.entity_mb)
        return
    files = sorted(p for p in args.corpus.glob("*.xml"))
    if not files:
        raise SystemExit(f"no corpus at {args.corpus}")
    size = sum(f.stat().st_size for f in files)

    runs = [corpus_round(files) for _ in range(args.rounds)]
    best, stored, failed = min(runs)
    print(f"corpus: {len(files)} files, {size / 1024:.0f} KB, {stored} items stored, {failed} files rejected")
    print(f"  ingest (fetch, parse, sanitise, store): {best:.3f} s best of {args.rounds}")
    print(f"  {stored / best:,.0f} items/s  ·  {size / 1024 / 1024 / best:.1f} MB/s")

    for name in ("rss20_cre_614kb_scripts.xml", "sanitize_crazy_html_regex_breaker.xml"):
        path = args.corpus / name
        if path.exists():
            seconds, items = one_file(path, args.rounds)
            print(f"{name} ({path.stat().st_size / 1024:.0f} KB, {items} items): {seconds * 1000:.1f} ms")

    print("sanitiser alone on hostile HTML of growing size (linear means time/size stays flat):")
    unit = '<div><p onclick="x()">Text <a href="javascript:alert(1)">link</a><script>bad()</script></p></div>'
    unit += "<!-- -- >" + "<b><i>" * 10 + "&amp;" * 20
    for repeat in (1_000, 4_000, 16_000):
        html = unit * repeat
        start = time.perf_counter()
        sanitize_html(html, "https://example.org/")
        seconds = time.perf_counter() - start
        per_byte = seconds / len(html) * 1e9
        print(f"  {len(html) / 1024:8.0f} KB: {seconds * 1000:8.1f} ms  ({per_byte:.0f} ns/byte)")
    big_feed_figures(args.big_items)
    entity_figures(args.entity_mb)


def big_feed(path: Path, items: int) -> None:
    """An RSS file of ``items`` distinct, ordinary items."""
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>'
            "<link>https://big.example.org/</link>"
        )
        for i in range(items):
            out.write(
                f"<item><title>Story {i} about the harbour</title>"
                f"<link>https://big.example.org/story/{i}</link>"
                f"<guid>https://big.example.org/story/{i}</guid>"
                "<pubDate>Mon, 05 Jan 2026 08:00:00 GMT</pubDate>"
                f"<description>&lt;p&gt;Item {i}: cranes &amp;amp; tides were in the news.&lt;/p&gt;"
                f"</description><author>desk@big.example.org (Desk {i % 50})</author>"
                "<category>World</category></item>"
            )
        out.write("</channel></rss>")


def timed_ingest(path: Path, max_bytes: int) -> tuple[float, int, list[str]]:
    config = load_config(None)
    config.ingest.max_bytes = max_bytes
    with tempfile.TemporaryDirectory() as tmp:
        db = open_store(Path(tmp) / "bench.db")
        start = time.perf_counter()
        (result,) = ingest_sources(db, config, [str(path)], now=NOW)
        elapsed = time.perf_counter() - start
        db.conn.close()
    if result.error:
        raise SystemExit(f"ingest failed: {result.error}")
    return elapsed, result.new, result.warnings


def big_feed_figures(items: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.xml"
        big_feed(path, items)
        data = path.read_bytes()
        start = time.perf_counter()
        parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
        parse_seconds = time.perf_counter() - start
        del parsed
        seconds, new, _ = timed_ingest(path, len(data) + 1)
    print(f"{items:,}-item feed ({len(data) / 1024 / 1024:.1f} MB):")
    print(f"  feedparser.parse alone:            {parse_seconds:7.2f} s")
    ratio = seconds / parse_seconds
    print(f"  digest ingest (parse+clean+store): {seconds:7.2f} s  ({new:,} new; {ratio:.2f}x)")


def entity_figures(megabytes: int) -> None:
    body = "&amp;" * (megabytes * 1_000_000 // 5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entities.xml"
        path.write_text(
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>E</title>'
            "<link>https://e.example.org/</link><item><title>Entities</title>"
            f"<link>https://e.example.org/1</link><description><![CDATA[{body}]]></description>"
            "</item></channel></rss>",
            encoding="utf-8",
        )
        seconds, _, warnings = timed_ingest(path, path.stat().st_size + 1)
    print(f"{megabytes} MB description of &amp;: ingest {seconds:.2f} s")
    for warning in warnings:
        print(f"  warning: {warning}")


if __name__ == "__main__":
    main()
