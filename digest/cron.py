"""Cron expressions: :func:`cron_trigger`, the one reader of an edition's ``schedule``.

An edition's ``schedule`` is a standard cron expression read in the edition's
time zone: five fields (minute hour day-of-month month day-of-week) or six
with seconds first. Weekday numbers mean what they mean in cron (0 and 7 are
Sunday, 1 is Monday; names like ``mon`` work too). APScheduler 3.x counts
weekdays from Monday, so :func:`cron_trigger` translates the field instead of
handing it over as is. As in APScheduler (and unlike Vixie cron), a day-of-month
and a day-of-week that are both restricted must both match.

Kernel: imports nothing from digest (the config checks a schedule with it, and
:mod:`digest.localtime` builds its fire times on it).
"""

from __future__ import annotations

import re
from datetime import tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# APScheduler 3.x weekday names, indexed by cron's numbering (0 = Sunday).
_CRON_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_WEEKDAY_NUMBER = {name: i for i, name in enumerate(_CRON_WEEKDAYS)}
_WEEKDAY_TOKEN = re.compile(r"^(\*|[a-z]{3}|\d)(?:-([a-z]{3}|\d))?(?:/(\d+))?$")


def _weekday_value(text: str, expr: str) -> int:
    if text.isdigit():
        value = int(text)
        if value > 7:
            raise ValueError(f"weekday {value} out of range 0-7 in {expr!r}")
        return value % 7
    if text not in _WEEKDAY_NUMBER:
        raise ValueError(f"unknown weekday {text!r} in {expr!r}")
    return _WEEKDAY_NUMBER[text]


def _cron_weekdays(field: str) -> str:
    """Translate a cron day-of-week field into APScheduler 3.x weekday names."""
    field = field.strip().lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for token in field.split(","):
        m = _WEEKDAY_TOKEN.match(token)
        if not m:
            raise ValueError(f"cannot read day-of-week {token!r}")
        first, last, step_text = m.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step must be at least 1 in {token!r}")
        if first == "*":
            start, end = 0, 6
        else:
            start = _weekday_value(first, token)
            if last is not None:
                end = _weekday_value(last, token)
                if last == "7":
                    end = 7  # "5-7" is Friday to Sunday
            else:
                end = 6 if step_text else start
            if end < start:
                raise ValueError(f"day-of-week range {token!r} runs backwards")
        days.update(d % 7 for d in range(start, end + 1, step))
    if len(days) == 7:
        return "*"
    # APScheduler's own order: Monday first.
    return ",".join(_CRON_WEEKDAYS[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def cron_trigger(schedule: str, zone: tzinfo | str) -> CronTrigger:
    """A CronTrigger for a cron expression (5 fields, or 6 with seconds first) in ``zone``.

    Raises ValueError with a readable reason when the expression is invalid.
    """
    fields = schedule.split()
    if len(fields) == 5:
        second = "0"
        minute, hour, day, month, weekday = fields
    elif len(fields) == 6:
        second, minute, hour, day, month, weekday = fields
    else:
        raise ValueError(f"expected 5 or 6 fields, got {len(fields)}")
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_cron_weekdays(weekday),
        timezone=zone,
    )
