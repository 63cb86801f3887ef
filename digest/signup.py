"""Sign-up (double opt-in) and the mail around it: one entry point per step of the list's life cycle.

- :func:`request_signup` — a sign-up form was posted. Whatever the address's
  state (new, pending, active, unsubscribed, bounced, removed), the caller shows
  the same page; what differs is only which email goes out, if any:
  a confirmation (new, pending, or an address that left and now asks again),
  or a short "you are already subscribed" note (active). Limits: at most one such
  email per address per 10 minutes and three per day, the address taken in its
  canonical form (``subscribers.model.canonical_address``: Gmail's dots, ``+tags``),
  and at most ``web.signup_posts_per_hour`` POSTs per client (an IPv6 client by its
  /64) (:class:`TooManyRequests`).
- :func:`send_confirmations` — the CLI's ``subscribers add --pending`` and import.
- :func:`welcome` — after a confirmation: the welcome email (:func:`queue_welcome`
  only queues it, for the web app's sender).
- :func:`remove_stale_pending` — ``digest run``: pending sign-ups older than
  ``subscribers.pending_days`` are removed (and the limits' expired rows,
  :func:`forget_old_requests`).

Every message goes through :mod:`digest.mail.outbox` (stored, then sent: at once by the
CLI, by a background sender after the answer in the web app); what the transport
refuses is retried by ``digest run``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import sqlite_utils

from digest.compose.issues import latest_sent_issue_id
from digest.config import Config
from digest.errors import DigestError
from digest.ingest.categories import known_categories as list_known_categories
from digest.mail.outbox import OUTBOX_KEEP, OutboxReport, delete_old_rows, queue_message, send_outbox
from digest.store.database import iso, transaction, utcnow
from digest.store.db_lock import serialize
from subscribers.events import record_event, subscribed_while_suppressed
from subscribers.links import subscriber_links
from subscribers.model import canonical_address, normalize_email, normalize_labels, normalize_name
from subscribers.store import (
    add_subscriber,
    find_subscriber,
    get_subscriber,
    remove_subscriber,
    stale_pending_ids,
)
from subscribers.suppressions import lift_suppression

ForgetDeliveries = Callable[[sqlite_utils.Database, int, str], None]
"""Blanks a removed reader's address in the ledger: :func:`digest.delivery.ledger.forget_reader`
(delivery sits beside this module, so its callers pass it in)."""

ADDRESS_LIMITS = ((timedelta(minutes=10), 1), (timedelta(days=1), 3))
"""(window, most confirmation or already-subscribed emails one address gets in it)."""
CLIENT_WINDOW = timedelta(hours=1)
SIGNUP_LOCK = "signup"
"""What sign-ups serialize on (:func:`digest.store.db_lock.serialize`)."""


class TooManyRequests(DigestError):
    """One client address posted the sign-up form too often; answer 429."""


def request_signup(
    db: sqlite_utils.Database,
    config: Config,
    secret: bytes,
    *,
    email: str,
    name: str = "",
    editions: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    client: str = "",
    send: bool = True,
    known_categories: list[str] | None = None,
    now: datetime | None = None,
) -> int | None:
    """Handle one sign-up request; returns the queued outbox row (None when the address's limit
    held the email back). Raises InvalidValue for a bad field, TooManyRequests (per client).

    The order keeps the answer the same whoever is on the list: the POST is counted for
    ``client`` first (whatever follows: a bad field counts too), then every field is checked,
    and only then is the address looked up. A removed (suppressed) address becomes pending but
    stays suppressed until it confirms.

    ``editions``/``categories`` None or every offered one means all. The email (if
    any) is queued in the same transaction and, with ``send``, sent at once; without it
    the caller sends the returned row (the web app does, after answering).
    ``known_categories`` is :func:`digest.ingest.categories.known_categories` when the caller
    has it already (the web form does); None looks it up.
    """
    moment = now or utcnow()
    count_signup_post(db, config, secret, client, now=moment)
    if known_categories is None:
        known_categories = list_known_categories(db, config)
    normal = normalize_email(email)
    fields = _checked_fields(config, name, editions, categories, known_categories)
    address_key = _address_key(secret, normal)
    with transaction(db):
        # One sign-up at a time, on every host: the address limit and "is the address new?"
        # are checked and written in one go (SQLite's write lock does this by itself).
        serialize(db, SIGNUP_LOCK)
        if _address_limited(db, address_key, moment):
            return None
        subscriber = _find_or_add_pending(db, config, normal, fields, known_categories, moment)
        detail = {"form_version": config.web.form_version, "asked_at": iso(moment)}
        record_event(
            db, subscriber["id"], "signup", "web", {**detail, "status": subscriber["status"]}, now=moment
        )
        kind = "already-subscribed" if subscriber["status"] == "active" else "confirm"
        context = subscriber_links(config, secret, subscriber, now=moment)
        row = queue_message(db, config, kind, subscriber, context, now=moment)
        db.execute("INSERT INTO signup_mails (address, at) VALUES (?, ?)", [address_key, iso(moment)])
    if send:
        send_outbox(db, config, ids=[row], now=moment)
    return row


def _find_or_add_pending(
    db: sqlite_utils.Database,
    config: Config,
    normal: str,
    fields: dict,
    known_categories: list[str],
    moment: datetime,
) -> dict:
    """The subscriber with this address, or a new pending one (a suppressed address too)."""
    subscriber = find_subscriber(db, normal)
    if subscriber is None:
        subscriber = add_subscriber(
            db,
            normal,
            **fields,
            status="pending",
            source="web",
            resubscribe=True,  # only read for a suppressed address: it becomes pending
            known_editions=list(config.editions) or None,
            known_categories=known_categories or None,
            now=moment,
        )
    return subscriber


def _checked_fields(
    config: Config,
    name: str,
    editions: Iterable[str] | None,
    categories: Iterable[str] | None,
    known_categories: list[str],
) -> dict:
    """The form's name, editions and categories as stored; raises InvalidValue for a bad one."""
    return {
        "name": normalize_name(name),
        "editions": normalize_labels(editions, what="edition", known=list(config.editions) or None),
        "categories": normalize_labels(categories, what="category", known=known_categories or None),
    }


def send_confirmations(
    db: sqlite_utils.Database,
    config: Config,
    secret: bytes,
    subscriber_ids: Iterable[int],
    *,
    now: datetime | None = None,
) -> OutboxReport:
    """Queue a confirmation email for each pending subscriber in ``subscriber_ids``, then send them.

    The CLI's path (``subscribers add --pending``, ``subscribers import --send-confirmations``);
    subscribers who are not pending are skipped.
    """
    moment = now or utcnow()
    rows: list[int] = []
    for subscriber_id in subscriber_ids:
        subscriber = get_subscriber(db, subscriber_id)
        if subscriber["status"] != "pending":
            continue
        context = subscriber_links(config, secret, subscriber, now=moment)
        rows.append(queue_message(db, config, "confirm", subscriber, context, now=moment))
    return send_outbox(db, config, ids=rows, now=moment)


def welcome(
    db: sqlite_utils.Database,
    config: Config,
    secret: bytes,
    subscriber_id: int,
    *,
    now: datetime | None = None,
) -> OutboxReport:
    """Queue and send the welcome email (links to the latest issue, the archive, preferences)."""
    moment = now or utcnow()
    queued = queue_welcome(db, config, secret, subscriber_id, now=moment)
    return send_outbox(db, config, ids=[queued], now=moment)


def queue_welcome(
    db: sqlite_utils.Database,
    config: Config,
    secret: bytes,
    subscriber_id: int,
    *,
    now: datetime | None = None,
) -> int:
    """Queue the welcome email without sending it; returns the outbox row (the web app sends it
    after answering)."""
    moment = now or utcnow()
    subscriber = get_subscriber(db, subscriber_id)
    base = config.publication.base_url.rstrip("/")
    latest = latest_sent_issue_id(db)
    context = {
        **subscriber_links(config, secret, subscriber, now=moment),
        "latest_url": f"{base}/issues/{latest}" if latest is not None else "",
        "archive_url": f"{base}/archive",
    }
    return queue_message(db, config, "welcome", subscriber, context, now=moment)


def remove_stale_pending(
    db: sqlite_utils.Database,
    config: Config,
    *,
    forget_deliveries: ForgetDeliveries,
    now: datetime | None = None,
) -> int:
    """Remove pending subscribers who neither confirmed nor asked again for ``pending_days``.

    They are erased like ``subscribers remove`` (consent record kept under a hash), but
    an address that never confirmed is not put on the suppression list: it may sign up again.
    One that was on it before (removed, then asked again) stays on it: only a confirmation
    lifts it (``subscribers.store.confirm``). ``forget_deliveries`` blanks their address in the
    ledger (:func:`subscribers.store.remove_subscriber`).
    """
    moment = now or utcnow()
    cutoff = iso(moment - timedelta(days=max(config.subscribers.pending_days, 1)))
    rows = stale_pending_ids(db, cutoff)
    for subscriber_id in rows:
        with transaction(db):
            was_suppressed = subscribed_while_suppressed(db, subscriber_id)
            removed = remove_subscriber(
                db, subscriber_id, forget_deliveries=forget_deliveries, source="cli", now=moment
            )
            if not was_suppressed:
                lift_suppression(db, removed["email_hash"])
    return len(rows)


def rate_key(secret: bytes, purpose: str, value: str) -> str:
    """What a rate-limit table stores for ``value`` (an address, a client): its HMAC under
    ``purpose``, 32 hex digits, so the table never holds the address or the IP itself."""
    return hmac.new(secret, f"{purpose}/{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _address_key(secret: bytes, email: str) -> str:
    return rate_key(secret, "signup-address", canonical_address(email))


def _address_limited(db: sqlite_utils.Database, key: str, moment: datetime) -> bool:
    db.execute(
        "DELETE FROM signup_mails WHERE address = ? AND at < ?", [key, iso(moment - ADDRESS_LIMITS[-1][0])]
    )
    for window, most in ADDRESS_LIMITS:
        count = db.execute(
            "SELECT count(*) FROM signup_mails WHERE address = ? AND at > ?", [key, iso(moment - window)]
        ).fetchone()[0]
        if count >= most:
            return True
    return False


def client_key(client: str) -> str:
    """What the per-client limit counts by: an IPv4 address whole, an IPv6 address by its /64
    (one subscriber line or host gets a whole /64, so each of its addresses is the same client);
    anything else as it is."""
    try:
        address = ipaddress.ip_address(client.strip())
    except ValueError:
        return client.strip()
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def count_signup_post(
    db: sqlite_utils.Database, config: Config, secret: bytes, client: str, *, now: datetime | None = None
) -> None:
    """Count one sign-up POST from ``client`` (committed at once, whatever the request turns out
    to be); raises TooManyRequests past ``web.signup_posts_per_hour`` (a refused POST is not
    counted). No client (the CLI, a test) means no limit. The posts of one client are counted
    one at a time whichever web instance gets them (:func:`~digest.store.db_lock.serialize`);
    the client's own expired rows go here, everyone's in :func:`forget_old_requests`."""
    if not client:
        return
    moment = now or utcnow()
    key = rate_key(secret, "signup-client", client_key(client))
    since = iso(moment - CLIENT_WINDOW)
    with transaction(db):
        serialize(db, f"signup-client/{key}")
        db.execute("DELETE FROM signup_posts WHERE client = ? AND at < ?", [key, since])
        count = db.execute(
            "SELECT count(*) FROM signup_posts WHERE client = ? AND at >= ?", [key, since]
        ).fetchone()[0]
        if count >= config.web.signup_posts_per_hour:
            raise TooManyRequests("too many sign-up requests from this address; try again in an hour")
        db.execute("INSERT INTO signup_posts (client, at) VALUES (?, ?)", [key, iso(moment)])


def forget_old_requests(db: sqlite_utils.Database, *, now: datetime | None = None) -> int:
    """Delete the sign-up limits' rows past their windows (those of clients and addresses that
    did not come back: the checks only delete their own); returns how many."""
    moment = now or utcnow()
    with transaction(db):
        posts = db.execute("DELETE FROM signup_posts WHERE at < ?", [iso(moment - CLIENT_WINDOW)]).rowcount
        mails = db.execute(
            "DELETE FROM signup_mails WHERE at < ?", [iso(moment - ADDRESS_LIMITS[-1][0])]
        ).rowcount
    return max(posts, 0) + max(mails, 0)


def list_upkeep(
    db: sqlite_utils.Database,
    config: Config,
    *,
    forget_deliveries: ForgetDeliveries,
    now: datetime | None = None,
) -> list[str]:
    """``digest run``'s share of the list: retry the outbox, delete its old sent rows, remove
    stale pending sign-ups (``forget_deliveries`` as for :func:`remove_stale_pending`).

    Returns lines for the run's report (nothing when there was nothing to do). A
    transport that is down leaves the outbox queued for the next run.
    """
    notes: list[str] = []
    report = send_outbox(db, config, now=now)
    if report.sent or report.retry or report.failed:
        notes.append(report.summary())
    deleted = delete_old_rows(db, now=now)
    if deleted:
        notes.append(
            f"outbox: deleted {deleted} message{'s' if deleted != 1 else ''}"
            f" older than {OUTBOX_KEEP.days} days"
        )
    forget_old_requests(db, now=now)
    removed = remove_stale_pending(db, config, forget_deliveries=forget_deliveries, now=now)
    if removed:
        days = config.subscribers.pending_days
        notes.append(
            f"removed {removed} pending subscriber{'s' if removed != 1 else ''} unconfirmed after {days} days"
        )
    return notes
