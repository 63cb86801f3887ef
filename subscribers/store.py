"""The subscriber list: owner of the ``subscribers`` table (and the id floor).

Reads, status changes and preferences; each change writes its consent event (:mod:`subscribers.events`)
in the same transaction, and a removal puts the address on :mod:`subscribers.suppressions`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlite_utils

from digest.errors import DigestError, NotFound
from digest.store.database import MAX_ID, iso, transaction, utcnow
from digest.store.db_lock import serialize
from subscribers.eligibility import FOLD_FUNCTION, eligibility_sql, fold, register_fold
from subscribers.events import (
    LAST_BOUNCE_ISSUE_SQL,
    SIGNED_UP_SINCE_SQL,
    as_detail,
    check_source,
    forget_address_in_events,
    record_event,
)
from subscribers.model import (
    STATUSES,
    InvalidValue,
    decode_labels,
    email_hash,
    encode_labels,
    normalize_columns,
    normalize_email,
    normalize_labels,
    normalize_name,
    normalize_status,
    normalize_timezone,
)
from subscribers.suppressions import is_suppressed, lift_suppression, suppress


class _Unchanged:
    """Sentinel: leave this field as it is."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()
PAGE = 1000
_COLUMNS = (
    "id, email, name, status, editions, categories, timezone, source, attributes, "
    "created_at, updated_at, confirmed_at, unsubscribed_at"
)
_COLUMN_NAMES = tuple(_COLUMNS.split(", "))


def subscriber_row(row: tuple) -> dict:
    """A subscribers row as a dict with editions/categories as lists (or None) and attributes as a dict."""
    data = dict(zip(_COLUMN_NAMES, row, strict=True))
    data["editions"] = decode_labels(data.get("editions"))
    data["categories"] = decode_labels(data.get("categories"))
    data["attributes"] = json.loads(data.get("attributes") or "{}")
    return data


def _select(db: sqlite_utils.Database, where: str, params: list[Any]) -> list[dict]:
    cursor = db.execute(f"SELECT {_COLUMNS} FROM subscribers WHERE {where}", params)
    return [subscriber_row(r) for r in cursor.fetchall()]


def find_subscriber(db: sqlite_utils.Database, email: str) -> dict | None:
    """The subscriber with this address (any case), or None."""
    try:
        normal = normalize_email(email)
    except InvalidValue:
        normal = email.strip().lower()
    rows = _select(db, "email = ?", [normal])
    return rows[0] if rows else None


def get_subscriber(db: sqlite_utils.Database, email_or_id: str | int) -> dict:
    """The subscriber with this id or address; raises :class:`NotFound`."""
    if isinstance(email_or_id, int) or (isinstance(email_or_id, str) and email_or_id.isdigit()):
        if int(email_or_id) > MAX_ID:  # SQLite cannot look it up; PostgreSQL would find nothing
            raise NotFound(f"subscriber {email_or_id} not found: ids are at most {MAX_ID}")
        rows = _select(db, "id = ?", [int(email_or_id)])
        if rows:
            return rows[0]
        raise NotFound(f"no subscriber with id {email_or_id}")
    found = find_subscriber(db, email_or_id)
    if found is None:
        raise NotFound(f"no subscriber {email_or_id.strip()!r}; see `digest subscribers list`")
    return found


SUBSCRIBER_IDS_LOCK = "subscriber-ids"  # what transactions that hand out ids serialize on


def next_subscriber_id(db: sqlite_utils.Database) -> int:
    """The id for the next new subscriber: never one a removed subscriber had, so old links stay
    dead. It is this transaction's until it ends (on PostgreSQL two adders on two hosts would
    otherwise read one max and the second fail on the key; SQLite's one writer orders them)."""
    serialize(db, SUBSCRIBER_IDS_LOCK)
    row = db.execute(
        "SELECT max(coalesce((SELECT max(id) FROM subscribers), 0),"
        " coalesce((SELECT max(id) FROM subscriber_id_floor), 0))"
    ).fetchone()
    return int(row[0]) + 1


def add_subscriber(
    db: sqlite_utils.Database,
    email: str,
    *,
    name: str | None = "",
    editions: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    timezone: str | None = None,
    status: str = "active",
    source: str = "cli",
    attributes: dict | None = None,
    check_deliverability: bool = False,
    resubscribe: bool = False,
    known_editions: Iterable[str] | None = None,
    known_categories: Iterable[str] | None = None,
    now: datetime | None = None,
) -> dict:
    """Add one address (active, or pending for double opt-in) and record a ``subscribe`` event.

    Raises DigestError when the address is already on the list, or was removed
    (suppressed) and ``resubscribe`` is not set. With ``resubscribe`` an active address
    leaves the suppression list at once; a pending one stays on it until it confirms
    (:func:`confirm`), because anyone can type an address into a sign-up form.
    """
    check_source(source)
    normal = normalize_email(email, check_deliverability=check_deliverability)
    values = normalize_columns(name, status, editions, categories, timezone, known_editions, known_categories)
    at = iso(now or utcnow())
    with transaction(db):
        suppressed = _refuse_known(db, normal, resubscribe=resubscribe)
        if suppressed and values["status"] != "pending":
            lift_suppression(db, email_hash(normal))
        subscriber_id = next_subscriber_id(db)
        db.execute(
            "INSERT INTO subscribers (id, email, name, status, editions, categories, timezone, source,"
            " attributes, created_at, updated_at, unsubscribed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                subscriber_id,
                normal,
                values["name"],
                values["status"],
                values["editions"],
                values["categories"],
                values["timezone"],
                source,
                json.dumps(attributes or {}, ensure_ascii=False),
                at,
                at,
                at if values["status"] == "unsubscribed" else None,
            ],
        )
        detail: dict[str, Any] = {"status": values["status"]}
        if suppressed:
            detail["was_suppressed"] = True
        record_event(db, subscriber_id, "subscribe", source, detail, now=now)
    return get_subscriber(db, subscriber_id)


def _refuse_known(db: sqlite_utils.Database, normal: str, *, resubscribe: bool) -> bool:
    """Refuse an address on the list, or a removed one without ``resubscribe``; True when suppressed."""
    existing = find_subscriber(db, normal)
    if existing is not None:
        hint = "change it with `digest subscribers set`"
        if existing["status"] in ("unsubscribed", "bounced"):
            hint = "add it back with `digest subscribers resubscribe` if they asked to"
        raise DigestError(f"{normal} is already on the list ({existing['status']}); {hint}")
    suppressed = is_suppressed(db, normal)
    if suppressed and not resubscribe:
        raise DigestError(
            f"{normal} was removed from the list earlier; add it again only if they asked to, "
            "with --resubscribe"
        )
    return suppressed


def list_subscribers(
    db: sqlite_utils.Database,
    *,
    status: str | None = None,
    edition: str | None = None,
    category: str | None = None,
) -> Iterator[dict]:
    """Subscribers ordered by id, streamed page by page, optionally filtered.

    ``edition``/``category`` match subscribers who receive it (NULL = all).
    """
    where, params = ["id > ?"], [0]
    if status is not None:
        where.append("status = ?")
        params.append(normalize_status(status))
    if edition is not None:
        where.append("(editions IS NULL OR EXISTS (SELECT 1 FROM json_each(editions) WHERE value = ?))")
        params.append(edition)
    if category is not None:
        register_fold(db)
        where.append(
            "(categories IS NULL OR EXISTS"
            f" (SELECT 1 FROM json_each(categories) WHERE {FOLD_FUNCTION}(value) = ?))"
        )
        params.append(fold(category))
    yield from _paged(db, " AND ".join(where), params)


def _paged(db: sqlite_utils.Database, where: str, params: list[Any]) -> Iterator[dict]:
    """Keyset pagination on id (params[0] is the id cursor): no long read transaction, flat memory."""
    while True:
        rows = _select(db, f"{where} ORDER BY id LIMIT {PAGE}", params)
        yield from rows
        if len(rows) < PAGE:
            return
        params = [rows[-1]["id"], *params[1:]]


def eligible_subscribers(
    db: sqlite_utils.Database, edition_key: str, issue_categories: Iterable[str]
) -> Iterator[dict]:
    """Subscribers who get an issue of ``edition_key`` with ``issue_categories``: the rule of
    :mod:`subscribers.eligibility` (active, the edition, a category under Unicode case
    folding). Streams in id order."""

    rule, params = eligibility_sql(db, edition_key, issue_categories)
    yield from _paged(db, f"id > ? AND {rule}", [0, *params])


def count_subscribers(db: sqlite_utils.Database, *, status: str | None = None) -> int:
    """How many subscribers there are (of one status, if given)."""
    where, params = ("", []) if status is None else ("WHERE status = ?", [status])
    return int(db.execute(f"SELECT count(*) FROM subscribers {where}", params).fetchone()[0])


ACTIVE_IDS_SQL = "SELECT id FROM subscribers WHERE status = 'active'"
"""The ids of the active subscribers, as a subquery (the ledger requeues only their rows)."""


def reader_scope(db: sqlite_utils.Database, subscriber_id: int) -> tuple[str, str | None, str | None] | None:
    """(status, editions, categories) as stored (labels JSON-encoded), or None when removed."""
    return db.execute(
        "SELECT status, editions, categories FROM subscribers WHERE id = ?", [subscriber_id]
    ).fetchone()


def pending_ids_from(db: sqlite_utils.Database, first_id: int) -> list[int]:
    """Ids of the pending subscribers from ``first_id`` on (what an import just added), in order."""
    sql = "SELECT id FROM subscribers WHERE id >= ? AND status = 'pending' ORDER BY id"
    return [r[0] for r in db.execute(sql, [first_id])]


def stale_pending_ids(db: sqlite_utils.Database, cutoff: str) -> list[int]:
    """Ids of the pending subscribers created before ``cutoff`` who did not sign up again since."""
    sql = "SELECT id FROM subscribers WHERE status = 'pending' AND created_at < ?"
    sql += f" AND NOT {SIGNED_UP_SINCE_SQL}"
    return [r[0] for r in db.execute(sql + " ORDER BY id", [cutoff, cutoff]).fetchall()]


def bounced_ids_naming_issue(db: sqlite_utils.Database, issue_id: int) -> list[int]:
    """Ids of the bounced subscribers whose latest ``bounce`` event names issue ``issue_id``."""
    sql = f"SELECT s.id FROM subscribers s WHERE s.status = 'bounced' AND {LAST_BOUNCE_ISSUE_SQL} = ?"
    return [row[0] for row in db.execute(sql + " ORDER BY s.id", [issue_id]).fetchall()]


def stored_attribute_keys(db: sqlite_utils.Database, *, status: str | None = None) -> list[str]:
    """Every key in the subscribers' (optionally of one status) attributes, sorted."""
    where, params = ("WHERE s.status = ?", [status]) if status else ("", [])
    rows = db.execute(
        f"SELECT DISTINCT j.key FROM subscribers AS s, json_each(s.attributes) AS j {where} ORDER BY j.key",
        params,
    )
    return [key for (key,) in rows]


def count_by_status(db: sqlite_utils.Database) -> dict[str, int]:
    """How many subscribers have each status (every status present, zero when none)."""
    by_status = {status: 0 for status in STATUSES}
    for status, count in db.execute("SELECT status, count(*) FROM subscribers GROUP BY status"):
        by_status[status] = count
    return by_status


def _set_status(
    db: sqlite_utils.Database,
    subscriber_id: int,
    *,
    allowed_from: tuple[str, ...],
    to: str,
    kind: str,
    source: str,
    detail: dict | str | None,
    now: datetime | None,
) -> bool:
    check_source(source)
    at = iso(now or utcnow())
    with transaction(db):
        current = get_subscriber(db, subscriber_id)
        if current["status"] == to or current["status"] not in allowed_from:
            return False
        extra = ""
        params: list[Any] = [to, at]
        if to == "unsubscribed":
            extra = ", unsubscribed_at = ?"
            params.append(at)
        elif to == "active" and current["status"] == "pending":
            extra = ", confirmed_at = ?"
            params.append(at)
        elif to == "active":
            extra = ", unsubscribed_at = NULL"
        db.execute(
            f"UPDATE subscribers SET status = ?, updated_at = ?{extra} WHERE id = ?", [*params, subscriber_id]
        )
        detail = {"from": current["status"], **as_detail(detail)}
        record_event(db, subscriber_id, kind, source, detail, now=now)
    return True


def unsubscribe(
    db: sqlite_utils.Database,
    subscriber_id: int,
    *,
    source: str,
    detail: dict | str | None = None,
    now: datetime | None = None,
) -> bool:
    """Unsubscribe at once; True when the status changed (False if already unsubscribed)."""
    return _set_status(
        db,
        subscriber_id,
        allowed_from=("pending", "active", "bounced"),
        to="unsubscribed",
        kind="unsubscribe",
        source=source,
        detail=detail,
        now=now,
    )


def resubscribe(
    db: sqlite_utils.Database,
    subscriber_id: int,
    *,
    source: str,
    detail: dict | str | None = None,
    now: datetime | None = None,
) -> bool:
    """Make an unsubscribed or bounced subscriber active again; True when the status changed."""
    return _set_status(
        db,
        subscriber_id,
        allowed_from=("unsubscribed", "bounced"),
        to="active",
        kind="resubscribe",
        source=source,
        detail=detail,
        now=now,
    )


def confirm(
    db: sqlite_utils.Database, subscriber_id: int, *, source: str, now: datetime | None = None
) -> bool:
    """Double opt-in: pending → active with ``confirmed_at``; True when it changed.

    An unsubscribed or bounced subscriber is left alone (an old confirm link does not re-add).
    A removed address that signed up again leaves the suppression list here, at its own
    confirmation, not at the request (the event says ``suppression_lifted``).
    """
    with transaction(db):
        current = get_subscriber(db, subscriber_id)
        lift = current["status"] == "pending" and is_suppressed(db, current["email"])
        changed = _set_status(
            db,
            subscriber_id,
            allowed_from=("pending",),
            to="active",
            kind="confirm",
            source=source,
            detail={"suppression_lifted": True} if lift else None,
            now=now,
        )
        if changed and lift:
            lift_suppression(db, email_hash(current["email"]))
    return changed


def mark_bounced(
    db: sqlite_utils.Database,
    subscriber_id: int,
    *,
    detail: dict | str | None,
    now: datetime | None = None,
    source: str = "bounce",
) -> bool:
    """A hard bounce: stop sending to this address (status bounced), recorded with ``source``
    (``bounce``; ``cli`` when marked by hand). True when the status changed."""
    return _set_status(
        db,
        subscriber_id,
        allowed_from=("pending", "active"),
        to="bounced",
        kind="bounce",
        source=source,
        detail=detail,
        now=now,
    )


def set_preferences(
    db: sqlite_utils.Database,
    subscriber_id: int,
    *,
    editions: Iterable[str] | None = UNCHANGED,
    categories: Iterable[str] | None = UNCHANGED,
    timezone: str | None = UNCHANGED,
    name: str | None = UNCHANGED,
    source: str,
    known_editions: Iterable[str] | None = None,
    known_categories: Iterable[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Change editions / categories / timezone / name (None or [] = all; UNCHANGED = keep).

    Records a ``preferences`` event with the old and new values (a name change is
    recorded without the name). Returns the changed fields as ``{field: (old, new)}``.
    """
    check_source(source)
    wanted: dict[str, Any] = {}
    if editions is not UNCHANGED:
        wanted["editions"] = normalize_labels(editions, what="edition", known=known_editions)
    if categories is not UNCHANGED:
        wanted["categories"] = normalize_labels(categories, what="category", known=known_categories)
    if timezone is not UNCHANGED:
        wanted["timezone"] = normalize_timezone(timezone)
    if name is not UNCHANGED:
        wanted["name"] = normalize_name(name)
    at = iso(now or utcnow())
    with transaction(db):
        current = get_subscriber(db, subscriber_id)
        changes = {k: (current[k], v) for k, v in wanted.items() if current[k] != v}
        if not changes:
            return {}
        stored = {
            k: (encode_labels(v) if k in ("editions", "categories") else v)
            for k, (_old, v) in changes.items()
        }
        assignments = ", ".join(f"{k} = ?" for k in stored)
        db.execute(
            f"UPDATE subscribers SET {assignments}, updated_at = ? WHERE id = ?",
            [*stored.values(), at, subscriber_id],
        )
        detail = {k: {"from": old, "to": new} for k, (old, new) in changes.items() if k != "name"}
        if "name" in changes:
            detail["name"] = "changed"
        record_event(db, subscriber_id, "preferences", source, detail, now=now)
    return changes


def remove_subscriber(
    db: sqlite_utils.Database,
    email_or_id: str | int,
    *,
    forget_deliveries: Callable[[sqlite_utils.Database, int, str], None],
    source: str = "cli",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Erase a subscriber's personal data, keeping a one-way hash on the suppression list.

    Deletes the row, has ``forget_deliveries(db, id, email)`` blank the address snapshot in
    ``deliveries`` (:func:`digest.delivery.ledger.forget_reader`, which owns that table and
    sits above this package), keeps the consent record under the hash, and makes sure the id
    is never given to anyone else (old links stay dead). One transaction.
    """
    check_source(source)
    at = iso(now or utcnow())
    with transaction(db):
        subscriber = get_subscriber(db, email_or_id)
        sid, email = subscriber["id"], subscriber["email"]
        digest_ = email_hash(email)
        forget_deliveries(db, sid, email)
        forget_address_in_events(db, sid, email, digest_)
        record_event(
            db, sid, "remove", source, {"from": subscriber["status"]}, now=now, email_hash_value=digest_
        )
        suppress(db, digest_, "removed", at)
        highest = next_subscriber_id(db) - 1  # counts this row, still present
        db.execute("DELETE FROM subscriber_id_floor")
        db.execute("INSERT INTO subscriber_id_floor (id) VALUES (?)", [highest])
        db.execute("DELETE FROM subscribers WHERE id = ?", [sid])
    return {"id": sid, "email_hash": digest_}
