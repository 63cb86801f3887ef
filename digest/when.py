"""Reading ``--since`` and ``--until``: a date, an ISO time, or a span back from now.

A value past the calendar's ends (a span of ten million days, a time in year 1 west of
UTC) is a :class:`DigestError` naming the option, never an ``OverflowError``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from digest.config import DURATION, parse_duration
from digest.errors import ConfigError, DigestError
from digest.store.database import utcnow

_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def parse_when(text: str, *, zone: str = "UTC", now: datetime | None = None, label: str = "") -> datetime:
    """Parse a ``--since``/``--until`` value: a date (midnight in ``zone``), an ISO time, or a
    duration back from now (``2d``, ``12h``). Raises DigestError naming what is accepted, the
    option (``label``) included, also for a value past the calendar's ends (years 1 to 9999)."""
    now = now or utcnow()
    text = text.strip()
    named = f"{label} {text!r}" if label else repr(text)
    try:
        return _parse_when(text, zone, now, named)
    except OverflowError:
        raise DigestError(
            f"{named} is out of range: times run from year 1 to 9999; "
            "give a date like 2020-01-01 or a shorter span"
        ) from None


def _parse_when(text: str, zone: str, now: datetime, named: str) -> datetime:
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise DigestError(f"invalid date {named}; use YYYY-MM-DD") from None
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    if DURATION.match(text):
        try:
            span = parse_duration(text)
        except ConfigError:  # a number of days past what timedelta holds
            raise OverflowError(text) from None
        return now - span
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise DigestError(
            f"invalid date {named}; use YYYY-MM-DD, an ISO time, or a span back from now like 2d"
        ) from None
    return dt.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) if dt.tzinfo is None else dt.astimezone(UTC)
