"""``digest dmarc process``: read DMARC aggregate reports (rua) from a mailbox and store them.

The mailbox is read through the bounce sources (:func:`digest.bounces.sources.open_source`:
``maildir:``, ``mbox:``, ``imaps://``, with their size limit, IMAP deadline and
``processed``/``rejected`` folders). Each message is measured first (size, MIME depth:
:mod:`digest.bounces.limits`), then parsed by ``parsedmarc`` offline (no DNS, no
geolocation): it opens gzip and zip attachments with a bound on the decompressed size and
refuses any DOCTYPE, so an entity bomb is refused before expansion. A report is stored
once per (organisation, report id); a message that is not a readable aggregate report
(malformed, a bomb, too large, a forensic report) is moved to ``rejected`` with one
line saying why, and the rest of the mailbox is read as usual.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from digest.bounces.limits import RefusedMessage, check_depth, check_size, scan_depth
from digest.bounces.sources import BounceSource, open_source
from digest.compose.build import plural
from digest.config import Config
from digest.dmarc.store import message_outcome, record_message, store_report
from digest.store.database import utcnow


@dataclass
class DmarcRun:
    """What one ``dmarc process`` did."""

    source: str
    messages: int = 0
    stored: int = 0  # reports stored
    duplicates: int = 0  # reports already stored (the same report mailed again)
    already: int = 0  # messages read on an earlier run
    rejected: list[str] = field(default_factory=list)  # one line per refused message

    def summary(self) -> str:
        """One line for the terminal."""
        text = f"{self.source}: {plural(self.messages, 'message')}, {plural(self.stored, 'report')} stored"
        if self.duplicates:
            text += f", {self.duplicates} already stored"
        if self.already:
            text += f", {self.already} read before"
        if self.rejected:
            text += f"; {len(self.rejected)} rejected (moved to rejected)"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The run for ``--json``."""
        return {
            "source": self.source,
            "messages": self.messages,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "already": self.already,
            "rejected": self.rejected,
        }


def process_dmarc(db: sqlite_utils.Database, config: Config, source: str) -> DmarcRun:
    """Read every message in ``source`` once; store its aggregate report or reject it."""
    mailbox = open_source(source, base_dir=config.base_dir, deadline=config.bounces.deadline)
    try:
        return _process(db, mailbox)
    finally:
        mailbox.close()


def _process(db: sqlite_utils.Database, mailbox: BounceSource) -> DmarcRun:
    run = DmarcRun(source=mailbox.name)
    for handle, data in mailbox.messages():
        run.messages += 1
        key = message_key(data)
        outcome = message_outcome(db, key)
        if outcome is None:
            outcome = _handle(db, data, key, run)
            record_message(db, key, mailbox.name, outcome, utcnow())
        else:
            run.already += 1
        if outcome == "rejected":
            mailbox.reject(handle)
        else:
            mailbox.done(handle)
    return run


def _handle(db: sqlite_utils.Database, data: bytes, key: str, run: DmarcRun) -> str:
    try:
        report = parse_aggregate(data)
    except RefusedMessage as refused:
        run.rejected.append(f"{_subject(data)}: {refused.reason}")
        return "rejected"
    try:
        stored = store_report(db, report, key, utcnow())  # one transaction: all of it or nothing
    except (KeyError, TypeError, ValueError) as exc:
        run.rejected.append(f"{_subject(data)}: unreadable report (field {exc})")
        return "rejected"
    if stored:
        run.stored += 1
        return "stored"
    run.duplicates += 1
    return "duplicate"


def parse_aggregate(data: bytes) -> dict[str, Any]:
    """The aggregate report in the message ``data`` (parsedmarc's dict); raises
    :class:`RefusedMessage` with one line when it is too large, too deep or not a readable report."""
    import parsedmarc  # lazy: start-up (parsedmarc imports its DNS, HTTP and geo stack)

    check_size(data)
    check_depth(scan_depth(data))
    try:
        parsed = parsedmarc.parse_report_email(data, offline=True)
    except parsedmarc.ParserError as exc:
        raise RefusedMessage(_reason(exc)) from None
    except Exception as exc:  # noqa: BLE001  (untrusted bytes in a third-party parser: any error refuses)
        raise RefusedMessage(f"unreadable report ({type(exc).__name__})") from None
    if parsed.get("report_type") != "aggregate":
        raise RefusedMessage(f"a {parsed.get('report_type')} report, not an aggregate one")
    return dict(parsed["report"])


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "is not a valid" in text and ":" in text:
        text = text.rsplit(":", 1)[1].strip() or text
    return "unreadable report: " + (text[:200] or type(exc).__name__)


def message_key(data: bytes) -> str:
    """The message's Message-ID, or a hash of its bytes when it has none."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:65536]
    msg = email.message_from_bytes(head, policy=email.policy.compat32)
    message_id = str(msg.get("Message-ID") or "").strip()
    return message_id[:500] if message_id else "sha256:" + hashlib.sha256(data).hexdigest()


def _subject(data: bytes) -> str:
    head = data.split(b"\n\n", 1)[0][:65536]
    msg = email.message_from_bytes(head, policy=email.policy.compat32)
    subject = " ".join(str(msg.get("Subject") or "(no subject)").split())
    return subject[:80]


def window_start(days: int, now: datetime | None = None) -> datetime:
    """The start of the last ``days`` days."""
    return (now or utcnow()) - timedelta(days=days)
