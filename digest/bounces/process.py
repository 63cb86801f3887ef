"""Apply bounce reports to the list: :func:`process_bounces`.

Each message is read once, classified (:mod:`digest.bounces.classify`), mapped
to its deliveries row and subscriber, and recorded in one transaction: a
``bounces`` row per finding, a consent event per finding about a known
subscriber, the status change the thresholds call for, and the message's key
in ``bounce_messages``. Only then is the message moved to ``processed``: a
crash in between leaves a recorded message that the next run only moves.
A message over the size or nesting limits (:mod:`digest.bounces.limits`) is
not classified: it is recorded as ``rejected`` (a ``bounces`` row of kind
``other``, reason ``rejected: nested 1000 deep (limit 20)``) and moved to the
``rejected`` folder; the rest of the mailbox is read as usual.

Who a report is about is decided by :mod:`digest.bounces.resolve`: only our VERP
token or a quoted Message-ID we signed (or recorded, for transactional mail) names
a reader; a report naming several readers acts on none and goes to
``held_reports`` (``digest bounces list --held``); one whose address matches a
reader without such proof acts on nobody. A mailed unsubscribe with our signed
token unsubscribes at once; without one, an active reader's address is mailed a
confirmation link (:mod:`digest.bounces.unsubscribe_requests`), sent after the pass.

Thresholds (``[bounces]``): ``hard_limit`` hard bounces (default 1) mark a
subscriber ``bounced``; so do soft bounces on ``soft_limit`` different issues
(default 3) with no delivery to that subscriber between the first and the last
of them that did not bounce. Only reports since the subscriber's last
resubscribe count.
"""

from __future__ import annotations

import email.message
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import sqlite_utils

from digest.bounces.classify import (
    KINDS,
    Finding,
    classify_message,
    headers_of,
    message_key,
    parse_message,
)
from digest.bounces.limits import RefusedMessage
from digest.bounces.resolve import Resolver, Target
from digest.bounces.sources import BounceSource, open_source
from digest.bounces.unsubscribe_requests import request_confirmation
from digest.config import Config
from digest.delivery.ledger import note_later_bounce, sent_between
from digest.errors import DigestError
from digest.mail.outbox import send_outbox
from digest.mail.verp import split_bounce_address
from digest.store.database import iso, transaction, utcnow
from subscribers.events import last_event_at, record_event
from subscribers.store import get_subscriber, mark_bounced, unsubscribe
from subscribers.tokens import load_secret

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
    held: int = 0  # reports that named several readers: acted on none, kept for review
    confirmations: list[int] = field(default_factory=list)  # outbox rows: "confirm your unsubscribe"
    mail_error: str = ""  # why those could not be sent now (the outbox retries them)
    rejected: list[str] = field(default_factory=list)  # why each refused message was (moved to rejected)

    def summary(self) -> str:
        """One line for the terminal and the run summary."""
        new = self.messages - self.already - len(self.rejected)
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
        if self.held:
            text += f"; {self.held} held for review (digest bounces list --held)"
        if self.confirmations:
            n = len(self.confirmations)
            text += f"; {n} confirmation link{'s' if n != 1 else ''} mailed"
            if self.mail_error:
                text += f" (not sent yet: {self.mail_error}; digest run retries)"
        if self.rejected:
            reasons = list(dict.fromkeys(self.rejected))
            shown = ", ".join(reasons[:3]) + (", …" if len(reasons) > 3 else "")
            text += f"; {len(self.rejected)} rejected: {shown}"
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
            "held": self.held,
            "confirmations_mailed": len(self.confirmations),
            "rejected": self.rejected,
        }


def process_bounces(
    db: sqlite_utils.Database, config: Config, source: str, *, now: datetime | None = None
) -> BounceReport:
    """Read every message of ``source`` once and apply it to the list; see the module docstring."""
    mailbox = open_source(source, base_dir=config.base_dir, deadline=config.bounces.deadline)
    try:
        report = _process(db, config, mailbox, now=now)
    finally:
        mailbox.close()
    if report.confirmations:
        _send_confirmations(db, config, report, now)
    return report


@dataclass(frozen=True)
class RelayBounce:
    """A bounce the operator's own relay logged for one of our delivery rows (its Message-ID
    and recipient matched): recorded like a DSN by :func:`record_relay_bounces`."""

    key: str  # names the log entry, so reading the log again records nothing twice
    subscriber_id: int
    delivery_id: int
    issue_id: int
    status_code: str  # the DSN status (5.x.x: hard; else soft)
    reason: str
    recipient: str


def record_relay_bounces(
    db: sqlite_utils.Database,
    config: Config,
    bounces: list[RelayBounce],
    source: str,
    *,
    now: datetime | None = None,
) -> BounceReport:
    """Record relay-logged bounces like DSNs, in one transaction: a ``bounces`` row, the consent
    event and the same thresholds (``hard_limit``, ``soft_limit``) as :func:`process_bounces`.
    One whose ``key`` was recorded before is counted in ``already`` and left alone."""
    secret = load_secret(config)
    ctx = _Context(db, config, secret, Resolver(db, secret), None, None, now or utcnow())
    report = BounceReport(source=source)
    with transaction(db):
        for bounce in bounces:
            report.messages += 1
            if db.execute("SELECT 1 FROM bounce_messages WHERE message_key = ?", [bounce.key]).fetchone():
                report.already += 1
                continue
            kind = "hard" if bounce.status_code.startswith("5") else "soft"
            finding = Finding(kind, bounce.reason, bounce.status_code or None, recipient=bounce.recipient)
            target = Target(bounce.subscriber_id, bounce.delivery_id, bounce.issue_id)
            outcome = _apply(ctx, finding, target, bounce.key, report)
            db.execute(
                "INSERT INTO bounce_messages (message_key, source, outcome, processed_at)"
                " VALUES (?, ?, ?, ?)",
                [bounce.key, source, outcome, iso(ctx.at)],
            )
    return report


def _send_confirmations(
    db: sqlite_utils.Database, config: Config, report: BounceReport, now: datetime | None
) -> None:
    """Send the queued "confirm your unsubscribe" mails now; what fails waits for ``digest run``."""

    try:
        sent = send_outbox(db, config, ids=report.confirmations, now=now)
    except DigestError as exc:
        report.mail_error = str(exc)
        return
    if sent.errors:
        report.mail_error = sent.errors[0]


def _process(
    db: sqlite_utils.Database, config: Config, mailbox: BounceSource, *, now: datetime | None
) -> BounceReport:

    secret = load_secret(config)
    context = _Context(
        db=db,
        config=config,
        secret=secret,
        resolver=Resolver(db, secret),
        bounce_local=_bounce_local(config),
        unsubscribe_address=_unsubscribe_address(config),
        at=now or utcnow(),
    )
    report = BounceReport(source=mailbox.name)
    for handle, data in mailbox.messages():
        report.messages += 1
        msg, key, refused = _read(data)
        with transaction(db):
            seen = db.execute("SELECT outcome FROM bounce_messages WHERE message_key = ?", [key]).fetchone()
            if seen is None:
                outcome = _record(context, mailbox.name, key, msg, refused, report)
            else:
                report.already += 1
                outcome = seen[0]
        if outcome == "rejected":
            mailbox.reject(handle)
        else:
            mailbox.done(handle)
    return report


def _read(data: bytes) -> tuple[email.message.Message | None, str, str | None]:
    """The parsed message (None when refused), the key it is remembered by, why it was refused."""
    try:
        msg = parse_message(data)
    except RefusedMessage as exc:
        return None, message_key(headers_of(data), data), exc.reason
    return msg, message_key(msg, data), None


def _record(
    ctx: _Context,
    source: str,
    key: str,
    msg: email.message.Message | None,
    refused: str | None,
    report: BounceReport,
) -> str:
    """Classify and apply a new message, or record why it was refused; its outcome."""
    findings: list[Finding] = []
    if msg is not None and refused is None:
        try:
            findings = classify_message(
                msg, bounce_local=ctx.bounce_local, unsubscribe_address=ctx.unsubscribe_address
            )
        except Exception as exc:  # noqa: BLE001 - one odd message must not stop the mailbox
            refused = f"could not be classified ({type(exc).__name__})"
    if refused is not None:
        _reject(ctx, refused, key, report)
        outcome = "rejected"
    else:
        outcome = _apply_report(ctx, findings, key, report)
    ctx.db.execute(
        "INSERT INTO bounce_messages (message_key, source, outcome, processed_at) VALUES (?, ?, ?, ?)",
        [key, source, outcome, iso(ctx.at)],
    )
    return outcome


def _reject(ctx: _Context, reason: str, key: str, report: BounceReport) -> None:
    """A message refused unread: one ``other`` row saying why (what `digest bounces list` shows)."""
    report.rejected.append(reason)
    ctx.db.execute(
        "INSERT INTO bounces (kind, reason, source_message_id, received_at) VALUES ('other', ?, ?, ?)",
        [f"rejected: {reason}"[:300], key, iso(ctx.at)],
    )


@dataclass
class _Context:
    db: sqlite_utils.Database
    config: Config
    secret: bytes
    resolver: Resolver
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


def _apply_report(ctx: _Context, findings: list[Finding], key: str, report: BounceReport) -> str:
    """Apply one message's findings; returns its outcome for ``bounce_messages``."""
    if not findings:
        return "other"
    if findings[0].kind == "unsubscribe":
        return _apply_unsubscribe(ctx, findings[0], key, report)
    resolution = ctx.resolver.report(findings)
    if resolution.held:
        finding = resolution.finding
        ctx.db.execute(
            "INSERT INTO held_reports (message_key, source, kind, readers, reason, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [key, report.source, finding.kind, resolution.readers, resolution.held, iso(ctx.at)],
        )
        report.held += 1
        return "held"
    return _apply(ctx, resolution.finding, resolution.target, key, report)


def _apply_unsubscribe(ctx: _Context, finding: Finding, key: str, report: BounceReport) -> str:
    subscriber_id = ctx.resolver.unsubscribe_token(finding)
    if subscriber_id is not None:
        return _apply(ctx, finding, Target(subscriber_id), key, report)

    reason, subscriber_id, queued = request_confirmation(
        ctx.db, ctx.config, ctx.secret, finding.sender, now=ctx.at
    )
    if subscriber_id is None:  # about nobody on the list, as before
        return _apply(ctx, finding, Target(), key, report)
    if queued is not None:
        report.confirmations.append(queued)
    return _apply(ctx, replace(finding, kind="other", reason=reason), Target(subscriber_id), key, report)


def _apply(ctx: _Context, finding: Finding, target: Target, key: str, report: BounceReport) -> str:
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
    if kind != "other" and target.subscriber_id is not None:
        _act(ctx, finding, kind, target, key, report)
    return kind


def _act(ctx: _Context, finding: Finding, kind: str, target: Target, key: str, report: BounceReport) -> None:
    """The consent event and status change for a finding about a known subscriber."""

    db = ctx.db
    assert target.subscriber_id is not None
    detail: dict[str, Any] = {"issue": target.issue_id, "delivery": target.delivery_id, "report": key}
    if finding.status_code:
        detail["status"] = finding.status_code
    event_kind, source = _EVENT[kind]
    record_event(db, target.subscriber_id, event_kind, source, detail, now=ctx.at)
    if kind in ("hard", "soft") and target.delivery_id is not None:
        error = f"bounced later ({kind}): {_scrub(finding.reason, finding.recipient)[:200]}"
        note_later_bounce(db, target.delivery_id, error, finding.status_code)
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


def _past_threshold(ctx: _Context, subscriber_id: int, kind: str) -> bool:
    db, limits = ctx.db, ctx.config.bounces
    since = last_event_at(db, subscriber_id, "resubscribe")
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
    return sent_between(db, subscriber_id, low, high, issues) == 0


def _scrub(text: str, address: str | None) -> str:
    """The text without the address it names (the bounces table keeps no addresses)."""
    text = " ".join(_CONTROL.sub(" ", text).split())  # no escape sequences for a terminal
    if address:
        text = text.replace(address, "[recipient]")
        text = text.replace(address.lower(), "[recipient]")
    return text


def issue_reports(db: sqlite_utils.Database, issue_id: int) -> tuple[int, int]:
    """(hard bounces, complaints) reported for ``issue_id``, each reader (delivery) once: what
    the send guards count besides the refusals of the send itself."""
    hard, complaints = db.execute(
        "SELECT count(DISTINCT coalesce(delivery_id, -subscriber_id)) FILTER (WHERE kind = 'hard'),"
        " count(DISTINCT coalesce(delivery_id, -subscriber_id)) FILTER (WHERE kind = 'complaint')"
        " FROM bounces WHERE issue_id = ? AND kind IN ('hard', 'complaint')",
        [issue_id],
    ).fetchone()
    return hard, complaints


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
    return _newest_reports(db, query, "b.", since, limit)


def list_held(
    db: sqlite_utils.Database, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Reports held for review (they named several readers and acted on none), newest first."""
    query = "SELECT id, received_at, kind, readers, reason, message_key AS report, source FROM held_reports"
    return _newest_reports(db, query, "", since, limit)


def _newest_reports(
    db: sqlite_utils.Database, query: str, table: str, since: datetime | None, limit: int | None
) -> list[dict[str, Any]]:
    """``query``'s rows received since ``since``, newest first, at most ``limit``; each report's
    own Message-ID without escape sequences for a terminal. ``table``: the alias prefix."""
    params: list[Any] = []
    if since is not None:
        query += f" WHERE {table}received_at >= ?"
        params.append(iso(since))
    query += f" ORDER BY {table}received_at DESC, {table}id DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    rows = list(db.query(query, params))
    for row in rows:
        row["report"] = _CONTROL.sub("?", row["report"])
    return rows


def issue_report_counts(db: sqlite_utils.Database, issue_id: int) -> dict[str, int]:
    """Reports that matched a reader of the issue, per kind (hard, soft, complaint, unsubscribe)."""
    counts = dict.fromkeys(("hard", "soft", "complaint", "unsubscribe"), 0)
    for kind, count in db.execute(
        "SELECT kind, count(*) FROM bounces WHERE issue_id = ? AND subscriber_id IS NOT NULL GROUP BY kind",
        [issue_id],
    ):
        if kind in counts:
            counts[kind] = count
    return counts


def reports_per_day(db: sqlite_utils.Database, since: str) -> dict[str, dict[str, int]]:
    """Day (UTC) → kind → reports received that day that matched a reader, since ``since``."""
    days: dict[str, dict[str, int]] = {}
    for day, kind, count in db.execute(
        "SELECT substr(received_at, 1, 10), kind, count(*) FROM bounces"
        " WHERE received_at >= ? AND subscriber_id IS NOT NULL GROUP BY 1, 2",
        [since],
    ):
        days.setdefault(day, {})[kind] = count
    return days
