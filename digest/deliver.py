"""Where callers import the send engine from; it lives in :mod:`digest.delivery`."""

from __future__ import annotations

from digest.delivery import (
    DeliveryReport,
    SendInProgress,
    check_public_base_url,
    deliver_issue,
    delivery_counts,
    list_deliveries,
    recipient_links,
)

__all__ = [
    "DeliveryReport",
    "SendInProgress",
    "check_public_base_url",
    "deliver_issue",
    "delivery_counts",
    "list_deliveries",
    "recipient_links",
]
