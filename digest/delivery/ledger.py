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
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.compose.issues import (
    issue_categories,
    issue_edition,
    issue_status,
    mark_issue_sending,
    mark_issue_sent,
    reopen_sent_issue,
)
from digest.config import Config
from digest.delivery.journal import read_journals
from digest.delivery.lease import (
    Lease,
    freeze_lock,
    held_by_others,
    name_session,
    reclaiming,
    renew,
    requeue_expired,
)
from digest.delivery.recipients import recipients
from digest.delivery.rows import Result, Row
from digest.errors import DigestError
from digest.mail.message_ids import MessageIds, message_ids
from digest.render.variants import stored_variant
from digest.store.database import DELIVERY_STATUSES, PENDING_DELIVERY, iso, transaction, utcnow
from digest.store.dialect import is_postgresql
from subscribers.eligibility import eligibility_sql, ineligible_reason
from subscribers.model import decode_labels
from subscribers.store import ACTIVE_IDS_SQL, mark_bounced, reader_scope

__all__ = [
    "Ledger",
    "delivery_counts",
    "delivery_target",
    "done_count",
    "due_count",
    "due_or_done",
    "finish",
    "forget_reader",
    "freeze",
    "guard_counts",
    "list_deliveries",
    "note_later_bounce",
    "pending_due_counts",
    "queued_variants",
    "replay_journals",
    "requeue_failed",
    "requeue_in_flight",
    "requeue_readers",
    "requeue_refused",
    "sent_between",
    "unsent_rows",
    "variant_counts",
]


# ---------------------------------------------------------------- the snapshot


def freeze(db: sqlite_utils.Database, config: Config, issue: dict[str, Any], now: datetime) -> None:
    """Draft → sending, variants stored, one ledger row per eligible recipient: one transaction."""

    issue_id = int(issue["id"])
    stamp = iso(utcnow())
    with transaction(db):
        freeze_lock(db, issue_id)  # PostgreSQL: several senders may start together
        if issue_status(db, issue_id) != "draft":
            return
        mark_issue_sending(db, issue_id, stamp)
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


# ---------------------------------------------------------------- between runs (under the send lock)


def replay_journals(db: sqlite_utils.Database, journals: Path, issue_id: int) -> int:
    """Record the 250s a killed run journaled but never committed; remove the journals.

    Returns how many rows became ``sent``. Only rows still pending change. ``journals``:
    :func:`~digest.delivery.journal.journal_base`. On PostgreSQL only this host's journals of
    senders that are gone are read, and the rows in flight whose lease ended go back to the
    queue with them (one sender at a time: :func:`~digest.delivery.lease.reclaiming`).
    """
    changed = 0
    with reclaiming(db, issue_id), read_journals(journals, issue_id) as entries:
        stamp = iso(utcnow())
        with transaction(db) if entries or is_postgresql(db) else contextlib.nullcontext():
            for entry in entries:
                changed += db.execute(
                    "UPDATE deliveries SET status = 'sent', last_error = NULL, smtp_code = ?,"
                    " enhanced_code = ?, attempts = attempts + 1, sent_at = ?, updated_at = ?"
                    " WHERE id = ? AND issue_id = ? AND status IN ('queued', 'sending', 'deferred')",
                    [entry.code, entry.enhanced, entry.at, stamp, entry.row_id, issue_id],
                ).rowcount
            if is_postgresql(db):
                requeue_expired(db, issue_id)
    return changed


def requeue_in_flight(db: sqlite_utils.Database, issue_id: int) -> None:
    """Rows left in flight by a crashed run go out again (same Message-ID); deferred rows get
    this run's retries. Safe only under the issue's send lock. On PostgreSQL, where other
    senders may hold rows in flight, only the deferred ones: :func:`replay_journals` requeues
    the rows whose lease ended."""
    states = "'deferred'" if is_postgresql(db) else "'sending', 'deferred'"
    with transaction(db):
        db.execute(
            f"UPDATE deliveries SET status = 'queued' WHERE issue_id = ? AND status IN ({states})", [issue_id]
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
            f" AND subscriber_id IN ({ACTIVE_IDS_SQL})",
            [iso(utcnow()), issue_id],
        ).rowcount
        if count:
            reopen_sent_issue(db, issue_id)
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
            reopen_sent_issue(db, issue_id)
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
            mark_issue_sent(db, issue_id, iso(utcnow()))
    return counts, issue_status(db, issue_id)


# ---------------------------------------------------------------- during a run


class Ledger:
    """One connection worker's access to the ledger (its own database connection).

    On PostgreSQL (several senders) its claims lease the rows to ``holder`` (the send's
    :func:`~digest.delivery.lease.send_tag` and the worker), renewed as it commits; it
    reclaims the rows of senders whose lease ended, replaying this host's ``journals``."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        config: Config,
        issue_id: int,
        now_iso: str,
        *,
        holder: str = "",
        journals: Path | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.issue_id = issue_id
        self.now_iso = now_iso
        self._message_ids: MessageIds | None = None  # keyed on the first claim
        self._scope: tuple[str, list[str]] | None = None
        self._eligible: tuple[str, list[str]] | None = None  # the claims' SQL rule, made once
        self.lease = Lease(holder, config.delivery.lease_seconds) if is_postgresql(db) else None
        if self.lease is not None and holder:
            name_session(db, holder)
        self.journals = journals

    def commit(self, results: list[Result], claim: int = 0) -> tuple[list[Row], int]:
        """Record ``results`` and claim up to ``claim`` rows in one transaction.

        Returns (claimed rows, rows skipped while claiming: their readers left after the freeze).
        """
        claimed: list[Row] = []
        skipped = 0
        stamp = iso(utcnow())
        renewing = self.lease is not None and self.lease.due()
        with transaction(self.db):
            if renewing:
                renew(self.db, self.issue_id, self.lease)
            sent = [r for r in results if r.status == "sent"]
            if sent:
                self._record_sent(sent, stamp)
            for r in results:
                if r.status != "sent":
                    self._record(r, stamp)
            if claim:
                claimed, skipped = self._claim(claim, stamp)
        if renewing:
            self.others_sending()  # and take back the rows of a sender whose lease ended
        return claimed, skipped

    def keep_lease(self) -> None:
        """Renew this worker's leases if a third of the lease has passed (PostgreSQL; nothing on
        SQLite): for a worker that waits without committing (a reconnect back-off, parked)."""
        if self.lease is not None and self.lease.due():
            with transaction(self.db):
                renew(self.db, self.issue_id, self.lease)

    def pause(self, seconds: float) -> float:
        """How long a worker waiting ``seconds`` for a retry may wait before it commits again:
        on PostgreSQL at most a third of its lease, so that the lease is renewed meanwhile."""
        seconds = max(0.0, seconds)
        return seconds if self.lease is None else min(seconds, self.lease.seconds / 3)

    def others_sending(self) -> bool:
        """PostgreSQL: whether other sends hold rows of the issue in flight (their leases that
        ended are reclaimed first: :func:`replay_journals`). Always False on SQLite."""
        if self.lease is None:
            return False
        send = self.lease.holder.rpartition("/")[0]
        held, expired = held_by_others(self.db, self.issue_id, send)
        if expired and self.journals is not None:
            replay_journals(self.db, self.journals, self.issue_id)
        return held > 0

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
        if self._eligible is None:  # a frozen issue keeps its scope: one rule for the whole run
            edition, categories = self.scope()
            self._eligible = eligibility_sql(self.db, edition, categories, alias="s")
        rule, params = self._eligible
        rows = self.db.execute(
            "SELECT d.id, d.subscriber_id, d.email, d.variant, d.message_id, s.name, s.attributes,"
            f" CASE WHEN {rule} THEN 1 ELSE 0 END"
            " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue_id = ? AND d.status = 'queued' AND (d.due_at IS NULL OR d.due_at <= ?)"
            # PostgreSQL: several senders claim at once; each skips the rows another is taking.
            " ORDER BY d.id LIMIT ?" + (" FOR UPDATE OF d SKIP LOCKED" if self.lease is not None else ""),
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
        # PostgreSQL: the rows are this worker's until its lease ends (SQLite: one sender).
        lease = [] if self.lease is None else [self.lease.holder, self.lease.until()]
        self.db.conn.executemany(
            "UPDATE deliveries SET status = 'sending', message_id = ?, updated_at = ?"
            + (", leased_by = ?, lease_until = ?" if lease else "")
            + " WHERE id = ?",
            [(row.message_id, stamp, *lease, row.id) for row in claimed],
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

        found = None if row.subscriber_id is None else reader_scope(self.db, row.subscriber_id)
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
            self._scope = issue_edition(self.db, self.issue_id), issue_categories(self.db, self.issue_id)
        return self._scope


# ---------------------------------------------------------------- reading


def done_count(db: sqlite_utils.Database, issue_id: int) -> int:
    """Rows of the issue that are finished for now (sent, failed, skipped, deferred)."""
    return db.execute(
        "SELECT count(*) FROM deliveries"
        " WHERE issue_id = ? AND status IN ('sent', 'failed', 'skipped', 'deferred')",
        [issue_id],
    ).fetchone()[0]


def guard_counts(db: sqlite_utils.Database, issue_id: int) -> tuple[int, int, int]:
    """For the send guards: the issue's rows sent, failed, and failed for a bad mailbox (5.1.x
    but the sender's 5.1.7/5.1.8: the hard bounces the relay gave during the send)."""
    sent, failed, hard = db.execute(
        "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),"
        " count(*) FILTER (WHERE status = 'failed' AND enhanced_code LIKE '5.1.%'"
        " AND enhanced_code NOT IN ('5.1.7', '5.1.8'))"
        " FROM deliveries WHERE issue_id = ? AND status IN ('sent', 'failed')",
        [issue_id],
    ).fetchone()
    return sent, failed, hard


def delivery_counts(db: sqlite_utils.Database, issue_id: int) -> dict[str, int]:
    """Rows per status for an issue (every status present, zero when none)."""
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    for status, count in db.execute(
        "SELECT status, count(*) FROM deliveries WHERE issue_id = ? GROUP BY status", [issue_id]
    ):
        counts[status] = count
    return counts


def ledger_totals(db: sqlite_utils.Database) -> dict[tuple[int, str], int]:
    """Rows per (issue, status) across the whole ledger: what a copy of the store must keep."""
    rows = db.execute("SELECT issue_id, status, count(*) FROM deliveries GROUP BY issue_id, status")
    return {(int(issue_id), str(status)): int(count) for issue_id, status, count in rows}


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


# ---------------------------------------------------------------- what other modules ask of the ledger


def due_count(db: sqlite_utils.Database, issue_id: int, now_iso: str) -> int:
    """Queued rows of the issue that are due by ``now_iso``."""
    return db.execute(
        "SELECT count(*) FROM deliveries"
        " WHERE issue_id = ? AND status = 'queued' AND (due_at IS NULL OR due_at <= ?)",
        [issue_id, now_iso],
    ).fetchone()[0]


def variant_counts(db: sqlite_utils.Database, issue_id: int) -> dict[str, int]:
    """Rows of the issue per variant, in variant order."""
    return dict(
        db.execute(
            "SELECT variant, count(*) FROM deliveries WHERE issue_id = ? GROUP BY variant ORDER BY variant",
            [issue_id],
        ).fetchall()
    )


def queued_variants(db: sqlite_utils.Database, issue_id: int) -> list[str]:
    """The variants that queued rows of the issue need."""
    rows = db.execute(
        "SELECT DISTINCT variant FROM deliveries WHERE issue_id = ? AND status = 'queued'", [issue_id]
    )
    return [variant for (variant,) in rows.fetchall()]


def unsent_rows(db: sqlite_utils.Database, issue_id: int) -> Iterator[dict[str, Any]]:
    """email, variant, status and due_at of the issue's rows still to send (queued, sending, deferred)."""
    return db.query(
        "SELECT email, variant, status, due_at FROM deliveries WHERE issue_id = ?"
        " AND status IN ('queued', 'sending', 'deferred') ORDER BY id",
        [issue_id],
    )


def pending_due_counts(db: sqlite_utils.Database, at: str) -> dict[int, int]:
    """Issue id → how many of its rows are pending (``PENDING_DELIVERY``) and due by ``at``."""
    states = ", ".join("?" for _ in PENDING_DELIVERY)
    return dict(
        db.execute(
            f"SELECT issue_id, COUNT(*) FROM deliveries WHERE status IN ({states})"
            " AND (due_at IS NULL OR due_at <= ?) GROUP BY issue_id",
            [*PENDING_DELIVERY, at],
        ).fetchall()
    )


def due_or_done(db: sqlite_utils.Database, issue_id: int, at: str) -> bool:
    """Whether the issue has a pending row due by ``at``, or no pending row at all (to finish off)."""
    states = ", ".join("?" for _ in PENDING_DELIVERY)
    pending = f"SELECT 1 FROM deliveries WHERE issue_id = ? AND status IN ({states})"
    return bool(
        db.execute(
            f"SELECT EXISTS ({pending} AND (due_at IS NULL OR due_at <= ?)) OR NOT EXISTS ({pending})",
            [issue_id, *PENDING_DELIVERY, at, issue_id, *PENDING_DELIVERY],
        ).fetchone()[0]
    )


def delivery_target(
    db: sqlite_utils.Database, delivery_id: int | None = None, *, sent_as: tuple[int, int, str] | None = None
) -> tuple[int, int | None, int] | None:
    """(id, subscriber_id, issue_id) of the row ``delivery_id``, or of the row of the issue and
    reader ``sent_as`` (issue_id, subscriber_id, Message-ID); None when there is none."""
    where, params = ("id = ?", [delivery_id]) if sent_as is None else (_SENT_AS, list(sent_as))
    return db.execute(f"SELECT id, subscriber_id, issue_id FROM deliveries WHERE {where}", params).fetchone()


_SENT_AS = "issue_id = ? AND subscriber_id = ? AND message_id = ?"


def note_later_bounce(db: sqlite_utils.Database, delivery_id: int, error: str, enhanced: str | None) -> None:
    """A report says a ``sent`` row bounced later: keep it sent, with ``error`` and the code."""
    db.execute(
        "UPDATE deliveries SET last_error = ?, enhanced_code = coalesce(?, enhanced_code)"
        " WHERE id = ? AND status = 'sent'",
        [error, enhanced, delivery_id],
    )


def sent_between(db: sqlite_utils.Database, subscriber_id: int, low: int, high: int, skip: list[int]) -> int:
    """How many issues with ids between ``low`` and ``high`` (exclusive), other than ``skip``,
    reached the reader (rows ``sent``)."""
    marks = ", ".join("?" * len(skip))
    return db.execute(
        "SELECT count(*) FROM deliveries WHERE subscriber_id = ? AND status = 'sent'"
        f" AND issue_id > ? AND issue_id < ? AND issue_id NOT IN ({marks})",
        [subscriber_id, low, high, *skip],
    ).fetchone()[0]


def forget_reader(db: sqlite_utils.Database, subscriber_id: int, email: str) -> None:
    """A removal: blank the reader's address snapshot and scrub it from the last errors
    (pass as ``forget_deliveries`` to :func:`subscribers.store.remove_subscriber`)."""
    db.execute(
        "UPDATE deliveries SET email = NULL, last_error = replace(last_error, ?, '[removed]')"
        " WHERE subscriber_id = ? OR email = ? COLLATE NOCASE",
        [email, subscriber_id, email],
    )
