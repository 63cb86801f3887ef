"""`digest issues build/list/show` through the CLI."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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
    assert "Built issue daily/1 with 5 articles" in first.output
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


def test_empty_build_names_the_window_the_newest_article_and_what_to_try(ws: Path) -> None:
    result = run(ws, "issues", "build", "daily", "--date", "2026-01-10")
    out = " ".join(result.output.split())
    # the window searched, in the edition's zone
    assert "daily, 9 Jan 2026, 07:00 – 10 Jan 2026, 07:00 (Europe/Berlin)" in out
    # how many articles exist and the newest one's time
    newest = max(PERIOD_END - timedelta(minutes=a["minutes_before"]) for a in FIXTURE_ARTICLES)
    newest_local = newest.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"{len(FIXTURE_ARTICLES)} articles stored" in out
    assert f"the newest published {newest_local.day} Jan 2026, {newest_local:%H:%M} (Europe/Berlin)" in out
    # and the --date that would carry it
    assert "Newer articles are waiting: try `digest issues build daily --date 2026-01-23`" in out
    # after an archive is ingested, the window is later than the articles: point back at them
    later = " ".join(run(ws, "issues", "build", "daily", "--date", "2026-01-25").output.split())
    assert "The latest article before the window that no daily issue carried yet is from 23 Jan 2026" in later
    assert "try `digest issues build daily --date 2026-01-23`" in later
    assert run(ws, "issues", "build", "daily", "--date", "2026-01-23").exit_code == 0
    # once they went out, there is nothing to point at
    done = " ".join(run(ws, "issues", "build", "daily", "--date", "2026-01-25").output.split())
    assert "Ingest newer articles, or wait for the next scheduled time." in done


def test_empty_build_in_a_new_workspace_says_to_ingest(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    make_store(folder)
    result = run(folder, "issues", "build", "daily", "--date", "2026-01-10")
    assert result.exit_code == 0
    assert "no articles yet: run `digest ingest`" in result.output


def test_issue_names_daily_1_latest_and_edition_latest(ws: Path) -> None:
    run(ws, "issues", "build", "daily", "--date", "2026-01-23")
    run(ws, "issues", "build", "weekly", "--date", "2026-01-26")  # a later period end
    run(ws, "issues", "build", "daily", "--date", "2026-01-22")  # empty: builds nothing

    def shown(name: str) -> str:
        result = run(ws, "issues", "show", name, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["name"]

    assert shown("daily/1") == "daily/1"
    assert shown("weekly/1") == "weekly/1"
    assert shown("daily/latest") == "daily/1"
    assert shown("latest") == "weekly/1"  # the most recently built
    assert shown("1") == "daily/1"  # the bare id still works
    listing = run(ws, "issues", "list").output.splitlines()
    assert listing[0].split() == ["ISSUE", "DATE", "STATUS", "ARTICLES", "ID", "SUBJECT"]
    assert [line.split()[0] for line in listing[1:]] == ["weekly/1", "daily/1"]
    assert len({line.index(" draft") for line in listing[1:]}) == 1  # aligned columns
    missing = run(ws, "issues", "show", "daily/7")
    assert missing.exit_code == 1 and "Error: no issue daily/7" in missing.output
    bad = run(ws, "issues", "show", "daily/x")
    assert bad.exit_code == 1 and "like daily/3" in bad.output


def test_latest_is_the_most_recently_built_even_for_an_older_period(ws: Path) -> None:
    run(ws, "issues", "build", "weekly", "--date", "2026-01-26")
    built = run(ws, "issues", "build", "daily", "--date", "2026-01-23")
    assert "Built issue daily/1" in built.output
    assert json.loads(run(ws, "issues", "show", "latest", "--json").output)["name"] == "daily/1"


@pytest.mark.parametrize(
    "command", [["issues", "show"], ["preview"], ["send"], ["deliveries"]], ids=lambda c: c[0]
)
def test_every_help_that_takes_an_issue_says_how_to_name_it(command: list[str]) -> None:
    out = " ".join(CliRunner().invoke(cli, [*command, "--help"]).output.split())
    assert "daily/3" in out and "daily/latest" in out and "most recently built" in out


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
    assert "Issue daily/1: Daily Briefing #1: Tidal barrier opens a year early" in out
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


def test_empty_build_hint_names_a_date_that_builds(run_cli) -> None:
    added = run_cli(
        "articles",
        "add",
        "--title",
        "Old",
        "--url",
        "https://example.org/o",
        "--category",
        "World",
        "--published",
        "1900-01-01T10:00Z",
    )
    assert added.exit_code == 0
    hint = run_cli("issues", "build", "daily").output
    assert "1 article stored" in hint, hint
    suggested = re.search(r"--date (\d{4}-\d\d-\d\d)", hint)
    if suggested:  # a hint may name a date only if that date's issue carries the article
        built = run_cli("issues", "build", "daily", "--date", suggested.group(1)).output
        assert "Built issue" in built, hint
