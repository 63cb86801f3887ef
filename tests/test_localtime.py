"""Fire times and local-time due moments, with fixed clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from digest.config import Config, Edition
from digest.cron import cron_trigger
from digest.errors import ConfigError
from digest.localtime import (
    due_at,
    edition_trigger,
    fire_times,
    latest_fire_time,
    local_send_time,
    next_fire_time,
    parse_send_at,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def edition(**kw) -> Edition:
    values = {"key": "daily", "schedule": "0 7 * * *", "timezone": "Europe/Berlin"}
    values.update(kw)
    return Edition(**values)


def test_cron_weekdays_follow_cron_numbering() -> None:
    monday = edition(schedule="0 8 * * 1")
    # 2026-11-29 is a Sunday; cron's 1 is Monday.
    fire = next_fire_time(monday, utc(2026, 11, 29, 12))
    assert fire.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %H:%M") == "Mon 08:00"
    sunday = edition(schedule="0 8 * * 0")
    assert next_fire_time(sunday, utc(2026, 11, 28)).astimezone(ZoneInfo("Europe/Berlin")).weekday() == 6
    seven = edition(schedule="0 8 * * 7")
    assert next_fire_time(seven, utc(2026, 11, 28)) == next_fire_time(sunday, utc(2026, 11, 28))
    berlin = ZoneInfo("Europe/Berlin")
    names = edition(schedule="0 8 * * mon-fri")
    days = {t.astimezone(berlin).weekday() for t in fire_times(names, utc(2026, 11, 1), utc(2026, 11, 15))}
    assert days == {0, 1, 2, 3, 4}
    weekend = edition(schedule="0 8 * * 5-7")
    days = {t.astimezone(berlin).weekday() for t in fire_times(weekend, utc(2026, 11, 1), utc(2026, 11, 15))}
    assert days == {4, 5, 6}


def test_six_fields_means_seconds_first() -> None:
    trig = cron_trigger("30 15 7 * * *", "UTC")
    assert trig.get_next_fire_time(None, utc(2026, 1, 1)) == utc(2026, 1, 1, 7, 15, 30)


def test_invalid_cron_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"editions\.daily\.schedule"):
        edition_trigger(edition(schedule="0 25 * * *"))
    with pytest.raises(ConfigError):
        edition_trigger(edition(schedule="0 7 * * 9"))


def test_fire_times_across_the_spring_dst_change() -> None:
    # Europe/Berlin springs forward on 2026-03-29: 07:00 is 06:00 UTC before, 05:00 UTC after.
    times = fire_times(edition(), utc(2026, 3, 27), utc(2026, 3, 31))
    assert times == [utc(2026, 3, 27, 6), utc(2026, 3, 28, 6), utc(2026, 3, 29, 5), utc(2026, 3, 30, 5)]


def test_fire_times_exclude_start_include_end() -> None:
    times = fire_times(edition(), utc(2026, 11, 2, 6), utc(2026, 11, 4, 6))
    assert times == [utc(2026, 11, 3, 6), utc(2026, 11, 4, 6)]


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Berlin", utc(2026, 11, 30, 6)),  # 07:00 CET is the scheduled time itself
        ("America/New_York", utc(2026, 11, 30, 12)),  # 07:00 EST the same day
        ("Asia/Almaty", utc(2026, 12, 1, 2)),  # 07:00 +05 had passed: next morning
        (None, utc(2026, 11, 30, 6)),  # no zone: the edition's
        ("Not/AZone", utc(2026, 11, 30, 6)),  # unknown zone: the edition's
    ],
)
def test_due_at_is_the_first_local_send_at_after_the_scheduled_time(zone, expected) -> None:
    config = Config()
    config.editions["daily"] = edition(delivery="local", send_at="07:00")
    issue = {"period_end": "2026-11-30T06:00:00+00:00"}
    assert due_at(config, "daily", issue, {"timezone": zone}) == expected
    assert due_at(config, config.editions["daily"], issue, {"timezone": zone}) == expected


def test_due_at_is_none_for_edition_delivery() -> None:
    config = Config()
    config.editions["daily"] = edition()
    assert (
        due_at(config, "daily", {"period_end": "2026-11-30T06:00:00+00:00"}, {"timezone": "Asia/Almaty"})
        is None
    )


def test_local_send_time_is_dst_correct() -> None:
    ny = ZoneInfo("America/New_York")
    seven = parse_send_at("07:00")
    # US DST ends 2026-11-01: 07:00 EDT = 11:00 UTC on Oct 31, 07:00 EST = 12:00 UTC on Nov 1.
    assert local_send_time(ny, seven, utc(2026, 10, 31, 10)) == utc(2026, 10, 31, 11)
    assert local_send_time(ny, seven, utc(2026, 10, 31, 11, 0, 1)) == utc(2026, 11, 1, 12)
    # A wall time inside the spring gap (02:30 on 2026-03-08) is sent just after the gap.
    assert local_send_time(ny, parse_send_at("02:30"), utc(2026, 3, 8)) == utc(2026, 3, 8, 7, 30)


def test_each_zone_gets_one_issue_per_morning_over_a_dst_change() -> None:
    config = Config()
    ed = edition(delivery="local")
    config.editions["daily"] = ed
    fires = fire_times(ed, utc(2026, 10, 20), utc(2026, 11, 10))  # Berlin: Oct 25, New York: Nov 1
    for zone_name in ("Asia/Almaty", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"):
        zone = ZoneInfo(zone_name)
        dues = [due_at(config, ed, {"period_end": t.isoformat()}, {"timezone": zone_name}) for t in fires]
        assert all(d.astimezone(zone).strftime("%H:%M") == "07:00" for d in dues)
        days = [d.astimezone(zone).date() for d in dues]
        assert days == sorted(set(days)), zone_name
        assert all(b - a == timedelta(days=1) for a, b in pairwise(days))


def test_latest_fire_time_within_bounds() -> None:
    daily = edition()  # 07:00 Berlin = 06:00 UTC in November
    assert latest_fire_time(daily, utc(2026, 11, 3), utc(2026, 11, 4, 12)) == utc(2026, 11, 4, 6)
    assert latest_fire_time(daily, utc(2026, 11, 4, 6), utc(2026, 11, 4, 6)) == utc(2026, 11, 4, 6)
    assert latest_fire_time(daily, utc(2026, 11, 4, 6, 0, 1), utc(2026, 11, 4, 12)) is None
    every_second = edition(schedule="* * * * * *")
    assert latest_fire_time(every_second, utc(2026, 1, 1), utc(2026, 11, 4, 12, 0, 7)) == utc(
        2026, 11, 4, 12, 0, 7
    )
    monthly = edition(schedule="0 7 1 * *")
    assert latest_fire_time(monthly, utc(2026, 1, 1), utc(2026, 11, 20)) == utc(2026, 11, 1, 6)


@pytest.mark.parametrize(
    ("timezone", "schedule"),
    [
        ("Europe/Berlin", "30 2 * * *"),
        ("Europe/Berlin", "*/15 * * * *"),
        ("America/New_York", "0 1 * * *"),
        ("America/New_York", "*/15 * * * *"),
    ],
)
def test_fire_times_move_forward_across_both_dst_changes(timezone: str, schedule: str) -> None:
    # Each window holds one change: spring forward, then fall back (the repeated hour used
    # to hand back the same fire time forever).
    ed = edition(schedule=schedule, timezone=timezone)
    zone = ZoneInfo(timezone)
    spans = {
        "Europe/Berlin": [
            (utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)),
            (utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)),
        ],
        "America/New_York": [
            (utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)),
            (utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)),
        ],
    }[timezone]
    for start, end in spans:
        times = fire_times(ed, start, end)
        assert times and all(a < b for a, b in pairwise(times))
        assert all(start < t <= end for t in times)
        # No wall-clock time is fired twice in a row.
        assert all(
            a.astimezone(zone).time() != b.astimezone(zone).time() or b - a >= timedelta(hours=2)
            for a, b in pairwise(times)
        )
        cursor = start
        for t in times:
            assert next_fire_time(ed, cursor) == t
            cursor = t
        assert latest_fire_time(ed, start, end) == times[-1]
        for t in times:
            assert latest_fire_time(ed, start, t) == t


def test_a_daily_time_in_the_repeated_hour_fires_once_that_night() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    ed = edition(schedule="30 2 * * *")
    times = fire_times(ed, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert [t.astimezone(berlin).strftime("%m-%d %H:%M%z") for t in times] == [
        "10-25 02:30+0200",
        "10-26 02:30+0100",
    ]
    # At 02:30 winter time (the repeat), the latest fire is still the first 02:30.
    assert latest_fire_time(ed, utc(2026, 10, 24, 12), utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 0, 30)
    # A quarter-hourly cron keeps its fires in the repeated hour: real time passed between them.
    quarter = fire_times(
        edition(schedule="*/15 * * * *"), utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 1, 50)
    )
    assert len(quarter) == 8 and all(b - a == timedelta(minutes=15) for a, b in pairwise(quarter))
