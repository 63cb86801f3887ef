"""Nobody forgets: the issues that should have gone out and have not.

``digest run`` calls :func:`overdue_issues` after its own work and reports every line it
returns, exiting non-zero while there are any: a draft whose scheduled time is past the
catch-up window (no run will build or send it by itself any more), and an issue past that
window with ledger rows still unsent.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlite_utils

from digest.compose.issues import issues_ended_before, overdue_drafts
from digest.delivery.ledger import pending_due_counts
from digest.store.database import iso


def overdue_issues(
    db: sqlite_utils.Database,
    editions: list[str],
    *,
    before: datetime,
    at: datetime,
    skip: Collection[int] = (),
) -> list[str]:
    """One line per issue of ``editions`` whose period ended before ``before`` and that is
    still a draft, or still has ledger rows to send that were due by ``at``; each line says
    how to send it. Drafts in ``skip`` (held for approval: the run said so already) are left out."""
    if not editions:
        return []
    lines = []
    drafts = overdue_drafts(db, editions, iso(before))
    for _id, edition, number, period_end in drafts:
        if _id in skip:
            continue
        lines.append(
            f"{edition}/{number} was due {period_end.replace('+00:00', 'Z')} and is still a draft; "
            f"send it with `digest send {edition}/{number}`"
        )
    counts = pending_due_counts(db, iso(at))
    unsent = [(*row, counts[row[0]]) for row in issues_ended_before(db, list(counts), editions, iso(before))]
    for _id, edition, number, period_end, count in unsent:
        lines.append(
            f"{edition}/{number} (due {period_end.replace('+00:00', 'Z')}) has {count} "
            f"undelivered message{'s' if count != 1 else ''}; see `digest deliveries {edition}/{number}`, "
            f"send them with `digest send {edition}/{number}`"
        )
    return lines
