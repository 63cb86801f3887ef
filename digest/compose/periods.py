"""An edition's periods: its scheduled times, where each period starts, and how dates read.

:func:`scheduled_time` is the fire time for a local date (``issues build --date``);
:func:`period_start_for` the start of the period ending at a fire time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from digest.config import Edition
from digest.errors import ConfigError, DigestError
from digest.localtime import latest_fire_time

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(dt: datetime) -> str:
    """``23 Jan 2026`` — locale-independent, for subjects and headers."""
    return f"{dt.day} {MONTHS[dt.month - 1]} {dt.year}"


def format_datetime(dt: datetime) -> str:
    """``23 Jan 2026, 07:30`` — locale-independent."""
    return f"{format_date(dt)}, {dt:%H:%M}"


def scheduled_time(edition: Edition, on: date) -> datetime:
    """The edition's fire time for the local date ``on``: the latest scheduled time at or
    before the end of that day in the edition's zone, as an aware UTC datetime."""
    try:
        return _scheduled_time(edition, on)
    except OverflowError:
        # date arithmetic past year 1 or 9999 (cron fire times exist from 1970 on)
        raise DigestError(
            f"date {on.isoformat()} is out of range for edition {edition.key!r}'s schedule; "
            "pick a date from 1970-01-01 to 9999-12-30"
        ) from None


def _scheduled_time(edition: Edition, on: date) -> datetime:
    # The scheduler's own fire-time iteration (localtime), so these are its period ends,
    # including on a fall-back night, where it skips the repeat of a wall time.
    zone = edition.zone
    day_end = datetime.combine(on + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    for lookback in (1, 8, 32, 367, 366 * 8):
        start = datetime.combine(on - timedelta(days=lookback - 1), time(0), tzinfo=zone).astimezone(UTC)
        last = latest_fire_time(edition, start, day_end - timedelta(microseconds=1))
        if last is not None:
            return last
    raise ConfigError(
        f"editions.{edition.key}.schedule: {edition.schedule!r} never fires on or before {on.isoformat()}"
    )


def period_start_for(edition: Edition, period_end: datetime) -> datetime:
    """The start of the period ending at ``period_end`` (aware UTC).

    Whole-day windows are counted in the edition's wall clock, so across a DST change a
    daily period is 23 or 25 hours long and lines up with the previous scheduled time:
    no hour of articles falls between two issues.
    """
    window = edition.window_delta
    if window % timedelta(days=1):
        return period_end - window
    local_end = period_end.astimezone(edition.zone)
    return (local_end - window).astimezone(UTC)


def latest_scheduled_time(edition: Edition, now: datetime) -> datetime:
    """The edition's most recent scheduled time at or before ``now`` (aware UTC)."""
    local_today = now.astimezone(edition.zone).date()
    for back in range(0, 400):
        fire = scheduled_time(edition, local_today - timedelta(days=back))
        if fire <= now:
            return fire
    raise ConfigError(f"editions.{edition.key}.schedule: {edition.schedule!r} has not fired in the last year")
