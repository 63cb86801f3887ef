"""The consent record: the owner of the ``events`` table.

Every change of a subscriber's status or preferences appends one row here (time, source,
detail) in the same transaction as the change (:func:`record_event`); that table is what a
publisher shows when asked "when and how did this person agree?". Event details never hold
the address or the name, so the record can outlive a removal (:func:`forget_address_in_events`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlite_utils

from digest.store.database import iso, utcnow
from subscribers.model import SOURCES

SIGNED_UP_SINCE_SQL = (
    "EXISTS (SELECT 1 FROM events"
    " WHERE events.subscriber_id = subscribers.id AND kind = 'signup' AND at >= ?)"
)
"""True for a ``subscribers`` row (unaliased) who asked to sign up at or after the parameter."""

LAST_BOUNCE_ISSUE_SQL = (
    "(SELECT CAST(json_extract(detail, '$.issue') AS INTEGER) FROM events"
    " WHERE subscriber_id = s.id AND kind = 'bounce' ORDER BY id DESC LIMIT 1)"
)
"""The issue the latest ``bounce`` event of a ``subscribers`` row aliased ``s`` names."""


def record_event(
    db: sqlite_utils.Database,
    subscriber_id: int | None,
    kind: str,
    source: str,
    detail: dict | str | None = None,
    *,
    now: datetime | None = None,
    email_hash_value: str | None = None,
) -> int:
    """Append one line to the consent record; returns its id."""
    check_source(source)
    cursor = db.execute(
        "INSERT INTO events (subscriber_id, email_hash, kind, source, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            subscriber_id,
            email_hash_value,
            kind,
            source,
            json.dumps(as_detail(detail), ensure_ascii=False),
            iso(now or utcnow()),
        ],
    )
    return int(cursor.lastrowid or 0)


def subscriber_events(db: sqlite_utils.Database, subscriber_id: int) -> list[dict]:
    """The consent record of one subscriber, oldest first."""
    rows = db.execute(
        "SELECT id, kind, source, detail, at FROM events WHERE subscriber_id = ? ORDER BY id", [subscriber_id]
    ).fetchall()
    return [
        {"id": r[0], "kind": r[1], "source": r[2], "detail": json.loads(r[3] or "{}"), "at": r[4]}
        for r in rows
    ]


def last_event_at(db: sqlite_utils.Database, subscriber_id: int, kind: str) -> str:
    """When this subscriber's latest ``kind`` event was recorded ("" when never)."""
    row = db.execute(
        "SELECT max(at) FROM events WHERE subscriber_id = ? AND kind = ?", [subscriber_id, kind]
    ).fetchone()
    return row[0] or ""


def subscribed_while_suppressed(db: sqlite_utils.Database, subscriber_id: int) -> bool:
    """Whether this subscriber's ``subscribe`` event says the address was on the suppression list."""
    # Read in Python: SQLite's json_extract gives 1 for true, PostgreSQL's (text) gives '1'.
    rows = db.execute(
        "SELECT detail FROM events WHERE subscriber_id = ? AND kind = 'subscribe'", [subscriber_id]
    ).fetchall()
    return any(json.loads(detail or "{}").get("was_suppressed") for (detail,) in rows)


def event_counts_since(db: sqlite_utils.Database, since: datetime, kinds: Iterable[str]) -> dict[str, int]:
    """How many events of each of ``kinds`` were recorded at or after ``since`` (kinds with none left out)."""
    wanted = list(kinds)
    marks = ", ".join("?" * len(wanted))
    return dict(
        db.execute(
            f"SELECT kind, count(*) FROM events WHERE at >= ? AND kind IN ({marks}) GROUP BY kind",
            [iso(since), *wanted],
        ).fetchall()
    )


def complainer_count(db: sqlite_utils.Database) -> int:
    """How many subscribers still on the list ever complained."""
    return db.execute(
        "SELECT count(DISTINCT subscriber_id) FROM events"
        " WHERE kind = 'complaint' AND subscriber_id IS NOT NULL"
    ).fetchone()[0]


def forget_address_in_events(db: sqlite_utils.Database, subscriber_id: int, email: str, hashed: str) -> None:
    """A removal: keep the subscriber's record under ``hashed``, with ``email`` scrubbed from the details."""
    db.execute(
        "UPDATE events SET email_hash = ?, detail = replace(detail, ?, '[removed]') WHERE subscriber_id = ?",
        [hashed, email, subscriber_id],
    )


def as_detail(detail: dict | str | None) -> dict:
    """An event detail as a dict: None is empty, a bare string is ``{"detail": text}``."""
    if detail is None:
        return {}
    if isinstance(detail, str):
        return {"detail": detail}
    return detail


def check_source(source: str) -> None:
    """Refuse an event source that is not one of :data:`subscribers.model.SOURCES`."""
    if source not in SOURCES:
        raise ValueError(f"unknown event source {source!r}; one of {', '.join(SOURCES)}")


def events_per_day(
    db: sqlite_utils.Database, kinds: tuple[str, ...], since: str
) -> dict[str, dict[str, int]]:
    """Day (``YYYY-MM-DD``, UTC) → kind → how many events of ``kinds`` happened at or after ``since``."""
    marks = ", ".join("?" * len(kinds))
    days: dict[str, dict[str, int]] = {}
    for day, kind, count in db.execute(
        f"SELECT substr(at, 1, 10), kind, count(*) FROM events WHERE kind IN ({marks}) AND at >= ?"
        " GROUP BY 1, 2",
        [*kinds, since],
    ):
        days.setdefault(day, {})[kind] = count
    return days


def count_events(db: sqlite_utils.Database, kinds: tuple[str, ...], since: str, until: str) -> int:
    """How many events of ``kinds`` happened in ``[since, until)``."""
    marks = ", ".join("?" * len(kinds))
    return db.execute(
        f"SELECT count(*) FROM events WHERE kind IN ({marks}) AND at >= ? AND at < ?", [*kinds, since, until]
    ).fetchone()[0]
