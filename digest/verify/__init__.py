"""Proof of delivery: reconcile an issue's ledger with the relay's own log.

Entry point: :func:`verify_issue` (:mod:`~digest.verify.reconcile`); the Postfix log is
read by :mod:`~digest.verify.maillog`. It sits above :mod:`digest.delivery` (the ledger)
and :mod:`digest.bounces` (bounces found in the log are recorded like DSNs).
"""

from __future__ import annotations

from digest.verify.maillog import read_maillog
from digest.verify.reconcile import OUTCOMES, VerifyReport, verify_issue

__all__ = ["OUTCOMES", "VerifyReport", "read_maillog", "verify_issue"]
