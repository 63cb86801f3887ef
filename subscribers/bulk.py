"""Status changes for many subscribers at once, each recorded in the consent log like a
single one: undoing the bounces one issue's send caused."""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from digest.store.database import transaction
from subscribers.store import bounced_ids_naming_issue, resubscribe

__all__ = ["bounced_by_issue", "resubscribe_bounced_by"]


def bounced_by_issue(db: sqlite_utils.Database, issue_id: int) -> list[int]:
    """Ids of the subscribers who are bounced because of issue ``issue_id``: their latest
    ``bounce`` event names it (a refusal during its send, or a bounce report about one of its
    messages). A reader bounced later by another issue, or by hand, is not one of them."""
    return bounced_ids_naming_issue(db, issue_id)


def resubscribe_bounced_by(
    db: sqlite_utils.Database, issue_id: int, why: str, *, now: datetime | None = None
) -> list[int]:
    """Make every reader :func:`bounced_by_issue` bounced active again, in one transaction,
    each with a ``resubscribe`` event (source ``cli``: the operator) whose detail says ``why``.
    Returns their ids."""
    with transaction(db):
        ids = bounced_by_issue(db, issue_id)
        for subscriber_id in ids:
            resubscribe(db, subscriber_id, source="cli", detail={"detail": why, "issue": issue_id}, now=now)
    return ids
