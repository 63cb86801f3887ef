"""What a connection worker carries: a claimed ledger :class:`Row` and the :class:`Result` of sending it."""

from __future__ import annotations

from dataclasses import dataclass

from digest.mail.transports import Reply


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
