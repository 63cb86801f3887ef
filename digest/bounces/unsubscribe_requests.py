"""A mailed unsubscribe without our token: ask the reader to confirm, don't act.

Anyone can write a mail with a reader's address in ``From:``. Only a request that
carries the reader's signed unsubscribe token (what our ``List-Unsubscribe``
``mailto:`` puts in the subject) unsubscribes at once. Any other request from an
active reader's address queues, through the outbox, one ``unsubscribe-confirm``
mail to that address with the signed one-click unsubscribe link; at most one per
address per :data:`CONFIRM_EVERY`, so forged requests cannot mail-bomb a reader.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlite_utils

from digest.config import Config
from digest.mail.outbox import queue_message, queued_since
from subscribers.links import subscriber_links
from subscribers.store import find_subscriber

KIND = "unsubscribe-confirm"
CONFIRM_EVERY = timedelta(days=1)


def request_confirmation(
    db: sqlite_utils.Database, config: Config, secret: bytes, sender: str | None, *, now: datetime
) -> tuple[str, int | None, int | None]:
    """Queue the confirmation mail for ``sender`` if it is an active reader's address.

    Returns (what happened, for the ``bounces`` row's reason; the subscriber id or None;
    the outbox row id, or None when nothing was queued). Call inside the report's transaction.
    """

    subscriber = find_subscriber(db, sender) if sender else None
    if subscriber is None:
        return "unconfirmed unsubscribe: the sender is not on the list", None, None
    subscriber_id = int(subscriber["id"])
    if subscriber["status"] != "active":
        return f"unconfirmed unsubscribe: the reader is {subscriber['status']}", subscriber_id, None
    if queued_since(db, subscriber["email"], KIND, now - CONFIRM_EVERY):
        return "unconfirmed unsubscribe: a confirmation link was mailed in the last day", subscriber_id, None
    links = subscriber_links(config, secret, subscriber, now=now)
    context = {"unsubscribe_url": links["unsubscribe_url"], "preferences_url": links["preferences_url"]}
    row = queue_message(db, config, KIND, subscriber, context, now=now)
    return "unconfirmed unsubscribe: confirmation link mailed", subscriber_id, row
