"""Bounces, complaints and mailed unsubscribes: read a mailbox of reports, clean the list.

Entry points: :func:`process_bounces` (one source; `digest run` calls it for
``[bounces] source`` before it sends), :func:`record_relay_bounces` (bounces the
operator's own relay logged, recorded like DSNs), :func:`list_bounces` and :func:`list_held`.
"""

from __future__ import annotations

from digest.bounces.process import (
    BounceReport,
    RelayBounce,
    list_bounces,
    list_held,
    process_bounces,
    record_relay_bounces,
)

__all__ = [
    "BounceReport",
    "RelayBounce",
    "list_bounces",
    "list_held",
    "process_bounces",
    "record_relay_bounces",
]
