"""Ingest throughput over the shared feed corpus, and the sanitiser on its worst inputs.

Prints figures; never passes or fails on time.

    python bench/ingest.py [--rounds N] [--corpus DIR]

- items/second: every corpus file parsed, sanitised and stored into a fresh SQLite file
  (best of N rounds, each into a new database);
- the 614 KB feed (rss20_cre_614kb_scripts.xml) and the regex-torture file
  (sanitize_crazy_html_regex_breaker.xml): parse + sanitise + summarise, best of N;
- the sanitiser alone on inputs of growing size, to show it stays linear.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from digest.articles import prepare_article
from digest.config import load_config
from digest.fetch import fetch
from digest.ingest import ingest_sources, parse_feed
from digest.sanitize import sanitize_html
from digest.store import open_store

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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
