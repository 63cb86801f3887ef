"""Composing issues: periods, numbering, idempotence, grouping, subjects, snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from test_render_support import PERIOD_END, add_article, fixture_issue, make_store

from digest.compose.build import compose_issue
from digest.compose.issues import get_issue, issue_categories, issue_snapshot
from digest.compose.periods import latest_scheduled_time, scheduled_time
from digest.compose.subject import make_preheader
from digest.config import Edition
from digest.errors import ConfigError, NotFound

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path):
    return make_store(tmp_path / "ws")


def test_scheduled_time_is_the_local_fire_time_in_utc() -> None:
    daily = Edition(key="daily", schedule="0 7 * * *", timezone="Europe/Berlin")
    assert scheduled_time(daily, date(2026, 1, 23)) == datetime(2026, 1, 23, 6, 0, tzinfo=UTC)
    # Summer time: 07:00 in Berlin is 05:00 UTC.
    assert scheduled_time(daily, date(2026, 7, 23)) == datetime(2026, 7, 23, 5, 0, tzinfo=UTC)


def test_scheduled_time_of_a_weekly_edition_is_its_latest_fire_on_or_before_the_day() -> None:
    # Standard cron weekdays: 1 = Monday, 0 = Sunday (APScheduler alone would read 0 as Monday).
    monday = Edition(key="w", schedule="0 8 * * 1", timezone="Europe/Berlin")
    sunday = Edition(key="w", schedule="0 8 * * 0", timezone="Europe/Berlin")
    wednesday = date(2026, 1, 28)
    assert scheduled_time(monday, wednesday) == datetime(2026, 1, 26, 7, 0, tzinfo=UTC)
    assert scheduled_time(sunday, wednesday) == datetime(2026, 1, 25, 7, 0, tzinfo=UTC)
    named = Edition(key="w", schedule="0 8 * * mon", timezone="Europe/Berlin")
    assert scheduled_time(named, date(2026, 1, 26)) == datetime(2026, 1, 26, 7, 0, tzinfo=UTC)


def test_latest_scheduled_time_never_lies_in_the_future() -> None:
    daily = Edition(key="daily", schedule="0 7 * * *", timezone="Europe/Berlin")
    before_seven = datetime(2026, 1, 23, 5, 30, tzinfo=UTC)  # 06:30 in Berlin
    assert latest_scheduled_time(daily, before_seven) == datetime(2026, 1, 22, 6, 0, tzinfo=UTC)
    assert latest_scheduled_time(daily, PERIOD_END) == PERIOD_END


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_date_at_the_ends_of_the_calendar_is_an_error_not_a_traceback(run_cli, day: str) -> None:
    result = run_cli("issues", "build", "daily", "--date", day)
    assert result.exit_code == 1, result.output
    assert f"Error: date {day} is out of range" in result.output
    assert "Traceback" not in result.output and "OverflowError" not in result.output


def test_bad_cron_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="schedule"):
        scheduled_time(Edition(key="x", schedule="0 25 * * *"), date(2026, 1, 1))


def test_compose_groups_by_configured_order_then_alphabetical_newest_first(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    snapshot = issue_snapshot(issue)
    names = [c["name"] for c in snapshot["categories"]]
    assert names == ["World", "Technology", "Science", "Arts"]
    world = [a["title"] for a in snapshot["categories"][0]["articles"]]
    assert world == ["Tidal barrier opens a year early", "Q&A: <why> ferries keep running late"]
    assert issue_categories(db, issue["id"]) == names
    positions = [r["position"] for r in db.query("SELECT position FROM issue_articles ORDER BY position")]
    assert positions == [1, 2, 3, 4, 5]


def test_subject_preheader_and_number(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    assert issue["number"] == 1
    # The top story is the subject's headline; the preheader carries the next ones.
    assert issue["subject"] == "Daily Briefing #1: Tidal barrier opens a year early"
    assert issue["preheader"].startswith("Q&A: <why> ferries keep running late · Open-source tide")
    assert issue["status"] == "draft"


def test_custom_subject_pattern(tmp_path: Path) -> None:
    config, db = make_store(tmp_path)
    config.editions["daily"].subject = "{publication}: {title} no. {number} ({date})"
    add_article(db, title="One", category="World", published_at=PERIOD_END - timedelta(hours=1))
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    assert issue["subject"] == "The Harbour Gazette: Daily Briefing no. 1 (23 Jan 2026)"


def test_unknown_subject_field_is_a_config_error(store) -> None:
    config, db = store
    config.render.subject = "{title} {nope}"
    add_article(db, title="One", category="World", published_at=PERIOD_END - timedelta(hours=1))
    with pytest.raises(ConfigError, match=r"\{nope\}|'nope'"):
        compose_issue(db, config, "daily", period_end=PERIOD_END)


def test_preheader_is_cut_near_150_characters() -> None:
    text = make_preheader(["A very long headline about the harbour " * 3] * 3)
    assert len(text) <= 150 and text.endswith("…")


def test_building_twice_returns_the_same_issue(store) -> None:
    config, db = store
    first = fixture_issue(config, db)
    again = compose_issue(db, config, "daily", period_end=PERIOD_END)
    assert again.created is False and again.issue is not None
    assert again.issue["id"] == first["id"]
    assert db["issues"].count == 1
    assert "already exists" in again.message


def test_numbering_is_per_edition_and_articles_are_not_carried_twice(store) -> None:
    config, db = store
    add_article(
        db, title="Monday news", category="World", published_at=PERIOD_END - timedelta(days=1, hours=2)
    )
    add_article(db, title="Tuesday news", category="World", published_at=PERIOD_END - timedelta(hours=2))
    d1 = compose_issue(db, config, "daily", period_end=PERIOD_END - timedelta(days=1)).issue
    d2 = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert (d1["number"], d2["number"]) == (1, 2)
    # The weekly edition numbers its own issues and may carry what the daily carried.
    weekly_end = datetime(2026, 1, 26, 7, 0, tzinfo=UTC)
    w1 = compose_issue(db, config, "weekly", period_end=weekly_end).issue
    assert w1["number"] == 1
    assert {a["title"] for c in issue_snapshot(w1)["categories"] for a in c["articles"]} == {
        "Monday news",
        "Tuesday news",
    }
    # A later overlapping daily period does not repeat an article an earlier daily carried.
    shifted = compose_issue(db, config, "daily", period_end=PERIOD_END + timedelta(hours=1))
    assert shifted.issue is None and "No new articles" in shifted.message


def test_empty_period_builds_nothing(store) -> None:
    config, db = store
    add_article(db, title="Old", category="World", published_at=PERIOD_END - timedelta(days=3))
    result = compose_issue(db, config, "daily", period_end=PERIOD_END)
    assert result.issue is None and result.created is False
    assert "No new articles" in result.message
    assert db["issues"].count == 0


def test_period_is_half_open(store) -> None:
    config, db = store
    add_article(db, title="At start", category="World", published_at=PERIOD_END - timedelta(days=1))
    add_article(db, title="At end", category="World", published_at=PERIOD_END)
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    titles = [a["title"] for c in issue_snapshot(issue)["categories"] for a in c["articles"]]
    assert titles == ["At start"]


def test_max_articles_keeps_the_newest(store) -> None:
    config, db = store
    config.editions["daily"].max_articles = 3
    for i in range(6):
        add_article(
            db, title=f"N{i}", category="World", published_at=PERIOD_END - timedelta(minutes=10 * (i + 1))
        )
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    titles = [a["title"] for c in issue_snapshot(issue)["categories"] for a in c["articles"]]
    assert titles == ["N0", "N1", "N2"]


def test_snapshot_does_not_follow_later_article_edits(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    db.execute("UPDATE articles SET title = 'Edited later', summary_text = 'changed'")
    fresh = get_issue(db, issue["id"])
    titles = [a["title"] for c in issue_snapshot(fresh)["categories"] for a in c["articles"]]
    assert "Edited later" not in titles


def test_get_issue_by_id_and_latest(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    assert get_issue(db, "latest")["id"] == issue["id"]
    assert get_issue(db, str(issue["id"]))["id"] == issue["id"]
    assert get_issue(db, issue["id"], edition="daily")["id"] == issue["id"]
    with pytest.raises(NotFound, match="not found"):
        get_issue(db, 999)
    with pytest.raises(NotFound, match="no issues yet"):
        get_issue(db, "latest", edition="weekly")
    with pytest.raises(NotFound, match="latest"):
        get_issue(db, "yesterday")


def test_two_processes_building_the_same_issue_make_one(store, tmp_path: Path) -> None:
    _, db = store
    for i in range(30):
        add_article(db, title=f"A{i}", category="World", published_at=PERIOD_END - timedelta(minutes=i + 1))
    script = textwrap.dedent(
        f"""
        import json, sys
        from datetime import datetime
        from digest.config import load_config
        from digest.store.database import open_store
        from digest.compose.build import compose_issue
        config = load_config({str(tmp_path / "ws" / "digest.toml")!r})
        db = open_store(config.store)
        end = datetime.fromisoformat({PERIOD_END.isoformat()!r})
        result = compose_issue(db, config, "daily", period_end=end)
        print(json.dumps({{"id": result.issue["id"], "created": result.created}}))
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    assert len({r["id"] for r in results}) == 1
    assert sum(r["created"] for r in results) == 1
    assert db["issues"].count == 1
    assert db["issue_articles"].count == 30
