"""`digest verify`: what the relay did with each message the ledger says it accepted.

:func:`verify_issue` reads the operator's Postfix log (:mod:`digest.verify.maillog`) and
puts every reader of an issue in one place: ``delivered`` (the relay handed it on),
``deferred`` (still in the relay's queue), ``bounced`` (the relay gave up), ``unknown``
(the ledger says sent, the log has no line for that Message-ID and address) or
``not_sent`` (the ledger never handed it to the relay: queued, failed, skipped). Only a
log line whose Message-ID is the one on the reader's delivery row, and whose recipient is
that reader's address, says anything about them. Bounces are recorded like DSNs by
:func:`digest.bounces.record_relay_bounces` (same thresholds; once per log entry).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.bounces import BounceReport, RelayBounce, record_relay_bounces
from digest.config import Config
from digest.delivery import list_deliveries
from digest.errors import DigestError
from digest.verify.maillog import read_maillog

__all__ = ["OUTCOMES", "VerifyReport", "verify_issue"]

OUTCOMES = ("delivered", "deferred", "bounced", "unknown", "not_sent")
_STATUS = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced"}


@dataclass
class VerifyReport:
    """Every reader of the issue by what the relay did, and the bounces recorded."""

    issue_id: int
    log: str
    counts: Counter[str] = field(default_factory=Counter)
    readers: list[dict[str, Any]] = field(default_factory=list)
    bounces: BounceReport | None = None

    def summary(self) -> str:
        """One line: the counts and what the bounces changed."""
        text = ", ".join(f"{self.counts[o]} {o.replace('_', ' ')}" for o in OUTCOMES)
        if self.bounces is not None:
            new = self.bounces.messages - self.bounces.already
            text += f"; {new} bounce{'s' if new != 1 else ''} recorded"
            if self.bounces.already:
                text += f" ({self.bounces.already} recorded before)"
            if self.bounces.bounced:
                text += f", marked bounced: {len(self.bounces.bounced)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """For --json."""
        return {
            "issue": self.issue_id,
            "maillog": self.log,
            "counts": {o: self.counts[o] for o in OUTCOMES},
            "readers": self.readers,
            "bounces_recorded": (self.bounces.messages - self.bounces.already) if self.bounces else 0,
            "marked_bounced": self.bounces.bounced if self.bounces else [],
        }


def verify_issue(db: sqlite_utils.Database, config: Config, issue_id: int, maillog: Path) -> VerifyReport:
    """Reconcile issue ``issue_id``'s ledger with the Postfix log ``maillog``; record its bounces.

    Raises DigestError when the log cannot be read or has no Postfix delivery lines at all
    (the wrong file, or Postfix logging elsewhere)."""
    try:
        with maillog.open(encoding="utf-8", errors="replace") as lines:
            log = read_maillog(lines)
    except OSError as exc:
        raise DigestError(
            f"cannot read the mail log {maillog}: {exc.strerror or exc}; give --maillog the file"
            " Postfix logs to (its maillog_file, or the syslog file), readable by this user"
        ) from None
    if not log.lines:
        raise DigestError(
            f"{maillog} has no Postfix lines about queued messages; give the file Postfix logs to"
            " (its maillog_file, or the syslog file with its lines)"
        )
    report = VerifyReport(issue_id=issue_id, log=str(maillog))
    bounces: list[RelayBounce] = []
    for row in list_deliveries(db, issue_id):
        entry: dict[str, Any] = {"email": row["email"], "ledger": row["status"]}
        if row["status"] != "sent" or not row["message_id"] or not row["email"]:
            outcome = "not_sent"
        else:
            found = log.outcome(row["message_id"], row["email"])
            outcome = "unknown" if found is None else _STATUS[found.status]
            if found is not None:
                entry |= {"queue_id": found.queue_id, "dsn": found.dsn, "relay": found.reply}
            if found is not None and found.status == "bounced" and row["subscriber_id"] is not None:
                bounces.append(
                    RelayBounce(
                        key=f"maillog:{found.queue_id}:{row['email'].casefold()}",
                        subscriber_id=row["subscriber_id"],
                        delivery_id=row["id"],
                        issue_id=issue_id,
                        status_code=found.dsn,
                        reason=f"relay bounced: {found.reply}" if found.reply else "relay bounced",
                        recipient=row["email"],
                    )
                )
        entry["outcome"] = outcome
        report.counts[outcome] += 1
        report.readers.append(entry)
    if bounces:
        report.bounces = record_relay_bounces(db, config, bounces, f"maillog:{maillog.name}")
    return report
