"""Apply bounce reports to the list: :func:`process_bounces`.

Each message is read once, classified (:mod:`digest.bounces.classify`), mapped
to its deliveries row and subscriber, and recorded in one transaction: a
``bounces`` row per finding, a consent event per finding about a known
subscriber, the status change the thresholds call for, and the message's key
in ``bounce_messages``. Only then is the message moved to ``processed``: a
crash in between leaves a recorded message that the next run only moves.

Mapping a report to its delivery, most certain first:

1. the VERP token of the address it was sent to (``bounces+TOKEN@…``); an
   altered token is refused, the report counted as ``other`` and nothing else
   is tried (a forged report must not act on anyone);
2. the quoted original's Message-ID, which the send engine records per row;
3. the failed recipient's address: that subscriber's latest sent delivery.

A mailed unsubscribe is mapped by the signed unsubscribe token in its subject
or body, else by its From address.

Thresholds (``[bounces]``): ``hard_limit`` hard bounces (default 1) mark a
subscriber ``bounced``; so do soft bounces on ``soft_limit`` different issues
(default 3) with no delivery to that subscriber between the first and the last
of them that did not bounce. Only reports since the subscriber's last
resubscribe count.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import sqlite_utils

from digest.bounces.classify import KINDS, Finding, classify_message, message_key, parse_message
from digest.bounces.sources import BounceSource, open_source
from digest.config import Config
from digest.mail.verp import VerpSigner, split_bounce_address
from digest.store.database import iso, transaction, utcnow
from subscribers.store import find_subscriber, get_subscriber, mark_bounced, record_event, unsubscribe
from subscribers.tokens import InvalidToken, load_secret, verify_token

_OUR_MESSAGE_ID = re.compile(r"<digest\.([0-9]{1,18})\.([0-9]{1,18})\.[0-9a-f]+@[^>]+>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EVENT = {  # finding kind → (consent event kind, event source)
    "hard": ("hard_bounce", "bounce"),
    "soft": ("soft_bounce", "bounce"),
    "complaint": ("complaint", "complaint"),
    "unsubscribe": ("mailed_unsubscribe", "email"),
}


@dataclass
class BounceReport:
    """What one pass over a source did."""

    source: str
    messages: int = 0  # messages read
    already: int = 0  # read before (only moved this time)
    kinds: Counter[str] = field(default_factory=Counter)  # findings per kind
    reasons: Counter[str] = field(default_factory=Counter)  # why an 'other' was left alone
    unmatched: int = 0  # findings about nobody on the list
    bounced: list[str] = field(default_factory=list)  # addresses that turned bounced
    unsubscribed: list[str] = field(default_factory=list)  # addresses unsubscribed

    def summary(self) -> str:
        """One line for the terminal and the run summary."""
        new = self.messages - self.already
        text = f"{self.source}: {new} new report{'s' if new != 1 else ''}"
        if self.already:
            text += f" ({self.already} seen before)"
        if self.kinds:
            text += ": " + ", ".join(f"{self.kinds[k]} {k}" for k in KINDS if self.kinds[k])
        if self.reasons:
            text += " (" + ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items())) + ")"
        if self.unmatched:
            text += f"; {self.unmatched} about nobody on the list"
        if self.bounced:
            text += f"; marked bounced: {len(self.bounced)}"
        if self.unsubscribed:
            text += f"; unsubscribed: {len(self.unsubscribed)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """For --json."""
        return {
            "source": self.source,
            "messages": self.messages,
            "already_processed": self.already,
            "kinds": {k: self.kinds[k] for k in KINDS},
            "other_reasons": dict(self.reasons),
            "unmatched": self.unmatched,
            "bounced": self.bounced,
            "unsubscribed": self.unsubscribed,
        }


def process_bounces(
    db: sqlite_utils.Database, config: Config, source: str, *, now: datetime | None = None
) -> BounceReport:
    """Read every message of ``source`` once and apply it to the list; see the module docstring."""
    mailbox = open_source(source, base_dir=config.base_dir)
    try:
        return _process(db, config, mailbox, now=now)
    finally:
        mailbox.close()


def _process(
    db: sqlite_utils.Database, config: Config, mailbox: BounceSource, *, now: datetime | None
) -> BounceReport:

    secret = load_secret(config)
    context = _Context(
        db=db,
        config=config,
        secret=secret,
        signer=VerpSigner(secret),
        bounce_local=_bounce_local(config),
        unsubscribe_address=_unsubscribe_address(config),
        at=now or utcnow(),
    )
    report = BounceReport(source=mailbox.name)
    for handle, data in mailbox.messages():
        report.messages += 1
        msg = parse_message(data)
        key = message_key(msg, data)
        with transaction(db):
            seen = db.execute("SELECT 1 FROM bounce_messages WHERE message_key = ?", [key]).fetchone()
            if seen is None:
                findings = classify_message(
                    msg, bounce_local=context.bounce_local, unsubscribe_address=context.unsubscribe_address
                )
                for finding in findings:
                    _apply(context, finding, key, report)
                outcome = ",".join(sorted({f.kind for f in findings})) or "other"
                db.execute(
                    "INSERT INTO bounce_messages (message_key, source, outcome, processed_at)"
                    " VALUES (?, ?, ?, ?)",
                    [key, mailbox.name, outcome, iso(context.at)],
                )
        if seen is not None:
            report.already += 1
        mailbox.done(handle)
    return report


@dataclass
class _Context:
    db: sqlite_utils.Database
    config: Config
    secret: bytes
    signer: VerpSigner
    bounce_local: str | None
    unsubscribe_address: str | None
    at: datetime


def _bounce_local(config: Config) -> str | None:
    parts = split_bounce_address(config)
    return parts[0] if parts else None


def _unsubscribe_address(config: Config) -> str | None:
    raw = config.delivery.unsubscribe_mailto.strip()
    if not raw:
        return None
    if raw.lower().startswith("mailto:"):
        raw = raw[len("mailto:") :].split("?", 1)[0]

    return unquote(raw).strip().lower() or None


@dataclass
class _Target:
    subscriber_id: int | None = None
    delivery_id: int | None = None
    issue_id: int | None = None
    problem: str | None = None  # why the finding is ignored (an altered token)


def _apply(ctx: _Context, finding: Finding, key: str, report: BounceReport) -> None:
    target = _resolve(ctx, finding)
    kind, reason = finding.kind, finding.reason
    if target.problem:
        kind, reason = "other", target.problem
    report.kinds[kind] += 1
    if kind == "other":
        report.reasons[reason.split(":", 1)[0]] += 1
    elif target.subscriber_id is None:
        report.unmatched += 1
        reason = f"{reason} (no subscriber matches)"
    db = ctx.db
    db.execute(
        "INSERT INTO bounces (subscriber_id, delivery_id, issue_id, kind, status_code, reason,"
        " source_message_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            target.subscriber_id,
            target.delivery_id,
            target.issue_id,
            kind,
            finding.status_code,
            _scrub(reason, finding.recipient)[:300],
            key,
            iso(ctx.at),
        ],
    )
    if kind == "other" or target.subscriber_id is None:
        return

    detail: dict[str, Any] = {"issue": target.issue_id, "delivery": target.delivery_id, "report": key}
    if finding.status_code:
        detail["status"] = finding.status_code
    event_kind, source = _EVENT[kind]
    record_event(db, target.subscriber_id, event_kind, source, detail, now=ctx.at)
    if kind in ("hard", "soft") and target.delivery_id is not None:
        db.execute(
            "UPDATE deliveries SET last_error = ?, enhanced_code = coalesce(?, enhanced_code)"
            " WHERE id = ? AND status = 'sent'",
            [
                f"bounced later ({kind}): {_scrub(finding.reason, finding.recipient)[:200]}",
                finding.status_code,
                target.delivery_id,
            ],
        )
    subscriber = get_subscriber(db, target.subscriber_id)
    if kind in ("complaint", "unsubscribe"):
        if unsubscribe(db, target.subscriber_id, source=source, detail=detail, now=ctx.at):
            report.unsubscribed.append(subscriber["email"])
        return
    if subscriber["status"] not in ("active", "pending"):
        return
    if _past_threshold(ctx, target.subscriber_id, kind):
        detail["threshold"] = f"{kind} bounces"
        mark_bounced(db, target.subscriber_id, detail=detail, now=ctx.at)
        report.bounced.append(subscriber["email"])


def _resolve(ctx: _Context, finding: Finding) -> _Target:
    db = ctx.db
    if finding.kind == "unsubscribe":
        return _resolve_unsubscribe(ctx, finding)
    if finding.verp_token:
        delivery_id = ctx.signer.verify(finding.verp_token)
        if delivery_id is None:
            return _Target(problem="altered VERP token")
        row = db.execute(
            "SELECT id, subscriber_id, issue_id FROM deliveries WHERE id = ?", [delivery_id]
        ).fetchone()
        if row is None:
            return _Target(problem="VERP token names no delivery")
        return _Target(row[1], row[0], row[2])
    if finding.original_message_id:
        # The engine's Message-IDs name issue and subscriber (<digest.ISSUE.SUBSCRIBER.tag@…>):
        # found through the ledger's (issue, subscriber) index, then compared whole.
        match = _OUR_MESSAGE_ID.match(finding.original_message_id)
        if match is not None:
            row = db.execute(
                "SELECT id, subscriber_id, issue_id FROM deliveries"
                " WHERE issue_id = ? AND subscriber_id = ? AND message_id = ?",
                [int(match.group(1)), int(match.group(2)), finding.original_message_id],
            ).fetchone()
            if row is not None:
                return _Target(row[1], row[0], row[2])
    if finding.recipient:
        subscriber = find_subscriber(db, finding.recipient)
        if subscriber is None:
            return _Target()
        row = db.execute(
            "SELECT id, issue_id FROM deliveries WHERE subscriber_id = ? AND status = 'sent'"
            " ORDER BY issue_id DESC LIMIT 1",
            [subscriber["id"]],
        ).fetchone()
        if row is None:
            return _Target(subscriber["id"])
        return _Target(subscriber["id"], row[0], row[1])
    return _Target()


def _resolve_unsubscribe(ctx: _Context, finding: Finding) -> _Target:

    if finding.unsubscribe_token:
        try:
            subscriber_id = verify_token(ctx.secret, finding.unsubscribe_token, "unsubscribe")
        except InvalidToken:
            subscriber_id = None
        if subscriber_id is not None:
            row = ctx.db.execute("SELECT 1 FROM subscribers WHERE id = ?", [subscriber_id]).fetchone()
            return _Target(subscriber_id if row else None)
    if finding.sender:
        subscriber = find_subscriber(ctx.db, finding.sender)
        if subscriber is not None:
            return _Target(subscriber["id"])
    return _Target()


def _since_resubscribe(db: sqlite_utils.Database, subscriber_id: int) -> str:
    row = db.execute(
        "SELECT max(at) FROM events WHERE subscriber_id = ? AND kind = 'resubscribe'", [subscriber_id]
    ).fetchone()
    return row[0] or ""


def _past_threshold(ctx: _Context, subscriber_id: int, kind: str) -> bool:
    db, limits = ctx.db, ctx.config.bounces
    since = _since_resubscribe(db, subscriber_id)
    if kind == "hard":
        count = db.execute(
            "SELECT count(*) FROM bounces WHERE subscriber_id = ? AND kind = 'hard' AND received_at >= ?",
            [subscriber_id, since],
        ).fetchone()[0]
        return count >= limits.hard_limit
    issues = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT issue_id FROM bounces WHERE subscriber_id = ? AND kind IN ('soft', 'hard')"
            " AND issue_id IS NOT NULL AND received_at >= ? ORDER BY issue_id DESC",
            [subscriber_id, since],
        )
    ]
    if len(issues) < limits.soft_limit:
        return False
    newest = issues[: limits.soft_limit]
    low, high = min(newest), max(newest)
    marks = ", ".join("?" * len(issues))
    delivered_between = db.execute(
        f"SELECT count(*) FROM deliveries WHERE subscriber_id = ? AND status = 'sent'"
        f" AND issue_id > ? AND issue_id < ? AND issue_id NOT IN ({marks})",
        [subscriber_id, low, high, *issues],
    ).fetchone()[0]
    return delivered_between == 0


def _scrub(text: str, address: str | None) -> str:
    """The text without the address it names (the bounces table keeps no addresses)."""
    text = " ".join(_CONTROL.sub(" ", text).split())  # no escape sequences for a terminal
    if address:
        text = text.replace(address, "[recipient]")
        text = text.replace(address.lower(), "[recipient]")
    return text


def list_bounces(
    db: sqlite_utils.Database, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Processed reports, newest first, with the subscriber's address and the issue when known."""
    query = (
        "SELECT b.id, b.received_at, b.kind, b.status_code, b.reason, s.email,"
        " s.status AS subscriber_status, i.edition, i.number, b.delivery_id,"
        " b.source_message_id AS report"
        " FROM bounces b LEFT JOIN subscribers s ON s.id = b.subscriber_id"
        " LEFT JOIN issues i ON i.id = b.issue_id"
    )
    params: list[Any] = []
    if since is not None:
        query += " WHERE b.received_at >= ?"
        params.append(iso(since))
    query += " ORDER BY b.received_at DESC, b.id DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    return list(db.query(query, params))
