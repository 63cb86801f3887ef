"""The envelope sender (Return-Path) of each message the send engine hands over.

Without ``delivery.bounce_address`` every message goes out with the From
address as its envelope sender. The bounce work fills in per-recipient VERP
addresses here (``bounces+<token>@domain``, a signed token naming the delivery
row); the send engine only asks :meth:`ReturnPath.for_delivery` per row.
"""

from __future__ import annotations

from email.utils import parseaddr

from digest.config import Config


class ReturnPath:
    """Builds the envelope sender for each delivery row of a send (cheap per call)."""

    def __init__(self, config: Config) -> None:
        self._default = parseaddr(config.publication.from_address)[1]

    def for_delivery(self, delivery_id: int) -> str:
        """The envelope sender for the deliveries row ``delivery_id``."""
        return self._default
