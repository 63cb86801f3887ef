"""The desk's editors: who they are, how they sign in, and what their session cookie says.

Owner of the tables ``editors``, ``editor_signins`` and ``editor_signin_requests``. Called by
the CLI (``digest editors add|list|remove|link``) and by the desk (:mod:`digest.web.desk`);
it sits in a layer of its own, below the web and above sign-up, because it counts requests
per client as :func:`digest.signup.client_key` does and mails through :mod:`digest.mail.outbox`.

- :func:`add_editor`, :func:`list_editors`, :func:`remove_editor`, :func:`get_editor`.
- :func:`signin_link` — a sign-in link for an editor (``digest editors link`` prints it).
- :func:`request_signin` — the desk's sign-in form: counts the request per address and per
  client (:class:`TooManySignins`), then queues the link as an outbox message of kind
  ``signin`` for an editor, nothing for anyone else (the caller answers the same either way).
- :func:`redeem_signin` — a sign-in link was used: checks its signature (constant time), its
  age (:data:`SIGNIN_TTL`) and that it was never used before, then marks it used.
- :func:`session_cookie`, :func:`session_editor`, :func:`csrf_token`, :func:`csrf_ok` — the
  signed session (:data:`SESSION_TTL`) and the CSRF token tied to it.

No password is stored anywhere. Every token is ``fields.mac`` where the MAC is
:meth:`subscribers.tokens.TokenSigner.mac` under a purpose of its own (``editor-signin``,
``editor-session``, ``editor-csrf``), so a reader's unsubscribe or preferences token, whose
purpose and shape differ, never passes as one of these.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError, NotFound
from digest.mail.outbox import queue_message
from digest.signup import client_key, rate_key
from digest.store.database import iso, transaction, utcnow
from digest.store.db_lock import serialize
from subscribers.model import canonical_address, normalize_email
from subscribers.tokens import TokenSigner

SIGNIN_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
SIGNIN_ADDRESS_LIMIT = (timedelta(minutes=15), 3)
"""(window, most sign-in requests for one address in it)."""
SIGNIN_CLIENT_LIMIT = (timedelta(hours=1), 10)
"""(window, most sign-in requests from one client, an IPv6 client by its /64, in it)."""
_CLOCK_SKEW = timedelta(minutes=2)
_COLUMNS = "SELECT id, email, added_at, last_signin_at FROM editors"
_SIGNIN = re.compile(r"([1-9][0-9]{0,17})\.([1-9][0-9]{0,11})\.([0-9a-f]{32})\.([A-Za-z0-9_-]{43})")
_SESSION = re.compile(r"([1-9][0-9]{0,17})\.([1-9][0-9]{0,11})\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")


class InvalidSignin(DigestError):
    """A sign-in link or session that is malformed, altered, expired, used, or of a removed editor."""


class TooManySignins(DigestError):
    """Too many sign-in requests for one address or from one client; answer 429."""


# ---------------------------------------------------------------- the editors


def add_editor(db: sqlite_utils.Database, email: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Add ``email`` as an editor; raises DigestError when it is one already (InvalidValue if bad)."""
    address = normalize_email(email)
    with transaction(db):
        if _find(db, address) is not None:
            raise DigestError(f"{address} is already an editor; see `digest editors list`")
        db.execute("INSERT INTO editors (email, added_at) VALUES (?, ?)", [address, iso(now or utcnow())])
    return get_editor(db, address)


def list_editors(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every editor, by address."""
    return list(db.query(f"{_COLUMNS} ORDER BY email"))


def get_editor(db: sqlite_utils.Database, email: str) -> dict[str, Any]:
    """The editor with this address; raises NotFound."""
    row = _find(db, normalize_email(email))
    if row is None:
        raise NotFound(f"{email.strip()} is not an editor; see `digest editors list`")
    return row


def remove_editor(db: sqlite_utils.Database, email: str) -> dict[str, Any]:
    """Remove an editor: their unused links and their sessions stop working at once."""
    with transaction(db):
        row = get_editor(db, email)
        db.execute("DELETE FROM editor_signins WHERE editor_id = ?", [row["id"]])
        db.execute("DELETE FROM editors WHERE id = ?", [row["id"]])
    return row


def _find(db: sqlite_utils.Database, address: str) -> dict[str, Any] | None:
    rows = list(db.query(f"{_COLUMNS} WHERE email = ?", [address]))
    return rows[0] if rows else None


def _by_id(db: sqlite_utils.Database, editor_id: int) -> dict[str, Any] | None:
    rows = list(db.query(f"{_COLUMNS} WHERE id = ?", [editor_id]))
    return rows[0] if rows else None


# ---------------------------------------------------------------- sign-in links


def signin_link(
    db: sqlite_utils.Database,
    config: Config,
    secret: bytes,
    email: str,
    *,
    next_path: str = "",
    now: datetime | None = None,
) -> str:
    """A fresh single-use sign-in link for the editor ``email`` (raises NotFound for anyone else).

    ``next_path`` (a ``/desk`` path) is where the desk goes once signed in."""
    editor = get_editor(db, email)
    moment = now or utcnow()
    nonce = secrets.token_hex(16)
    with transaction(db):
        db.execute("DELETE FROM editor_signins WHERE issued_at < ?", [iso(moment - SIGNIN_TTL - _CLOCK_SKEW)])
        db.execute(
            "INSERT INTO editor_signins (nonce, editor_id, issued_at) VALUES (?, ?, ?)",
            [nonce, editor["id"], iso(moment)],
        )
    body = f"{editor['id']}.{int(moment.timestamp())}.{nonce}"
    token = f"{body}.{TokenSigner(secret).mac('editor-signin', body)}"
    url = f"{config.publication.base_url.rstrip('/')}/desk/signin/{token}"
    return f"{url}?next={next_path}" if safe_next(next_path) and next_path != "/desk" else url


def safe_next(path: str) -> bool:
    """True for a desk path to go to after signing in (never another site)."""
    if not re.fullmatch(r"/desk(/[A-Za-z0-9_./-]*)?", path or ""):
        return False
    return "//" not in path and ".." not in path


def request_signin(
    db: sqlite_utils.Database,
    config: Config,
    secret: bytes,
    email: str,
    *,
    client: str = "",
    next_path: str = "",
    now: datetime | None = None,
) -> int | None:
    """The sign-in form was posted: the queued outbox row of the link, or None.

    None for an address that is not an editor's (or not an address): the caller answers
    the same page either way. Raises :class:`TooManySignins` past either limit; a refused
    request is not counted. Requests are counted under keyed hashes, never the address.
    """
    moment = now or utcnow()
    try:
        address = normalize_email(email)
    except DigestError:
        address = ""
    keys = []
    if client:
        keys.append((_key(secret, "client", client_key(client)), SIGNIN_CLIENT_LIMIT))
    if address:
        keys.append((_key(secret, "address", canonical_address(address)), SIGNIN_ADDRESS_LIMIT))
    with transaction(db):
        serialize(db, "editor-signin")  # counted one at a time on every web instance (rare: editors)
        db.execute("DELETE FROM editor_signin_requests WHERE at < ?", [iso(moment - SIGNIN_CLIENT_LIMIT[0])])
        for key, (window, most) in keys:
            count = db.execute(
                "SELECT count(*) FROM editor_signin_requests WHERE key = ? AND at > ?",
                [key, iso(moment - window)],
            ).fetchone()[0]
            if count >= most:
                raise TooManySignins("too many sign-in requests; try again in a while")
        for key, _ in keys:
            db.execute("INSERT INTO editor_signin_requests (key, at) VALUES (?, ?)", [key, iso(moment)])
    if not address or _find(db, address) is None:
        return None
    url = signin_link(db, config, secret, address, next_path=next_path, now=moment)
    minutes = int(SIGNIN_TTL.total_seconds() // 60)
    with transaction(db):
        return queue_message(
            db, config, "signin", {"email": address}, {"signin_url": url, "minutes": minutes}, now=moment
        )


def redeem_signin(
    db: sqlite_utils.Database, secret: bytes, token: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """The editor a sign-in link names, marking the link used; raises :class:`InvalidSignin`."""
    match = _SIGNIN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise InvalidSignin("this sign-in link is incomplete or altered")
    editor_id, issued, nonce, mac = match.groups()
    body = f"{editor_id}.{issued}.{nonce}"
    if not hmac.compare_digest(TokenSigner(secret).mac("editor-signin", body), mac):
        raise InvalidSignin("this sign-in link is incomplete or altered")
    moment = now or utcnow()
    age = moment - datetime.fromtimestamp(int(issued), tz=UTC)
    if age > SIGNIN_TTL or age < -_CLOCK_SKEW:
        raise InvalidSignin("this sign-in link has expired; ask for a new one")
    with transaction(db):
        used = db.execute(
            "UPDATE editor_signins SET used_at = ? WHERE nonce = ? AND editor_id = ? AND used_at IS NULL",
            [iso(moment), nonce, int(editor_id)],
        ).rowcount
        if used != 1:
            raise InvalidSignin("this sign-in link was used already; ask for a new one")
        db.execute("UPDATE editors SET last_signin_at = ? WHERE id = ?", [iso(moment), int(editor_id)])
    editor = _by_id(db, int(editor_id))
    if editor is None:
        raise InvalidSignin("this sign-in link is no longer valid")
    return editor


# ---------------------------------------------------------------- sessions and CSRF


def session_cookie(secret: bytes, editor_id: int, *, now: datetime | None = None) -> str:
    """The value of a new session cookie for ``editor_id``: signed, valid :data:`SESSION_TTL`."""
    body = f"{editor_id}.{int((now or utcnow()).timestamp())}.{secrets.token_hex(8)}"
    return f"{body}.{TokenSigner(secret).mac('editor-session', body)}"


def session_editor(
    db: sqlite_utils.Database, secret: bytes, cookie: str | None, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """The signed-in editor a session cookie names; None when it is missing, altered, expired,
    or the editor was removed."""
    match = _SESSION.fullmatch(cookie) if isinstance(cookie, str) else None
    if match is None:
        return None
    editor_id, issued, nonce, mac = match.groups()
    body = f"{editor_id}.{issued}.{nonce}"
    if not hmac.compare_digest(TokenSigner(secret).mac("editor-session", body), mac):
        return None
    age = (now or utcnow()) - datetime.fromtimestamp(int(issued), tz=UTC)
    if age > SESSION_TTL or age < -_CLOCK_SKEW:
        return None
    return _by_id(db, int(editor_id))


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token every desk form carries: a MAC of this session's cookie."""
    return TokenSigner(secret).mac("editor-csrf", cookie)


def csrf_ok(secret: bytes, cookie: str, token: str | None) -> bool:
    """True when ``token`` is this session's CSRF token (constant-time comparison)."""
    return bool(token) and hmac.compare_digest(csrf_token(secret, cookie), str(token))


def _key(secret: bytes, what: str, value: str) -> str:
    return rate_key(secret, f"editor-signin-{what}", value)
