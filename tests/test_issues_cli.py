"""`digest issues build/list/show` through the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_render_support import FIXTURE_ARTICLES, PERIOD_END, add_article, make_store

from digest.cli import cli


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    _, db = make_store(folder)
    for a in FIXTURE_ARTICLES:
        add_article(
            db,
            title=a["title"],
            category=a["category"],
            published_at=PERIOD_END - timedelta(minutes=a["minutes_before"]),
            summary=a["summary"],
        )
    return folder


def run(ws: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(ws / "digest.toml"), *args])


def test_build_twice_makes_one_issue(ws: Path) -> None:
    first = run(ws, "issues", "build", "daily", "--date", "2026-01-23")
    assert first.exit_code == 0, first.output
    assert "Built issue #1 with 5 articles" in first.output
    assert "Daily Briefing #1: Tidal barrier opens a year early" in first.output
    again = run(ws, "issues", "build", "daily", "--date", "2026-01-23")
    assert again.exit_code == 0 and "already exists" in again.output
    listed = json.loads(run(ws, "issues", "list", "--json").output)
    assert len(listed) == 1 and listed[0]["articles"] == 5


def test_build_json_reports_created(ws: Path) -> None:
    data = json.loads(run(ws, "issues", "build", "--date", "2026-01-23", "--json").output)
    assert data["created"] is True and data["issue"]["number"] == 1 and "snapshot" not in data["issue"]
    data = json.loads(run(ws, "issues", "build", "--date", "2026-01-23", "--json").output)
    assert data["created"] is False


def test_empty_period_says_so_and_exits_zero(ws: Path) -> None:
    result = run(ws, "issues", "build", "daily", "--date", "2026-01-10")
    assert result.exit_code == 0
    assert "No new articles for daily" in result.output and "no issue built" in result.output
    assert json.loads(run(ws, "issues", "list", "--json").output) == []


def test_future_date_is_refused(ws: Path) -> None:
    result = run(ws, "issues", "build", "daily", "--date", "2999-01-01")
    assert result.exit_code == 1 and "has not come yet" in result.output


def test_unknown_edition_is_a_clear_error(ws: Path) -> None:
    result = run(ws, "issues", "build", "monthly", "--date", "2026-01-23")
    assert result.exit_code == 1 and "unknown edition 'monthly'" in result.output


def test_numbering_per_edition_in_list(ws: Path) -> None:
    assert run(ws, "issues", "build", "daily", "--date", "2026-01-22").exit_code == 0  # empty
    assert run(ws, "issues", "build", "daily", "--date", "2026-01-23").exit_code == 0
    assert run(ws, "issues", "build", "weekly", "--date", "2026-01-26").exit_code == 0
    out = run(ws, "issues", "list").output
    assert "Daily Briefing #1: Tidal barrier" in out and "Weekly Review #1: " in out
    weekly = json.loads(run(ws, "issues", "list", "--edition", "weekly", "--json").output)
    assert [(r["edition"], r["number"]) for r in weekly] == [("weekly", 1)]


def test_show_latest_and_by_id(ws: Path) -> None:
    assert run(ws, "issues", "show").exit_code == 1  # nothing yet
    run(ws, "issues", "build", "daily", "--date", "2026-01-23")
    out = run(ws, "issues", "show", "latest").output
    assert "Issue 1: Daily Briefing #1: Tidal barrier opens a year early" in out
    assert out.index("World (2)") < out.index("Technology (1)") < out.index("Arts (1)")
    data = json.loads(run(ws, "issues", "show", "1", "--json").output)
    assert data["id"] == 1 and [c["name"] for c in data["categories"]] == [
        "World",
        "Technology",
        "Science",
        "Arts",
    ]
    missing = run(ws, "issues", "show", "9")
    assert missing.exit_code == 1 and "Error: issue 9 not found" in missing.output


def test_list_without_issues(ws: Path) -> None:
    result = run(ws, "issues", "list")
    assert result.exit_code == 0 and "No issues yet" in result.output
