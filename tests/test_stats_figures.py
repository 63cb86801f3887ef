"""`digest stats` on a workspace with known deliveries, bounces, complaints and clicks:
every figure checked, number by number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_switch import store_at
from test_schedule_support import article_times, grow_feed, make_workspace, utc

from digest.cli import cli
from digest.store.database import iso

NOW = datetime.now(UTC).replace(microsecond=0)
# At 06:00 three days ago: the reports made hours after it must fall on the same UTC day
# whatever time the tests run (after 22:00 they fell on the next one).
SENT = (NOW - timedelta(days=3)).replace(hour=6, minute=0, second=0)


def _iso(dt: datetime) -> str:
    return iso(dt)


def fill(db, issue_id: int, *, readers: int, sent: int, failed: int, deferred: int) -> None:
    """``readers`` active subscribers and one ledger row each for the issue, in bulk SQL."""
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO subscribers (email, name, status, source, created_at, updated_at, confirmed_at)"
        " SELECT 'r' || i || '@example.org', '', 'active', CASE WHEN i % 4 = 0 THEN 'import' ELSE 'web' END,"
        " ?, ?, ? FROM n",
        [
            readers,
            _iso(NOW - timedelta(days=40)),
            _iso(NOW - timedelta(days=40)),
            _iso(NOW - timedelta(days=40)),
        ],
    )
    db.execute(
        "INSERT INTO deliveries (issue_id, subscriber_id, email, status, updated_at, sent_at)"
        " SELECT ?, id, email,"
        " CASE WHEN id <= ? THEN 'sent' WHEN id <= ? THEN 'failed' ELSE 'deferred' END, ?, ?"
        " FROM subscribers ORDER BY id LIMIT ?",
        [issue_id, sent, sent + failed, _iso(SENT), _iso(SENT), sent + failed + deferred],
    )


def report(db, issue_id: int, kind: str, subscriber_id: int, at: datetime) -> None:
    db.execute(
        "INSERT INTO bounces (subscriber_id, issue_id, kind, source_message_id, received_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [subscriber_id, issue_id, kind, f"<{kind}-{subscriber_id}@x>", _iso(at)],
    )


def event(db, subscriber_id: int, kind: str, at: datetime) -> None:
    db.execute(
        "INSERT INTO events (subscriber_id, kind, source, at) VALUES (?, ?, 'web', ?)",
        [subscriber_id, kind, _iso(at)],
    )


@pytest.fixture
def known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """One issue sent three days ago to 2,000 readers, with known outcomes."""
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-not-for-production")
    ws = make_workspace(tmp_path / "ws")
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 4, 5), timedelta(hours=3)), utc(2026, 11, 5))
    for args in (["ingest"], ["issues", "build", "daily", "--date", "2026-11-03"]):
        result = CliRunner().invoke(cli, ["--config", str(ws.config_path), *args])
        assert result.exit_code == 0, result.output
    db = store_at(ws.root / "digest.db")
    db.execute(
        "UPDATE issues SET status = 'sent', frozen_at = ?, sent_at = ?, created_at = ?",
        [_iso(SENT), _iso(SENT + timedelta(minutes=5)), _iso(SENT)],
    )
    fill(db, 1, readers=2000, sent=1985, failed=10, deferred=5)
    for sid in (1, 2, 3, 4):
        report(db, 1, "hard", sid, SENT + timedelta(hours=1))
    for sid in (5, 6, 7):
        report(db, 1, "soft", sid, SENT + timedelta(hours=2))
    for sid in (8, 9, 10):
        report(db, 1, "complaint", sid, SENT + timedelta(hours=3))
    for sid in (11, 12, 13, 14, 15):  # within 7 days of the issue
        event(db, sid, "unsubscribe", SENT + timedelta(days=1))
    event(db, 16, "mailed_unsubscribe", SENT + timedelta(days=2))
    event(db, 17, "unsubscribe", SENT - timedelta(days=1))  # before it: not the issue's
    # The list's own days: three sign-ups and two confirmations yesterday.
    for sid in (1801, 1802, 1803):
        event(db, sid, "subscribe", NOW - timedelta(days=1))
    for sid in (1801, 1802):
        event(db, sid, "confirm", NOW - timedelta(days=1))
    db.execute(
        "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?"
        " WHERE id IN (11, 12, 13, 14, 15, 16)",
        [_iso(SENT + timedelta(days=1))],
    )
    db.execute(
        "UPDATE subscribers SET status = 'bounced', updated_at = ? WHERE id IN (1, 2, 3, 4)",
        [_iso(SENT + timedelta(hours=1))],
    )
    snapshot = json.loads(db.execute("SELECT snapshot FROM issues WHERE id = 1").fetchone()[0])
    stories = [a["id"] for section in snapshot["categories"] for a in section["articles"]]
    db.execute(
        "INSERT INTO link_clicks (issue_id, link, clicks, scanner)"
        " VALUES (1, ?, 12, 3), (1, ?, 4, 0), (1, 'c', 0, 2)",
        [str(stories[0]), str(stories[1])],
    )
    db.conn.close()
    return ws, stories


def _stats(ws, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(ws.config_path), "stats", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_issues_figures_number_by_number(known) -> None:
    ws, stories = known
    f = json.loads(_stats(ws, "1", "--json"))
    assert f["delivered"] == 1985
    assert f["failed"] == 10
    assert f["waiting"] == 5
    assert f["bounced"] == {"hard": 4, "soft": 3}
    assert f["complaints"] == 3
    assert f["unsubscribes_7_days"] == 6
    assert f["complaint_rate"] == pytest.approx(3 / 1985)
    assert f["complaint_flag"] == "⚠"  # 0.15 %: over Gmail's 0.1 % line
    assert f["bounce_rate"] == pytest.approx(7 / 1985)
    assert f["bounce_flag"] == "✘"  # 0.35 %: over 0.3 %
    clicks = [c["clicks"] for c in f["clicks"]]
    assert clicks[:2] == [12, "<5"]
    assert all(c == "<5" for c in clicks[2:])
    raw = json.loads(_stats(ws, "1", "--json", "--raw"))
    assert len(raw["clicks"]) == len(stories)
    assert [c["clicks"] for c in raw["clicks"]] == [12, 4] + [0] * (len(stories) - 2)


def test_the_text_report_shows_rates_beside_gmails_lines(known) -> None:
    ws, _ = known
    out = _stats(ws, "latest")
    assert "delivered           1985" in out
    assert "0.15 % ⚠" in out
    assert "0.35 % ✘" in out
    assert "    <5  " in out
    assert "      12  " in out
    assert "4  " not in out.split("clicks per story")[1].replace("<5", "")  # the 4 never shows


def test_the_lists_figures_day_by_day(known) -> None:
    ws, _ = known
    f = json.loads(_stats(ws, "--list", "--days", "10", "--json"))
    days = {d["day"]: d for d in f["days"]}
    yesterday = (NOW - timedelta(days=1)).date().isoformat()
    assert (days[yesterday]["signups"], days[yesterday]["confirmations"]) == (3, 2)
    unsub_day = (SENT + timedelta(days=1)).date().isoformat()
    assert days[unsub_day]["unsubscribes"] == 5
    sent_day = SENT.date().isoformat()
    assert days[sent_day]["bounces"] == 7
    assert f["days"][0]["size"] == 2000
    assert f["days"][-1]["size"] == 2000 - 6 - 4
    assert f["sources"] == {"web": 1500 - 7, "import": 500 - 3}  # ids 4, 12 and 16 were imports
    assert f["editions"] == {"*": 1990}


def test_stats_covers_the_issues_of_the_last_days(known) -> None:
    ws, _ = known
    assert [f["id"] for f in json.loads(_stats(ws, "--json", "--days", "7"))] == [1]
    assert json.loads(_stats(ws, "--json", "--days", "2")) == []
