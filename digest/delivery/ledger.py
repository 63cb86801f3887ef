"""The deliveries ledger: the only writer of the ``deliveries`` table.

Row states: ``queued`` → ``sending`` (claimed, committed before any byte
leaves) → ``sent`` (only after the server's 250) / ``failed`` / ``deferred``
(4xx, tried again by the next run) / ``skipped`` (the reader left after the
freeze). The send snapshots the recipients here (:func:`freeze`), connection
workers claim and record through a :class:`Ledger`, and the journals of a
crashed run are replayed here (:func:`replay_journals`) before anything else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.compose.issues import issue_categories
from digest.config import Config
from digest.delivery.journal import read_journals
from digest.errors import DigestError
from digest.localtime import due_at
from digest.mail.message_ids import MessageIds, message_ids
from digest.mail.transports import Reply
from digest.render.variants import stored_variant, variant_key
from digest.store.database import DELIVERY_STATUSES, PENDING_DELIVERY, iso, transaction, utcnow
from subscribers.eligibility import eligibility_sql, ineligible_reason
from subscribers.model import decode_labels
from subscribers.store import eligible_subscribers, mark_bounced

__all__ = [
    "Ledger",
    "Result",
    "Row",
    "delivery_counts",
    "done_count",
    "finish",
    "freeze",
    "list_deliveries",
    "recipients",
    "replay_journals",
    "requeue_failed",
    "requeue_in_flight",
    "requeue_readers",
    "requeue_refused",
]


@dataclass
class Row:
    """A claimed ledger row, as a connection worker carries it."""

    id: int
    subscriber_id: int | None
    email: str
    variant: str
    message_id: str
    name: str = ""
    tries: int = 0  # attempts in this run
    throttles: int = 0  # ...of which the relay answered "too fast" (they use no try)
    attributes: str | None = None  # the subscriber's attributes (JSON), for merge fields


@dataclass
class Result:
    """What happened to a row: sent / failed / deferred / skipped (recorded in batches)."""

    row: Row
    status: str
    reply: Reply | None = None
    error: str | None = None
    bounced: bool = False
    at: str = ""


# ---------------------------------------------------------------- the snapshot


def freeze(db: sqlite_utils.Database, config: Config, issue: dict[str, Any], now: datetime) -> None:
    """Draft → sending, variants stored, one ledger row per eligible recipient: one transaction."""

    issue_id = int(issue["id"])
    stamp = iso(utcnow())
    with transaction(db):
        status = db.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0]
        if status != "draft":
            return
        db.execute("UPDATE issues SET status = 'sending', frozen_at = ? WHERE id = ?", [stamp, issue_id])
        variants: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        insert = (
            "INSERT OR IGNORE INTO deliveries (issue_id, subscriber_id, email, variant, status, due_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)"
        )
        for subscriber, variant, due in recipients(db, config, issue):
            rows.append((issue_id, subscriber["id"], subscriber["email"], variant, due and iso(due), stamp))
            variants.add(variant)
            if len(rows) >= 1000:
                db.conn.executemany(insert, rows)
                rows.clear()
        if rows:
            db.conn.executemany(insert, rows)
        for variant in sorted(variants):
            stored_variant(db, config, issue_id, variant)


def recipients(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], str, datetime | None]]:
    """Who gets ``issue`` now: (subscriber, variant, due time or None), streamed.

    Eligible subscribers whose categories intersect the issue's; ``due`` is set only for
    local-time editions.
    """

    categories = issue_categories(db, int(issue["id"]))
    edition = config.editions.get(issue["edition"])
    local = edition is not None and edition.delivery == "local"
    for subscriber in eligible_subscribers(db, issue["edition"], categories):
        variant = variant_key(subscriber["categories"], categories)
        if variant != "[]":
            yield subscriber, variant, due_at(config, edition, issue, subscriber) if local else None


# ---------------------------------------------------------------- between runs (under the send lock)


def replay_journals(db: sqlite_utils.Database, db_path: Path, issue_id: int) -> int:
    """Record the 250s a killed run journaled but never committed; remove the journals.

    Returns how many rows became ``sent``. Only rows still pending change.
    """
    entries, paths = read_journals(db_path, issue_id)
    changed = 0
    if entries:
        stamp = iso(utcnow())
        with transaction(db):
            for entry in entries:
                changed += db.execute(
                    "UPDATE deliveries SET status = 'sent', last_error = NULL, smtp_code = ?,"
                    " enhanced_code = ?, attempts = attempts + 1, sent_at = ?, updated_at = ?"
                    " WHERE id = ? AND issue_id = ? AND status IN ('queued', 'sending', 'deferred')",
                    [entry.code, entry.enhanced, entry.at, stamp, entry.row_id, issue_id],
                ).rowcount
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return changed


def requeue_in_flight(db: sqlite_utils.Database, issue_id: int) -> None:
    """Rows left in flight by a crashed run go out again (same Message-ID); deferred rows get
    this run's retries. Safe only under the issue's send lock."""
    with transaction(db):
        db.execute(
            "UPDATE deliveries SET status = 'queued'"
            " WHERE issue_id = ? AND status IN ('sending', 'deferred')",
            [issue_id],
        )


def requeue_failed(db: sqlite_utils.Database, issue_id: int) -> int:
    """Failed rows whose failure was not about the mailbox go back to ``queued``.

    Never a 5.1.x bounce (but 5.1.7/5.1.8, the sender's address, are requeued), never a
    reader who is no longer active. A ``sent`` issue with requeued rows is ``sending`` again.
    Returns how many rows were requeued.
    """
    with transaction(db):
        count = db.execute(
            "UPDATE deliveries SET status = 'queued', updated_at = ? WHERE issue_id = ? AND status = 'failed'"
            " AND (enhanced_code IS NULL OR enhanced_code NOT LIKE '5.1.%'"
            "      OR enhanced_code IN ('5.1.7', '5.1.8'))"
            " AND subscriber_id IN (SELECT id FROM subscribers WHERE status = 'active')",
            [iso(utcnow()), issue_id],
        ).rowcount
        if count:
            db.execute("UPDATE issues SET status = 'sending' WHERE id = ? AND status = 'sent'", [issue_id])
    return count


def requeue_readers(db: sqlite_utils.Database, issue_id: int, subscriber_ids: list[int]) -> int:
    """The failed rows of ``issue_id`` for these (active again) readers go back to ``queued``,
    and a ``sent`` issue with such rows is ``sending`` again: a mass bounce undone
    (``digest subscribers resubscribe --bounced-by``). Returns how many rows were requeued."""
    count = 0
    with transaction(db):
        for start in range(0, len(subscriber_ids), 500):
            chunk = subscriber_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            count += db.execute(
                "UPDATE deliveries SET status = 'queued', updated_at = ?"
                f" WHERE issue_id = ? AND status = 'failed' AND subscriber_id IN ({marks})",
                [iso(utcnow()), issue_id, *chunk],
            ).rowcount
        if count:
            db.execute("UPDATE issues SET status = 'sending' WHERE id = ? AND status = 'sent'", [issue_id])
    return count


def requeue_refused(db: sqlite_utils.Database, issue_id: int, replies: set[str], *, since: str) -> int:
    """Rows failed since ``since`` with one of ``replies`` (:func:`~digest.delivery.policy.reply_key`:
    an enhanced code, or a basic code for a reply without one) go back to queued: the relay gave
    that refusal to several readers in a row, so it was not about them. (A connection holds such
    refusals back until the streak breaks; this catches one that another connection recorded.)"""
    count = 0
    with transaction(db):
        for key in replies:
            count += db.execute(
                "UPDATE deliveries SET status = 'queued', attempts = max(0, attempts - 1), last_error = NULL"
                " WHERE issue_id = ? AND status = 'failed' AND updated_at >= ?"
                " AND (enhanced_code = ? OR (enhanced_code IS NULL AND CAST(smtp_code AS TEXT) = ?))",
                [issue_id, since, key, key],
            ).rowcount
    return count


def finish(db: sqlite_utils.Database, issue_id: int) -> tuple[dict[str, int], str]:
    """Mark the issue ``sent`` when no row is pending; return the counts and the issue's status."""
    counts = delivery_counts(db, issue_id)
    with transaction(db):
        if not any(counts[s] for s in PENDING_DELIVERY):
            db.execute(
                "UPDATE issues SET status = 'sent', sent_at = coalesce(sent_at, ?) WHERE id = ?",
                [iso(utcnow()), issue_id],
            )
    return counts, db.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0]


# ---------------------------------------------------------------- during a run


class Ledger:
    """One connection worker's access to the ledger (its own SQLite connection)."""

    def __init__(self, db: sqlite_utils.Database, config: Config, issue_id: int, now_iso: str) -> None:
        self.db = db
        self.config = config
        self.issue_id = issue_id
        self.now_iso = now_iso
        self._message_ids: MessageIds | None = None  # keyed on the first claim
        self._scope: tuple[str, list[str]] | None = None

    def commit(self, results: list[Result], claim: int = 0) -> tuple[list[Row], int]:
        """Record ``results`` and claim up to ``claim`` rows in one transaction.

        Returns (claimed rows, rows skipped while claiming: their readers left after the freeze).
        """
        claimed: list[Row] = []
        skipped = 0
        stamp = iso(utcnow())
        with transaction(self.db):
            sent = [r for r in results if r.status == "sent"]
            if sent:
                self._record_sent(sent, stamp)
            for r in results:
                if r.status != "sent":
                    self._record(r, stamp)
            if claim:
                claimed, skipped = self._claim(claim, stamp)
        return claimed, skipped

    def _record_sent(self, results: list[Result], stamp: str) -> None:
        self.db.conn.executemany(
            "UPDATE deliveries SET status = 'sent', attempts = attempts + ?, last_error = NULL,"
            " smtp_code = ?, enhanced_code = ?, updated_at = ?, sent_at = ? WHERE id = ?",
            [
                (
                    r.row.tries,
                    r.reply.code if r.reply else 250,
                    r.reply and r.reply.enhanced,
                    stamp,
                    r.at,
                    r.row.id,
                )
                for r in results
            ],
        )

    def _record(self, r: Result, stamp: str) -> None:
        reply = r.reply
        error = r.error or (reply.describe() if reply and not reply.ok else None)
        self.db.execute(
            "UPDATE deliveries SET status = ?, attempts = attempts + ?, last_error = ?, smtp_code = ?,"
            " enhanced_code = ?, message_id = ?, updated_at = ?, sent_at = ? WHERE id = ?",
            [
                r.status,
                r.row.tries,
                error,
                reply.code if reply else None,
                reply.enhanced if reply else None,
                r.row.message_id,
                stamp,
                r.at if r.status == "sent" else None,
                r.row.id,
            ],
        )
        if r.bounced and r.row.subscriber_id is not None:
            with contextlib.suppress(DigestError):
                mark_bounced(
                    self.db, r.row.subscriber_id, detail={"issue": self.issue_id, "reply": error or ""}
                )

    def _claim(self, limit: int, stamp: str) -> tuple[list[Row], int]:

        edition, categories = self.scope()
        rule, params = eligibility_sql(self.db, edition, categories, alias="s")
        rows = self.db.execute(
            "SELECT d.id, d.subscriber_id, d.email, d.variant, d.message_id, s.name, s.attributes,"
            f" CASE WHEN {rule} THEN 1 ELSE 0 END"
            " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue_id = ? AND d.status = 'queued' AND (d.due_at IS NULL OR d.due_at <= ?)"
            " ORDER BY d.id LIMIT ?",
            [*params, self.issue_id, self.now_iso, limit],
        ).fetchall()
        claimed: list[Row] = []
        skipped = 0
        for rid, sid, email, variant, mid, name, attributes, eligible in rows:
            row = Row(rid, sid, email, variant, mid or "", name or "", attributes=attributes)
            why = None if eligible and email else (self.ineligible(row) or "subscriber removed")
            if why is not None:
                # The reader left, or changed what they get, after the freeze: the one rule of
                # subscribers.eligibility applies to every claim, first or resumed.
                self.db.execute(
                    "UPDATE deliveries SET status = 'skipped', last_error = ?, updated_at = ? WHERE id = ?",
                    [why, stamp, rid],
                )
                skipped += 1
                continue
            if not mid:
                if self._message_ids is None:
                    self._message_ids = message_ids(self.config)
                mid = self._message_ids.make(self.issue_id, sid)
            row.message_id = mid
            claimed.append(row)
        self.db.conn.executemany(
            "UPDATE deliveries SET status = 'sending', message_id = ?, updated_at = ? WHERE id = ?",
            [(row.message_id, stamp, row.id) for row in claimed],
        )
        return claimed, skipped

    def release(self, unsent: list[Row], waiting: list[Row]) -> None:
        """Rows claimed but never sent go back to queued; rows waiting for a retry are deferred."""
        with transaction(self.db):
            for row in unsent:
                self.db.execute("UPDATE deliveries SET status = 'queued' WHERE id = ?", [row.id])
            for row in waiting:
                self.db.execute(
                    "UPDATE deliveries SET status = 'deferred', attempts = attempts + ? WHERE id = ?",
                    [row.tries, row.id],
                )

    def ineligible(self, row: Row) -> str | None:
        """Why ``row`` must not be sent now (None: send it): the reader is no longer active,
        no longer receives the issue's edition or follows none of its categories
        (:func:`subscribers.eligibility.ineligible_reason`). Checked at every claim and again
        for a retry, which comes back after a backoff."""

        found = None
        if row.subscriber_id is not None:
            found = self.db.execute(
                "SELECT status, editions, categories FROM subscribers WHERE id = ?", [row.subscriber_id]
            ).fetchone()
        if found is None:
            return "subscriber removed"
        status, editions, categories = found
        edition, issue_categories = self.scope()
        return ineligible_reason(
            status, decode_labels(editions), decode_labels(categories), edition, issue_categories
        )

    def scope(self) -> tuple[str, list[str]]:
        """The issue's edition and its categories (read once: a frozen issue keeps them)."""
        if self._scope is None:
            edition = self.db.execute("SELECT edition FROM issues WHERE id = ?", [self.issue_id]).fetchone()[
                0
            ]
            self._scope = edition, issue_categories(self.db, self.issue_id)
        return self._scope


# ---------------------------------------------------------------- reading


def done_count(db: sqlite_utils.Database, issue_id: int) -> int:
    """Rows of the issue that are finished for now (sent, failed, skipped, deferred)."""
    return db.execute(
        "SELECT count(*) FROM deliveries"
        " WHERE issue_id = ? AND status IN ('sent', 'failed', 'skipped', 'deferred')",
        [issue_id],
    ).fetchone()[0]


def delivery_counts(db: sqlite_utils.Database, issue_id: int) -> dict[str, int]:
    """Rows per status for an issue (every status present, zero when none)."""
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    for status, count in db.execute(
        "SELECT status, count(*) FROM deliveries WHERE issue_id = ? GROUP BY status", [issue_id]
    ):
        counts[status] = count
    return counts


def list_deliveries(
    db: sqlite_utils.Database, issue_id: int, *, status: str | None = None
) -> Iterator[dict[str, Any]]:
    """The ledger rows of an issue (optionally of one status), in id order, streamed."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise DigestError(f"unknown delivery status {status!r}; use one of: {', '.join(DELIVERY_STATUSES)}")
    sql = (
        "SELECT d.id, d.subscriber_id, d.email, s.name, d.variant, d.status, d.due_at, d.attempts,"
        " d.smtp_code, d.enhanced_code, d.last_error, d.message_id, d.sent_at, d.updated_at"
        " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.issue_id = ? AND d.id > ?"
    )
    only: list[Any] = []
    if status:
        sql += " AND d.status = ?"
        only.append(status)
    sql += " ORDER BY d.id LIMIT 1000"
    last = 0
    while True:
        page = list(db.query(sql, [issue_id, last, *only]))
        for row in page:
            if row["variant"] != "*":
                with contextlib.suppress(ValueError):
                    row["variant"] = ", ".join(json.loads(row["variant"]))
            yield row
        if len(page) < 1000:
            return
        last = page[-1]["id"]
