"""The list in counts for ``digest stats --list``: its size over time, sources, choices.

A read-only sibling of :mod:`subscribers.store` (the owner of ``subscribers``, at its
500-line limit): counts only, never an address. The events per day are
:mod:`subscribers.events`' (:func:`~subscribers.events.events_per_day`).
"""

from __future__ import annotations

import json
from collections import Counter

import sqlite_utils


def list_size_changes(db: sqlite_utils.Database) -> tuple[dict[str, int], dict[str, int]]:
    """Day → readers who joined the list (confirmed, or were added active) and day → readers
    who left it (unsubscribed or bounced) that day; a reader still pending never joined.
    The list's size at the end of a day is the joins up to it less the leaves up to it."""
    joined = dict(
        db.execute(
            "SELECT substr(coalesce(confirmed_at, created_at), 1, 10), count(*) FROM subscribers"
            " WHERE status != 'pending' GROUP BY 1"
        ).fetchall()
    )
    left = dict(
        db.execute(
            "SELECT substr(coalesce(unsubscribed_at, updated_at), 1, 10), count(*) FROM subscribers"
            " WHERE status IN ('unsubscribed', 'bounced') GROUP BY 1"
        ).fetchall()
    )
    return joined, left


def source_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Where the readers on the list (active) came from: subscriber source → count."""
    return dict(
        db.execute(
            "SELECT source, count(*) FROM subscribers WHERE status = 'active' GROUP BY source ORDER BY 2 DESC"
        ).fetchall()
    )


def choice_counts(db: sqlite_utils.Database) -> tuple[dict[str, int], dict[str, int]]:
    """The editions and categories the active readers chose (``*``: all of them)."""
    editions: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for column, counter in (("editions", editions), ("categories", categories)):
        for value, count in db.execute(
            f"SELECT {column}, count(*) FROM subscribers WHERE status = 'active' GROUP BY {column}"
        ):
            try:
                chosen = json.loads(value) if value else None
            except ValueError:
                chosen = None
            for label in chosen if isinstance(chosen, list) and chosen else ["*"]:
                counter[str(label)] += count
    return dict(editions.most_common()), dict(categories.most_common())
