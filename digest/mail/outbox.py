"""Transactional mail: confirmation, welcome, already-subscribed and unsubscribe-confirm messages,
via the ``outbox``.

A message is rendered from ``email/<kind>.html.j2`` and ``email/<kind>.txt.j2``
(a publisher overrides them in ``[render] templates`` like the issue's; the text
template sets ``subject``), DKIM-signed like an issue, and written whole to the
``outbox`` table before anything is sent. :func:`send_outbox` then hands queued
rows to the configured transport:

- a row is claimed (``queued`` → ``sending``) in one UPDATE before it leaves, so two
  senders (a web worker and ``digest run``) never send the same row;
- 2xx marks it ``sent``; a 4xx, a dropped connection or a transport that cannot be
  reached puts it back to ``queued`` with the error, for the next ``digest run``;
- a 5xx marks it ``failed`` (the address refuses mail; retrying will not help);
- a confirmation older than its link's lifetime is not sent late: ``failed``, expired;
- a row left ``sending`` by a process that died is retried after :data:`STALE_SENDING`
  (at most that one message may arrive twice, with the same Message-ID);
- a sent or failed row is deleted :data:`OUTBOX_KEEP` after it was last touched
  (:func:`delete_old_rows`, by ``digest run``); a queued one never is.

The envelope sender is ``delivery.bounce_address`` when it is set (see :func:`return_path`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr
from typing import Any

import jinja2
import sqlite_utils

from digest.config import Config
from digest.errors import DigestError
from digest.i18n import direction
from digest.mail.message import dkim_signer, header_address
from digest.mail.transports import ConnectionLost, TransportError, open_transport
from digest.mail.verp import split_bounce_address
from digest.render.context import brand_context
from digest.render.templating import environment, template_dirs
from digest.store.database import from_iso, iso, utcnow
from subscribers.tokens import CONFIRM_TTL

KINDS = ("confirm", "welcome", "already-subscribed", "unsubscribe-confirm", "review", "signin")
STALE_SENDING = timedelta(minutes=15)
OUTBOX_KEEP = timedelta(days=30)
"""How long a sent or failed row (the whole signed message) is kept; ``digest run`` deletes older ones."""


@dataclass
class OutboxReport:
    """What one pass over the outbox did."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for ``digest run``."""
        text = f"outbox: {self.sent} sent"
        if self.retry:
            text += f", {self.retry} left for the next run"
        if self.failed:
            text += f", {self.failed} failed"
        return text


def render_transactional(config: Config, kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """``(subject, text, html)`` for a transactional message of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown transactional kind {kind!r}")
    language = config.publication.language
    env = environment(tuple(template_dirs(config)), language, config.base_dir)
    values = {
        "publication": config.publication,
        "brand": brand_context(config),
        "dir": direction(language),
        **context,
    }
    try:
        module = env.get_template(f"email/{kind}.txt.j2").make_module(values)
        subject = " ".join(str(getattr(module, "subject", "") or config.publication.name).split())
        html = env.get_template(f"email/{kind}.html.j2").render({**values, "subject": subject})
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(d / "email") for d in template_dirs(config))
        raise DigestError(f"template {exc.name} not found (searched {searched})") from None
    except jinja2.TemplateError as exc:
        raise DigestError(f"email/{kind} template: {exc}") from None
    text = str(module).strip() + "\n"
    return subject, text, html


def build_transactional(
    config: Config, kind: str, recipient: dict[str, Any], context: dict[str, Any], *, message_id: str
) -> bytes:
    """The signed message bytes (CRLF) for ``recipient`` (needs ``email``; ``name`` optional)."""
    subject, text, html = render_transactional(
        config, kind, {"name": recipient.get("name") or "", "email": recipient["email"], **context}
    )
    from_name, from_email = parseaddr(config.publication.from_address)
    # An international address is written in UTF-8 (RFC 6532), and the message sent with SMTPUTF8.
    msg = EmailMessage(policy=SMTP if str(recipient["email"]).isascii() else SMTPUTF8)
    msg["From"] = header_address(from_name or config.publication.name, from_email)
    msg["To"] = header_address(recipient.get("name") or "", recipient["email"])
    if config.publication.reply_to:
        msg["Reply-To"] = config.publication.reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    data = msg.as_bytes()
    signer = dkim_signer(config)
    return signer.sign(data) if signer else data


def queue_message(
    db: sqlite_utils.Database,
    config: Config,
    kind: str,
    subscriber: dict[str, Any],
    context: dict[str, Any],
    *,
    now: datetime | None = None,
) -> int:
    """Render, sign and store one message for ``subscriber``; returns the outbox row id."""
    sender = parseaddr(config.publication.from_address)[1]
    # Random and recorded: a bounce quoting it names this row's reader and nobody can guess it.
    message_id = f"<{kind}.{secrets.token_hex(16)}@{_domain(sender)}>"
    data = build_transactional(config, kind, subscriber, context, message_id=message_id)
    at = iso(now or utcnow())
    cursor = db.execute(
        "INSERT INTO outbox (kind, subscriber_id, email, message, message_id, status, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
        [kind, subscriber.get("id"), subscriber["email"], data, message_id, at, at],
    )
    return int(cursor.lastrowid or 0)


def send_outbox(
    db: sqlite_utils.Database,
    config: Config,
    *,
    ids: list[int] | None = None,
    now: datetime | None = None,
    timeout: float | None = None,
) -> OutboxReport:
    """Send queued rows (only ``ids`` when given) through the configured transport."""

    moment = now or utcnow()
    report = OutboxReport()
    rows = _due_rows(db, ids, moment)
    if not rows:
        return report
    sender = return_path(config)
    transport = None
    try:
        for row_id, kind, email, data, created_at in rows:
            if kind == "confirm" and moment - from_iso(created_at) > CONFIRM_TTL:
                _finish(db, row_id, "failed", "expired: the confirmation link in it no longer works", moment)
                report.failed += 1
                continue
            if not _claim(db, row_id, moment):
                continue
            try:
                if transport is None:
                    transport = open_transport(config.delivery.transport, config, timeout=timeout)
                reply = transport.send(bytes(data), sender, email)
            except (TransportError, ConnectionLost, OSError) as exc:
                _finish(db, row_id, "queued", str(exc) or type(exc).__name__, moment)
                report.retry += 1
                report.errors.append(str(exc))
                break  # the relay is down: the rest waits for the next run
            if reply.ok:
                _finish(db, row_id, "sent", None, moment)
                report.sent += 1
            elif reply.temporary:
                _finish(db, row_id, "queued", reply.describe(), moment)
                report.retry += 1
            else:
                _finish(db, row_id, "failed", reply.describe(), moment)
                report.failed += 1
    finally:
        if transport is not None:
            transport.close()
    return report


def delete_old_rows(db: sqlite_utils.Database, *, now: datetime | None = None) -> int:
    """Delete sent and failed rows older than :data:`OUTBOX_KEEP` (never a queued or sending one);
    returns how many went."""
    cutoff = iso((now or utcnow()) - OUTBOX_KEEP)
    cursor = db.execute(
        "DELETE FROM outbox WHERE status IN ('sent', 'failed') AND COALESCE(sent_at, updated_at) < ?",
        [cutoff],
    )
    return cursor.rowcount


def return_path(config: Config) -> str:
    """The envelope sender of transactional mail: ``delivery.bounce_address`` when set, so a
    bounced confirmation reaches ``digest bounces process`` (which maps it by the report's
    Message-ID, recorded in the row: these have no deliveries row for a VERP token to name), else
    the From address."""

    bounce = split_bounce_address(config)
    if bounce is None:
        return parseaddr(config.publication.from_address)[1]
    local, domain = bounce
    return f"{local}@{domain}"


def _due_rows(db: sqlite_utils.Database, ids: list[int] | None, moment: datetime) -> list[tuple]:
    stale = iso(moment - STALE_SENDING)
    where = "(status = 'queued' OR (status = 'sending' AND updated_at < ?))"
    params: list[Any] = [stale]
    if ids is not None:
        if not ids:
            return []
        where += f" AND id IN ({', '.join('?' * len(ids))})"
        params.extend(ids)
    return db.execute(
        f"SELECT id, kind, email, message, created_at FROM outbox WHERE {where} ORDER BY id", params
    ).fetchall()


def _claim(db: sqlite_utils.Database, row_id: int, moment: datetime) -> bool:
    cursor = db.execute(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ?"
        " WHERE id = ? AND (status = 'queued' OR (status = 'sending' AND updated_at < ?))",
        [iso(moment), row_id, iso(moment - STALE_SENDING)],
    )
    return cursor.rowcount == 1


def _finish(db: sqlite_utils.Database, row_id: int, status: str, error: str | None, moment: datetime) -> None:
    db.execute(
        "UPDATE outbox SET status = ?, last_error = ?, updated_at = ?,"
        " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
        [status, error[:500] if error else None, iso(moment), status, iso(moment), row_id],
    )


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower() or "localhost"


def outbox_subscriber(db: sqlite_utils.Database, message_id: str) -> int | None:
    """The subscriber a transactional message with this Message-ID went to, or None."""
    row = db.execute(
        "SELECT subscriber_id FROM outbox WHERE message_id = ? AND subscriber_id IS NOT NULL", [message_id]
    ).fetchone()
    return row[0] if row is not None else None


def queued_since(db: sqlite_utils.Database, email: str, kind: str, since: datetime) -> bool:
    """Whether a ``kind`` message to ``email`` was queued after ``since``."""
    row = db.execute(
        "SELECT 1 FROM outbox WHERE email = ? AND kind = ? AND created_at > ? LIMIT 1",
        [email, kind, iso(since)],
    ).fetchone()
    return row is not None
