"""`digest subscribers stats`: the list's counts, from the tables' owners.

:func:`subscriber_stats` adds up the statuses (:mod:`subscribers.store`), the suppression list
(:mod:`subscribers.suppressions`), the consent events of the last 30 days
(:mod:`subscribers.events`) and the bounce reports about readers (``bounces`` is owned by
:mod:`digest.bounces.process`, above this package: the caller passes its ``reports_per_day``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from digest.store.database import iso, utcnow
from subscribers.events import complainer_count, event_counts_since
from subscribers.store import count_by_status
from subscribers.suppressions import suppression_count

STATS_GROUPS = (
    ("signup", "subscribe", "confirm", "resubscribe"),
    ("unsubscribe", "mailed_unsubscribe", "complaint", "remove"),
    ("bounce", "hard_bounce", "soft_bounce", "preferences"),
)
"""The consent event kinds ``subscriber_stats`` counts, grouped as ``subscribers stats`` prints them:
joining (``signup`` is a sign-up form request), leaving (``mailed_unsubscribe`` and ``complaint``
are reports digest.bounces read; ``unsubscribe`` is the status change, whatever its source), and
bounces (``bounce`` is the status change, ``hard_bounce``/``soft_bounce`` the reports) with
preference changes."""
_STATS_KINDS = tuple(kind for group in STATS_GROUPS for kind in group)


ReportsPerDay = Callable[[sqlite_utils.Database, str], dict[str, dict[str, int]]]
""":func:`digest.bounces.process.reports_per_day`: day → kind → reports that matched a reader."""


def subscriber_stats(
    db: sqlite_utils.Database, *, reports_per_day: ReportsPerDay, now: datetime | None = None
) -> dict[str, Any]:
    """Counts: total, per status, suppressed, consent events of the last 30 days (``STATS_GROUPS``)
    and the bounce reports about readers in those days (from ``reports_per_day``)."""
    by_status = count_by_status(db)
    start = (now or utcnow()) - timedelta(days=30)
    recent = event_counts_since(db, start, _STATS_KINDS)
    reports: dict[str, int] = {}
    for kinds in reports_per_day(db, iso(start)).values():
        for kind, count in kinds.items():
            reports[kind] = reports.get(kind, 0) + count
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "suppressed": suppression_count(db),
        "complained": complainer_count(db),
        "last_30_days": {k: recent.get(k, 0) for k in _STATS_KINDS},
        "bounce_reports_30_days": {k: reports.get(k, 0) for k in ("hard", "soft", "complaint")},
    }
