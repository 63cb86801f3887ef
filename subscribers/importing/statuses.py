"""Statuses: what other tools' status cells mean in digest's four (pending, active, unsubscribed,
bounced).

A file's status may be digest's own ``status`` column, another tool's (Mailchimp's
``cleaned``, listmonk's ``blocklisted`` and ``unconfirmed``, Buttondown's ``undeliverable``,
Ghost's ``subscribed_to_emails``, Substack's ``email_disabled``), or several of those joined
into one cell by the reader (see read.JoinedStatus). Several values: the most restrictive
non-empty one wins (bounced, then unsubscribed, then pending, then active), so a reader who
left by any one measure is never mailed. Used by profiles, once per distinct cell.
Entry point: :func:`parse_status`.
"""

from __future__ import annotations

from subscribers.importing.read import STATUS_SEPARATOR
from subscribers.model import STATUSES, InvalidValue

# Values of a status column, lower-cased, by the tool that writes them.
STATUS_VALUES = {
    **{s: s for s in STATUSES},
    # Mailchimp (API and audience exports)
    "subscribed": "active",
    "cleaned": "bounced",
    "transactional": "unsubscribed",  # never opted in to marketing mail
    "archived": "unsubscribed",
    # listmonk (subscriber status; subscription status per list)
    "enabled": "active",
    "disabled": "unsubscribed",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",
    "unconfirmed": "pending",
    "confirmed": "active",
    # Buttondown (subscriber type)
    "regular": "active",
    "premium": "active",
    "gifted": "active",
    "trialed": "active",
    "churning": "active",
    "past_due": "active",
    "unpaid": "active",
    "churned": "active",
    "unactivated": "pending",
    "removed": "unsubscribed",
    "paused": "unsubscribed",
    "spammy": "unsubscribed",
    "complained": "unsubscribed",
    "blocked": "unsubscribed",
    "undeliverable": "bounced",
    # Ghost (member status: all receive email unless subscribed_to_emails is false)
    "free": "active",
    "paid": "active",
    "comped": "active",
}
_TRUE = ("true", "yes", "1", "t", "y")
_FALSE = ("false", "no", "0", "f", "n")
# Columns holding a yes/no: what yes and no mean.
_FLAGS = {"subscribed": ("active", "unsubscribed"), "disabled": ("unsubscribed", "active")}
_RANK = {"active": 0, "pending": 1, "unsubscribed": 2, "bounced": 3}


def parse_status(raw: str, kinds: tuple[str, ...] = ("status",), names: tuple[str, ...] = ()) -> str | None:
    """The status of a (joined) status cell, None when every part is empty; raises InvalidValue.

    ``kinds`` says how each part reads (``status``, ``subscribed``, ``disabled``), ``names``
    the file's column names for the message.
    """
    parts = raw.split(STATUS_SEPARATOR) if len(kinds) > 1 else [raw]
    found: str | None = None
    for index, (part, kind) in enumerate(zip(parts, kinds, strict=False)):
        value = part.strip().lower()
        if not value:
            continue
        if kind in _FLAGS:
            yes, no = _FLAGS[kind]
            status = yes if value in _TRUE else no if value in _FALSE else None
        else:
            status = STATUS_VALUES.get(value.replace(" ", "_"))
        if status is None:
            column = names[index] if index < len(names) else "status"
            expected = "true or false" if kind in _FLAGS else ", ".join(STATUSES) + " (or another tool's)"
            raise InvalidValue(f"{column} {part.strip()[:40]!r} is not a status digest knows: {expected}")
        if found is None or _RANK[status] > _RANK[found]:
            found = status
    return found
