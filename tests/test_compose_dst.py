"""Across a DST change a daily period follows the wall clock: no hour falls between issues."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from test_render_support import add_article, make_store

from digest.compose.build import compose_issue
from digest.compose.issues import issue_snapshot
from digest.compose.periods import scheduled_time


def test_every_article_lands_in_exactly_one_issue_across_autumn_and_spring_dst(tmp_path: Path) -> None:
    config, db = make_store(tmp_path)
    edition = config.edition("daily")
    start = datetime(2026, 3, 26, 0, 0, tzinfo=UTC)  # Berlin springs forward on 29 March
    hours = 24 * 8
    for h in range(hours):
        add_article(
            db, title=f"Hour {h}", category="World", published_at=start + timedelta(hours=h, minutes=30)
        )
    # And the autumn change (25 October 2026).
    autumn = datetime(2026, 10, 22, 0, 0, tzinfo=UTC)
    for h in range(hours):
        add_article(
            db, title=f"Autumn {h}", category="World", published_at=autumn + timedelta(hours=h, minutes=30)
        )

    carried: list[str] = []
    for first in (date(2026, 3, 26), date(2026, 10, 22)):
        for d in range(9):
            end = scheduled_time(edition, first + timedelta(days=d))
            issue = compose_issue(db, config, "daily", period_end=end).issue
            if issue:
                snap = issue_snapshot(issue)
                carried += [a["title"] for c in snap["categories"] for a in c["articles"]]
    assert len(carried) == len(set(carried))
    # Everything published between the first and last scheduled times is in some issue.
    for first in (start, autumn):
        lo = scheduled_time(edition, first.date())
        hi = scheduled_time(edition, first.date() + timedelta(days=8))
        for h in range(hours):
            at = first + timedelta(hours=h, minutes=30)
            prefix = "Hour" if first == start else "Autumn"
            if lo <= at < hi:
                assert f"{prefix} {h}" in carried, f"{prefix} {h} ({at}) is in no issue"
