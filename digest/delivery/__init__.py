"""The send engine: every issue reaches every reader once, whatever the relay and the readers do.

Parts, each with one job:

- :mod:`~digest.delivery.send` — :func:`deliver_issue`, the entry point: lock, checks, freeze, run;
- :mod:`~digest.delivery.ledger` — the ``deliveries`` table and its states (the one module with its SQL);
- :mod:`~digest.delivery.lease` — several senders on PostgreSQL: the leases on claimed rows (the ledger's);
- :mod:`~digest.delivery.recipients` — who gets an issue, with which variant and when;
- :mod:`~digest.delivery.rows` — a claimed :class:`Row`, the :class:`Result` of sending it, the counts;
- :mod:`~digest.delivery.journal` — per-connection journals of 250s, replayed after a crash;
- :mod:`~digest.delivery.policy` — what one SMTP reply means (a pure function);
- :mod:`~digest.delivery.worker` — one connection's loop: claim, send, record;
- :mod:`~digest.delivery.messages` — each claimed row's message with the reader's links (signed ahead);
- :mod:`~digest.delivery.refusals` — refusals held back until it is clear whose they are;
- :mod:`~digest.delivery.guard` — the send guards: too many complaints or hard bounces pause a send;
- :mod:`~digest.delivery.throttle` — the process's pace (AIMD), cut by a relay's throttle replies;
- :mod:`~digest.delivery.engine` — threads and processes of workers, signals, progress;
- :mod:`~digest.delivery.trial` — dry runs and ``--to`` test sends;
- :mod:`~digest.delivery.report` — :class:`DeliveryReport`, what a send, dry run or test send did;
- :mod:`~digest.delivery.checks` — can the readers' links work (:func:`check_public_base_url`).
"""

from __future__ import annotations

from digest.delivery.checks import check_public_base_url
from digest.delivery.ledger import delivery_counts, list_deliveries, requeue_failed
from digest.delivery.messages import recipient_links
from digest.delivery.report import DeliveryReport
from digest.delivery.send import SendInProgress, deliver_issue

__all__ = [
    "DeliveryReport",
    "SendInProgress",
    "check_public_base_url",
    "deliver_issue",
    "delivery_counts",
    "list_deliveries",
    "recipient_links",
    "requeue_failed",
]
