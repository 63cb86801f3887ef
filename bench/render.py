"""Render benchmark: prints figures, never passes or fails.

    python bench/render.py [--articles 40] [--repeat 30] [--language de]

Measures, for an issue of N articles with 60-word summaries:
- the median time of one full render (Jinja → MJML → premailer inlining → text part) and of
  each stage;
- personalisation per recipient (HTML and text parts, one substitution pass each);
- rendering 16 category variants against 1.
Targets from the issue: render ≤ 10 ms, personalisation ≤ 50 µs per recipient.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

from digest.compose.build import compose_issue
from digest.compose.issues import get_issue, issue_snapshot
from digest.config import load_config
from digest.render import context as issue_context
from digest.render import email_html, templating
from digest.render import variants as render
from digest.render.personalise import personalise
from digest.render.size_budget import wire_size
from digest.store.database import iso, open_store

CONFIG = """
[publication]
name = "Bench Gazette"
base_url = "https://news.bench-gazette.example"
postal_address = "Bench Gazette, 1 Example Road, Example Town"

[editions.daily]
title = "Daily Briefing"
schedule = "0 7 * * *"
timezone = "Europe/Berlin"
max_articles = 500
categories = ["World", "Technology", "Science", "Culture", "Business", "Sport"]
"""

PROSE = (
    "harbour council announced tidal barrier would open next spring after years planning engineers "
    "measurements sensors estuary showed water levels rising faster than expected residents questioned "
    "costs timetable construction flood defences across three districts researchers published findings"
)
WORDS = PROSE.split()
CATEGORIES = ["World", "Technology", "Science", "Culture", "Business", "Sport"]
END = datetime(2026, 1, 23, 6, 0, tzinfo=UTC)


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time in ms (after one warm-up call)."""
    return timings(fn, repeat)[0]


def timings(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """Median wall, minimum wall and median CPU (this thread) time in ms. On a shared machine
    the CPU time is the steadier figure: it leaves out time spent waiting for a core."""
    fn()  # warm caches (templates compiled, CSS parsed)
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall) * 1000, min(wall) * 1000, statistics.median(cpu) * 1000


def setup(folder: Path, articles: int, language: str = "en") -> tuple[Any, Any, int]:
    text = CONFIG.replace("[publication]\n", f'[publication]\nlanguage = "{language}"\n', 1)
    (folder / "digest.toml").write_text(text, encoding="utf-8")
    config = load_config(folder / "digest.toml")
    db = open_store(config.db_path)
    for i in range(articles):
        ts = iso(END - timedelta(minutes=5 * i + 1))
        db["articles"].insert(
            {
                "guid": f"bench-{i}",
                "url": f"https://www.bench-gazette.example/2026/01/22/news/a-long-article-slug-number-{i}",
                "title": f"Council weighs plan {i} for the estuary as costs of the tidal barrier rise",
                "source": "Bench Gazette Newsroom",
                "category": CATEGORIES[i % len(CATEGORIES)],
                "published_at": ts,
                "summary_text": " ".join(WORDS[(i + k) % len(WORDS)] for k in range(60)),
                "reading_minutes": 1 + i % 9,
                "created_at": ts,
                "updated_at": ts,
            }
        )
    issue = compose_issue(db, config, "daily", period_end=END).issue
    assert issue is not None
    return config, db, issue["id"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--language", default="en", help="[publication] language of the issue")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config, db, issue_id = setup(Path(tmp), args.articles, args.language)
        rendered = render.render_issue(db, config, issue_id)
        size = len(rendered.html.encode("utf-8"))
        print(
            f"issue: {args.articles} articles, 60-word summaries; "
            f"HTML {size:,} bytes ({wire_size(rendered.html):,} as sent, quoted-printable), "
            f"trimmed {rendered.trimmed}"
        )

        total, best, cpu = timings(lambda: render.render_issue(db, config, issue_id), args.repeat)
        print(
            f"render_issue (Jinja → MJML → inline → text), {args.repeat} runs: median {total:.2f} ms, "
            f"min {best:.2f} ms, median CPU {cpu:.2f} ms  [target ≤ 10 ms]"
        )

        # Stage by stage, on the same issue.
        issue = get_issue(db, issue_id)
        snapshot = issue_snapshot(issue)
        sections = snapshot["categories"]
        keep = {a["id"] for s in sections for a in s["articles"]}
        dirs = tuple(templating.template_dirs(config))
        context = issue_context.template_context(config, issue, snapshot, sections, keep)
        language = {"language": config.publication.language}
        source = templating.render_template(dirs, render.HTML_TEMPLATE, context, **language)
        raw = email_html.mjml_to_html(source)
        stages = {
            "  load issue + snapshot": lambda: issue_snapshot(get_issue(db, issue_id)),
            "  Jinja (MJML source)": lambda: templating.render_template(
                dirs, render.HTML_TEMPLATE, context, **language
            ),
            "  MJML → HTML (mjml-python)": lambda: email_html.mjml_to_html(source),
            "  premailer inlining": lambda: email_html.inline_css(raw),
            "  text part (Jinja)": lambda: templating.render_template(
                dirs, render.TEXT_TEMPLATE, context, **language
            ),
        }
        for label, fn in stages.items():
            print(f"{label:<32} {median_ms(fn, args.repeat):7.2f} ms")

        fields = {
            "name": "Ada Lovelace",
            "email": "ada@example.org",
            "unsubscribe_url": "https://news.bench-gazette.example/unsubscribe/" + "t" * 60,
            "preferences_url": "https://news.bench-gazette.example/preferences/" + "p" * 60,
        }
        n = 20_000

        def recipients() -> None:
            for _ in range(n):
                personalise(rendered.html, fields, html=True)
                personalise(rendered.text, fields, html=False)

        wall, _, cpu = timings(recipients, 3)
        print(
            f"personalise per recipient (HTML + text): {wall / n * 1000:.1f} µs wall, "
            f"{cpu / n * 1000:.1f} µs CPU  [target ≤ 50 µs]"
        )

        variants = [
            render.variant_key(list(c), CATEGORIES)
            for size_ in (1, 2, 3)
            for c in combinations(CATEGORIES, size_)
        ][:16]

        def sixteen_variants() -> None:
            for key in variants:
                render.render_issue(db, config, issue_id, key)

        one, _, one_cpu = timings(lambda: render.render_issue(db, config, issue_id, "*"), 10)
        sixteen, _, sixteen_cpu = timings(sixteen_variants, 3)
        print(
            f"1 variant (all {args.articles} articles): {one:.1f} ms wall, {one_cpu:.1f} ms CPU; "
            f"16 variants (1–3 of 6 categories): {sixteen:.1f} ms wall, {sixteen_cpu:.1f} ms CPU "
            f"({sixteen_cpu / one_cpu:.1f}× one, CPU)"
        )


if __name__ == "__main__":
    main()
