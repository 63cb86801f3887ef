"""Bounces, complaints and mailed unsubscribes: read a mailbox of reports, clean the list.

Entry points: :func:`process_bounces` (one source), :func:`process_configured_source`
(what `digest run` calls before it sends) and :func:`list_bounces`.
"""

from __future__ import annotations

from digest.bounces.process import BounceReport, list_bounces, process_bounces
from digest.bounces.run import process_configured_source

__all__ = ["BounceReport", "list_bounces", "process_bounces", "process_configured_source"]
