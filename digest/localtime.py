"""When things happen: edition fire times, and each reader's local send time.

Cron expressions (an edition's ``schedule``) are read by :mod:`digest.cron`.

Local-time delivery (``delivery = "local"``)
--------------------------------------------
The rule: **an issue is composed once, at the edition's scheduled time T, for
the period that ends at T; each subscriber receives it at the first
``send_at`` in their own time zone at or after T.** Subscribers without a
zone (or with one that no longer exists) use the edition's zone.

Why this rule:

- The period is the edition's own period ([T - window, T)), so the articles
  of a local edition are grouped exactly like those of an ordinary one, and
  the periods of successive issues tile as the cron fires. Nothing is
  composed before its period has ended.
- Every zone gets every issue exactly once and always at its ``send_at``
  (07:00), DST-correct: the time is built as a wall-clock time in the
  subscriber's zone for that date and only then converted to UTC. A wall
  time that does not exist on a spring-forward day (02:30) is sent at the
  same distance past the gap (03:30); an ambiguous one on a fall-back day is
  the first occurrence.
- What is guaranteed: each reader gets every issue exactly once, at a
  ``send_at`` in their zone (the first at or after T), and issues arrive in
  order; nobody is skipped and nobody gets an issue twice. What is *not*
  guaranteed is exactly one issue per morning. Successive issues of a daily
  edition are 24 h apart in the edition's wall clock and a reader's mornings
  in theirs; when the two zones change DST on different dates (or only one of
  them does), T moves by an hour against the reader's ``send_at``, and a
  reader whose ``send_at`` lies within that hour of T gets two issues one
  morning and none another. Example: an edition at 06:30 America/New_York
  and a reader in America/Puerto_Rico (UTC-4 all year): the issue of Sat
  31 Oct 2026 arrives Sat 07:00, the one of Sun 1 Nov (06:30 EST, after
  their 07:00) Mon 07:00, so Sunday has none; on Sun 8 Mar 2026 the reader
  gets both the Saturday and the Sunday issue. Readers whose ``send_at`` is
  more than an hour from T (in UTC) are unaffected.
- Where readers fall, for a daily edition composed at 07:00 Europe/Berlin
  (06:00 UTC in winter):
  Berlin readers get it at once (their 07:00 is T), New York readers at
  07:00 EST the same day (12:00 UTC), Almaty readers (UTC+5, their 07:00 was
  02:00 UTC, before T) at 07:00 the next morning (02:00 UTC).
- To have every zone receive the issue on the same calendar date, schedule
  the edition before the earliest ``send_at`` you serve, e.g.
  ``schedule = "0 6 * * *"`` with ``timezone = "Pacific/Kiritimati"``
  (UTC+14) composes at 16:00 UTC the day before, ahead of everybody's 07:00.

The ledger (``deliveries.due_at``) stores the computed moment; the send
engine sends a row at the first run at or after it, so a reader whose hour
passed while the scheduler was down gets the issue at the next run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from digest.config import Config, Edition
from digest.cron import cron_trigger
from digest.errors import ConfigError
from digest.store.database import from_iso


def edition_trigger(edition: Edition) -> CronTrigger:
    """The edition's schedule as a CronTrigger in its zone; ConfigError if the cron is invalid."""
    try:
        return cron_trigger(edition.schedule, edition.zone)
    except ValueError as exc:
        raise ConfigError(
            f"editions.{edition.key}.schedule = {edition.schedule!r} is not a valid cron expression "
            f"({exc}); use minute hour day month weekday, e.g. '0 7 * * *'"
        ) from None


def _just_after(moment: datetime, zone: tzinfo) -> datetime:
    """The instant one microsecond after ``moment``, expressed in ``zone``.

    The microsecond is added in UTC, before converting: adding it to a local time
    resets ``fold``, which in the repeated hour of a fall-back night moves the
    time an hour back, and the trigger hands back the same fire time forever.
    """
    return (moment.astimezone(UTC) + timedelta(microseconds=1)).astimezone(zone)


def _repeats_previous(trigger: CronTrigger, zone: tzinfo, fire: datetime) -> bool:
    """Whether ``fire`` is the second reading of an ambiguous wall time (fall-back night)
    whose first reading was the trigger's previous fire time: the same local time again."""
    local = fire.astimezone(zone)
    first = local.replace(fold=0)
    if first.utcoffset() == local.replace(fold=1).utcoffset() or local.fold == 0:
        return False  # not ambiguous, or the first reading itself
    # Compare in UTC: aware datetimes sharing a tzinfo compare by wall time, ignoring fold.
    at_first = trigger.get_next_fire_time(None, first)
    if at_first is None or at_first.astimezone(UTC) != first.astimezone(UTC):
        return False
    following = trigger.get_next_fire_time(None, _just_after(first, zone))
    return following is not None and following.astimezone(UTC) == fire.astimezone(UTC)


def _next_fire(trigger: CronTrigger, zone: tzinfo, after: datetime) -> datetime | None:
    """The trigger's first fire time strictly after ``after`` (aware UTC), or None.

    On a fall-back night APScheduler fires a time in the repeated hour twice (e.g.
    a daily 02:30 at 02:30 summer time and again at 02:30 winter time); the second
    one, whose wall time equals the previous fire's, is skipped so that one day
    gets one issue. Fires that differ from the previous one (``*/15`` in the
    repeated hour) are kept: real time passed between them.
    """
    cursor = after
    while True:
        fire = trigger.get_next_fire_time(None, _just_after(cursor, zone))
        if fire is None:
            return None
        if not _repeats_previous(trigger, zone, fire):
            return fire.astimezone(UTC)
        cursor = fire


def next_fire_time(edition: Edition, after: datetime) -> datetime:
    """The edition's first scheduled time strictly after ``after`` (aware UTC)."""
    fire = _next_fire(edition_trigger(edition), edition.zone, after)
    if fire is None:  # a cron like "0 0 30 2 *" never fires
        raise ConfigError(f"editions.{edition.key}.schedule = {edition.schedule!r} never fires")
    return fire


def fire_times(edition: Edition, after: datetime, until: datetime) -> list[datetime]:
    """The edition's scheduled times t with ``after < t <= until``, oldest first, aware UTC."""
    trigger = edition_trigger(edition)
    times: list[datetime] = []
    cursor = after
    while True:
        fire = _next_fire(trigger, edition.zone, cursor)
        if fire is None or fire > until:
            return times
        times.append(fire)
        cursor = fire


def latest_fire_time(edition: Edition, not_before: datetime, until: datetime) -> datetime | None:
    """The edition's latest scheduled time t with ``not_before <= t <= until``, or None.

    Looks back in growing steps, so a cron that fires every second costs a minute of
    fire times, not the whole span.
    """
    for span in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1), timedelta(days=8)):
        start = max(until - span, not_before)
        times = fire_times(edition, start - timedelta(microseconds=1), until)
        if times:
            return times[-1]
        if start == not_before:
            return None
    times = fire_times(edition, not_before - timedelta(microseconds=1), until)
    return times[-1] if times else None


def zone_named(name: str | None, fallback: tzinfo) -> tzinfo:
    """The IANA zone ``name``, or ``fallback`` when it is empty or unknown."""
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def subscriber_zone(edition: Edition, subscriber: dict[str, Any]) -> tzinfo:
    """The zone a subscriber's local-time delivery uses: theirs, else the edition's."""
    return zone_named(subscriber.get("timezone"), edition.zone)


def wall_time(zone: tzinfo, day: date, at: time) -> datetime:
    """``day`` at wall-clock ``at`` in ``zone``, as aware UTC (gap times move forward past the gap)."""
    # fold=0: the earlier reading of an ambiguous time; for a time in a DST gap,
    # zoneinfo applies the offset from before the gap, which lands after it.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def parse_send_at(text: str) -> time:
    """``"07:00"`` → time(7, 0)."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def local_send_time(zone: tzinfo, send_at: time, not_before: datetime) -> datetime:
    """The first moment at or after ``not_before`` when the clock in ``zone`` shows ``send_at``."""
    day = not_before.astimezone(zone).date()
    for offset in range(3):
        candidate = wall_time(zone, day + timedelta(days=offset), send_at)
        if candidate >= not_before:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within three days")


def _issue_time(issue: dict[str, Any]) -> datetime:
    value = issue["period_end"]
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return from_iso(value)


def due_at(
    config: Config, edition: Edition | str, issue: dict[str, Any], subscriber: dict[str, Any]
) -> datetime | None:
    """When ``subscriber`` should receive ``issue`` (aware UTC), or None for "at once".

    For ``delivery = "edition"`` the answer is None. For ``delivery = "local"``
    it is the first ``send_at`` in the subscriber's zone (the edition's when
    they have none) at or after the issue's scheduled time (its period end);
    see the module docstring for why.
    """
    if isinstance(edition, str):
        edition = config.edition(edition)
    if edition.delivery != "local":
        return None
    zone = subscriber_zone(edition, subscriber)
    return local_send_time(zone, parse_send_at(edition.send_at), _issue_time(issue))
