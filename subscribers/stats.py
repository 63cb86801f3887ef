"""`digest subscribers stats`: the list's counts, from the tables' owners.

:func:`subscriber_stats` adds up the statuses (:mod:`subscribers.store`), the suppression list
(:mod:`subscribers.suppressions`), the consent events of the last 30 days
(:mod:`subscribers.events`) and the bounce reports about readers (read here: ``bounces`` is
owned by :mod:`digest.bounces.process`, above this package).
"""

from __future__ import annotations

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


def subscriber_stats(db: sqlite_utils.Database, *, now: datetime | None = None) -> dict[str, Any]:
    """Counts: total, per status, suppressed, and consent events of the last 30 days (``STATS_GROUPS``)."""
    by_status = count_by_status(db)
    start = (now or utcnow()) - timedelta(days=30)
    recent = event_counts_since(db, start, _STATS_KINDS)
    reports = dict(
        db.execute(
            "SELECT kind, count(*) FROM bounces"
            " WHERE received_at >= ? AND subscriber_id IS NOT NULL GROUP BY kind",
            [iso(start)],
        ).fetchall()
    )
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "suppressed": suppression_count(db),
        "complained": complainer_count(db),
        "last_30_days": {k: recent.get(k, 0) for k in _STATS_KINDS},
        "bounce_reports_30_days": {k: reports.get(k, 0) for k in ("hard", "soft", "complaint")},
    }
