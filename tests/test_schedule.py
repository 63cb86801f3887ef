"""run_due with an injected clock: one issue per period, each delivered once, catch-up window,
local-time delivery in three zones, and the scheduler's start-up catch-up."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_schedule_support import (
    add_readers,
    article_times,
    grow_feed,
    make_workspace,
    message_count,
    messages,
    recipients,
    utc,
)

from digest.errors import DigestError
from digest.localtime import fire_times
from digest.schedule.run import run_due
from digest.schedule.scheduler import local_delivery_trigger, next_fire_times, scheduler_lock, serve

READERS = {
    "almaty@example.org": "Asia/Almaty",
    "berlin@example.org": "Europe/Berlin",
    "newyork@example.org": "America/New_York",
}


def test_a_fortnight_with_a_dst_change_makes_one_issue_per_period_each_sent_once(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", weekly=True)
    add_readers(ws, READERS)
    # Europe/Berlin leaves summer time on Sunday 2026-10-25.
    start, end = utc(2026, 10, 18, 22), utc(2026, 11, 2, 12)
    published = article_times(start - timedelta(days=1), end, timedelta(hours=3))
    config, db = ws.config(), ws.db()
    at = start
    while at <= end:
        grow_feed(ws, published, at)
        run_due(db, config, at=at)
        if at.minute == 0 and at.hour % 6 == 0:
            run_due(db, config, at=at)  # a second run at the same moment changes nothing
        at += timedelta(minutes=30)

    for key in ("daily", "weekly"):
        expected = fire_times(config.editions[key], start, end)
        issues = list(db.query("SELECT * FROM issues WHERE edition = ? ORDER BY period_end", [key]))
        assert [i["period_end"] for i in issues] == [t.isoformat() for t in expected]
        assert [i["number"] for i in issues] == list(range(1, len(expected) + 1))
        assert all(i["status"] == "sent" for i in issues)
    # 07:00 Berlin is 05:00 UTC in summer time and 06:00 UTC after the change.
    daily_ends = [r[0] for r in db.execute("SELECT period_end FROM issues WHERE edition = 'daily'")]
    assert {end[11:13] for end in daily_ends} == {"05", "06"}
    assert len(list(db.query("SELECT id FROM issues WHERE edition = 'weekly'"))) == 3  # Oct 19, 26, Nov 2

    issue_count = db.execute("SELECT COUNT(*) FROM issues").fetchone()[0]
    sent = db.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").fetchone()[0]
    assert sent == issue_count * len(READERS)
    assert db.execute("SELECT COUNT(*) FROM deliveries WHERE status != 'sent'").fetchone()[0] == 0
    inbox = messages(ws.outbox)
    assert len(inbox) == issue_count * len(READERS)
    per_pair = Counter((recipients(m), m["Subject"]) for m in inbox)
    assert set(per_pair.values()) == {1}
    runs = db.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()[0]
    assert runs > 14 * 48


def test_each_zone_gets_the_local_edition_once_at_its_own_seven_oclock(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", delivery="local")
    add_readers(ws, {**READERS, "nozone@example.org": None})
    zones = {**{a: ZoneInfo(z) for a, z in READERS.items()}, "nozone@example.org": ZoneInfo("Europe/Berlin")}
    # New York leaves summer time on 2026-11-01, a week after Berlin.
    start, end = utc(2026, 10, 29, 0), utc(2026, 11, 4, 0)
    published = article_times(start - timedelta(days=1), end, timedelta(hours=2))
    config, db = ws.config(), ws.db()
    seen: Counter[str] = Counter()
    received: dict[str, list] = {a: [] for a in zones}
    at = start
    while at <= end:
        grow_feed(ws, published, at)
        run_due(db, config, at=at)
        if message_count(ws.outbox) == sum(seen.values()):
            at += timedelta(minutes=15)
            continue
        inbox = messages(ws.outbox)
        now_seen = Counter(recipients(m) for m in inbox)
        for address, count in now_seen.items():
            if count > seen[address]:
                assert count == seen[address] + 1, f"{address} got two issues at {at}"
                local = at.astimezone(zones[address])
                assert (local.hour, local.minute) == (7, 0), f"{address} got it at {local}"
                received[address].append(local.date())
        seen = now_seen
        at += timedelta(minutes=15)

    issues = db.execute("SELECT COUNT(*) FROM issues").fetchone()[0]
    assert issues == 6  # Oct 29 .. Nov 3, composed at 07:00 Berlin
    for address, days in received.items():
        assert len(days) == len(set(days)), address  # one a morning
        assert len(days) >= issues - 1, address  # Almaty's morning for the last one is after `end`
    per_pair = Counter((recipients(m), m["Subject"]) for m in messages(ws.outbox))
    assert set(per_pair.values()) == {1}


def test_restart_after_downtime_catches_up_within_the_window_not_beyond(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", catch_up="6h")
    add_readers(ws, {"reader@example.org": None})
    published = article_times(utc(2026, 11, 2), utc(2026, 11, 8), timedelta(hours=4))
    config, db = ws.config(), ws.db()
    grow_feed(ws, published, utc(2026, 11, 8))

    # Scheduled 07:00 Berlin = 06:00 UTC. Down from 05:00 until 11:30: 5.5h late, within 6h.
    run_due(db, config, at=utc(2026, 11, 3, 5))
    assert db.execute("SELECT COUNT(*) FROM issues").fetchone()[0] == 0
    report = run_due(db, config, at=utc(2026, 11, 3, 11, 30))
    assert [b.scheduled for b in report.built] == ["2026-11-03T06:00:00+00:00"]
    assert report.sent == 1
    assert "built daily/1" in report.summary()

    # Down from the 4th 05:00 until 12:01: 6h01 late, beyond the window: not built.
    report = run_due(db, config, at=utc(2026, 11, 4, 12, 1))
    assert report.built == [] and report.sent == 0
    assert db.execute("SELECT COUNT(*) FROM issues").fetchone()[0] == 1

    # The next scheduled time is run normally, and takes the articles since issue daily/1.
    report = run_due(db, config, at=utc(2026, 11, 5, 6))
    assert [(b.number, b.created) for b in report.built] == [(2, True)]
    assert len(messages(ws.outbox)) == 2


def test_scheduler_start_catches_up_a_run_missed_while_down(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"reader@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 6), timedelta(hours=2)), utc(2026, 11, 4))
    seen = []

    def ready(timetable: list[dict]) -> None:
        # The start-up run is over by now; ask the process to stop as a service manager would.
        assert timetable[0]["edition"] == "daily"
        os.kill(os.getpid(), signal.SIGTERM)

    result = serve(ws.config(), clock=lambda: utc(2026, 11, 3, 9), on_run=seen.append, on_ready=ready)
    assert result.stopped_by == "SIGTERM"
    assert result.runs == 1
    assert [b.number for b in seen[0].built] == [1]
    assert len(messages(ws.outbox)) == 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


def test_scheduler_does_not_catch_up_beyond_the_window(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", catch_up="2h")
    add_readers(ws, {"reader@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 6), timedelta(hours=2)), utc(2026, 11, 4))
    seen = []
    result = serve(
        ws.config(),
        clock=lambda: utc(2026, 11, 3, 9),  # 3h after 07:00 Berlin
        on_run=seen.append,
        on_ready=lambda _t: os.kill(os.getpid(), signal.SIGINT),
    )
    assert result.stopped_by == "SIGINT"
    assert seen[0].built == [] and messages(ws.outbox) == []


def test_a_second_scheduler_refuses_clearly(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    config = ws.config()
    with scheduler_lock(config), pytest.raises(DigestError, match=r"already running.*pid"):
        serve(config)
    # Released: a new holder gets it.
    with scheduler_lock(config):
        pass


def test_runs_are_recorded_with_a_summary(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"reader@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=1)), utc(2026, 11, 4))
    config, db = ws.config(), ws.db()
    report = run_due(db, config, at=utc(2026, 11, 3, 6, 1))
    row = dict(db["runs"].get(report.run_id))
    assert row["at"] == "2026-11-03T06:01:00+00:00" and row["finished_at"]
    summary = json.loads(row["summary"])
    assert summary["sent"] == 1 and summary["built"][0]["number"] == 1
    assert summary["summary"].startswith("run 2026-11-03T06:01:00Z: ingested ")
    again = run_due(db, config, at=utc(2026, 11, 3, 6, 2))
    assert again.summary() == "run 2026-11-03T06:02:00Z: nothing due"


def test_dry_run_builds_and_records_nothing(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"reader@example.org": None})
    config, db = ws.config(), ws.db()
    report = run_due(db, config, at=utc(2026, 11, 3, 6, 1), dry_run=True)
    assert report.summary() == "dry run 2026-11-03T06:01:00Z: daily: would build"
    assert db.execute("SELECT COUNT(*) FROM issues").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_next_fire_times_in_zone_and_utc(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", weekly=True)
    listing = next_fire_times(ws.config(), now=utc(2026, 10, 24, 12), count=2)
    daily = listing[0]
    assert [t["utc"] for t in daily["next"]] == ["2026-10-25T06:00:00+00:00", "2026-10-26T06:00:00+00:00"]
    assert [t["local"] for t in daily["next"]] == ["2026-10-25T07:00:00+01:00", "2026-10-26T07:00:00+01:00"]
    assert listing[1]["next"][0]["local_text"] == "Mon 2026-10-26 08:00 CET"


def test_local_delivery_job_fires_at_every_quarter_hour_a_send_at_can_fall_on(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", delivery="local", weekly=True)
    config = ws.config()
    trigger = local_delivery_trigger(list(config.editions.values()))
    fires = []
    t = utc(2026, 11, 3, 1, 50)
    for _ in range(5):
        t = trigger.get_next_fire_time(None, t + timedelta(seconds=1))
        fires.append(t.strftime("%H:%M"))
    assert fires == ["02:00", "02:15", "02:30", "02:45", "03:00"]  # Kathmandu's 07:00 is 01:15 UTC
    config.editions["daily"].send_at = "06:50"
    minutes = str(local_delivery_trigger([config.editions["daily"]])).split("minute='")[1].split("'")[0]
    assert minutes == "5,20,35,50"
    config.editions["daily"].delivery = "edition"
    assert local_delivery_trigger(list(config.editions.values())) is None


def test_a_local_reader_whose_hour_passed_while_down_gets_it_at_the_next_run(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", delivery="local")
    add_readers(ws, {"almaty@example.org": "Asia/Almaty", "berlin@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    config, db = ws.config(), ws.db()
    first = run_due(db, config, at=utc(2026, 11, 3, 6))  # 07:00 Berlin: Berlin now, Almaty tomorrow 07:00
    assert first.sent == 1 and first.deliveries[0].waiting == 1
    assert run_due(db, config, at=utc(2026, 11, 4, 1, 45)).sent == 0  # 06:45 in Almaty: not yet
    # Down over Almaty's 07:00 (02:00 UTC); back at 04:30 UTC.
    late = run_due(db, config, at=utc(2026, 11, 4, 4, 30))
    assert late.sent == 1 and "daily/1: sent 1" in late.summary()
    assert sorted(recipients(m) for m in messages(ws.outbox)) == ["almaty@example.org", "berlin@example.org"]
    assert db.execute("SELECT status FROM issues").fetchone()[0] == "sent"


def test_a_fall_back_night_builds_one_issue_for_a_time_in_the_repeated_hour(tmp_path: Path) -> None:
    # 02:30 Berlin happens twice on 2026-10-25 (00:30 and 01:30 UTC); APScheduler fires at both.
    ws = make_workspace(tmp_path / "ws", schedule="30 2 * * *")
    add_readers(ws, {"reader@example.org": None})
    published = article_times(utc(2026, 10, 23), utc(2026, 10, 26, 12), timedelta(hours=2))
    config, db = ws.config(), ws.db()
    at = utc(2026, 10, 24, 22)
    while at <= utc(2026, 10, 25, 4):
        grow_feed(ws, published, at)
        run_due(db, config, at=at)
        at += timedelta(minutes=15)
    issues = list(db.query("SELECT period_end, status FROM issues"))
    assert issues == [{"period_end": "2026-10-25T00:30:00+00:00", "status": "sent"}]
    assert len(messages(ws.outbox)) == 1
