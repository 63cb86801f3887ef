"""Read a Postfix log: which message (by Message-ID) each queue id carried, and what became
of each of its recipients.

Postfix logs, per message, a ``cleanup`` line with its ``message-id=<…>`` and then, per
recipient and attempt, a delivery line ``to=<…>, …, dsn=X.Y.Z, status=sent|deferred|
bounced|expired (…)``. A recipient's outcome is the best of its lines: ``sent`` beats
``bounced`` beats ``deferred`` (a deferral is retried; an ``expired`` message was
returned, so it is ``bounced``). Lines of any other kind are skipped, so a syslog file
with other programs' lines in it reads as well as Postfix's own ``maillog_file``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Delivery", "Maillog", "read_maillog"]

_LINE = re.compile(r"\bpostfix[^\s:\[]*/[\w.-]+\[\d+\]: ([0-9A-Za-z]{5,}): (.*)$")
_MESSAGE_ID = re.compile(r"^message-id=(\S+)")
_TO = re.compile(r"^to=<([^>]*)>")
_STATUS = re.compile(r"\bstatus=(sent|deferred|bounced|expired)\b(?: \((.*)\))?")
_DSN = re.compile(r"\bdsn=(\d\.\d{1,3}\.\d{1,3})")
_RANK = {"deferred": 1, "bounced": 2, "sent": 3}


@dataclass
class Delivery:
    """What the relay did with one recipient of one queued message (its best outcome)."""

    queue_id: str
    recipient: str
    status: str  # sent / deferred / bounced
    dsn: str = ""
    reply: str = ""  # the text Postfix logged in parentheses (the remote reply, or why)


@dataclass
class Maillog:
    """A Postfix log read: Message-ID → queue ids, and (queue id, recipient) → outcome."""

    queues: dict[str, list[str]] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], Delivery] = field(default_factory=dict)
    lines: int = 0  # Postfix lines about a queue id

    def outcome(self, message_id: str, recipient: str) -> Delivery | None:
        """The best outcome for ``recipient`` of any queued message with ``message_id``."""
        best = None
        for queue_id in self.queues.get(_clean_id(message_id), []):
            found = self.outcomes.get((queue_id, recipient.casefold()))
            if found is not None and (best is None or _RANK[found.status] > _RANK[best.status]):
                best = found
        return best


def read_maillog(lines: Iterable[str]) -> Maillog:
    """Read the Postfix lines of a log (other lines are skipped)."""
    log = Maillog()
    for line in lines:
        found = _LINE.search(line.rstrip("\r\n"))
        if found is None:
            continue
        queue_id, rest = found.groups()
        log.lines += 1
        if m := _MESSAGE_ID.match(rest):
            ids = log.queues.setdefault(_clean_id(m.group(1)), [])
            if queue_id not in ids:
                ids.append(queue_id)
            continue
        to, status = _TO.match(rest), _STATUS.search(rest)
        if to is None or status is None:
            continue
        state = "bounced" if status.group(1) == "expired" else status.group(1)
        dsn = _DSN.search(rest)
        entry = Delivery(queue_id, to.group(1), state, dsn.group(1) if dsn else "", status.group(2) or "")
        key = (queue_id, to.group(1).casefold())
        before = log.outcomes.get(key)
        if before is None or _RANK[state] >= _RANK[before.status]:
            log.outcomes[key] = entry
    return log


def _clean_id(value: str) -> str:
    """A Message-ID without its angle brackets and surrounding space."""
    return value.strip().strip("<>").strip()
