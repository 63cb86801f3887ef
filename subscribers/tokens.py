"""Signed, purpose-bound, per-subscriber tokens for the links in every email.

A token is ``<subscriber id>.<mac>`` (unsubscribe, preferences) or
``<subscriber id>.<issued unix time>.<mac>`` (confirm, which expires), where
the MAC is HMAC-SHA256 over the purpose and those fields, base64url without
padding. The purpose is inside the MAC, so an unsubscribe token never works as
a confirm token. Unsubscribe and preferences tokens are stable per subscriber,
so the links in an old issue keep working. Verification recomputes the MAC and
compares the text with :func:`hmac.compare_digest`.

The secret comes from ``DIGEST_SECRET`` or, when that is unset, from a key file
``digest.key`` beside the database, generated on first use with mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.config import Config
from digest.errors import DigestError
from digest.store.database import utcnow

PURPOSES = ("confirm", "unsubscribe", "preferences")
CONFIRM_TTL = timedelta(days=7)
KEY_FILE = "digest.key"
MIN_SECRET_BYTES = 16
"""A shorter DIGEST_SECRET could be guessed offline from one token; refuse it."""
_CLOCK_SKEW = timedelta(minutes=5)
_TOKEN = re.compile(r"([1-9][0-9]{0,17})(?:\.([1-9][0-9]{0,11}))?\.([A-Za-z0-9_-]{43})")


class InvalidToken(DigestError):
    """A token that is malformed, altered, for another purpose, or expired."""


class TokenExpired(InvalidToken):
    """A well-signed confirm token older than :data:`CONFIRM_TTL`."""


class TokenSigner:
    """Makes and checks tokens with the HMAC key prepared once.

    A send makes two tokens per recipient; keying HMAC-SHA256 afresh for each would cost
    more than the rest of the per-recipient work.
    """

    def __init__(self, secret: bytes | str) -> None:
        self._keyed = hmac.new(_key(secret), digestmod=hashlib.sha256)

    def digest(self, purpose: str, body: str) -> bytes:
        """The raw HMAC-SHA256 of ``body`` for ``purpose`` (any purpose: VERP tokens use "verp")."""
        h = self._keyed.copy()
        h.update(f"digest-token/v1/{purpose}/{body}".encode("ascii"))
        return h.digest()

    def mac(self, purpose: str, body: str) -> str:
        """The base64url MAC of ``body`` for ``purpose``."""
        return base64.urlsafe_b64encode(self.digest(purpose, body)).rstrip(b"=").decode("ascii")

    def token(self, subscriber_id: int, purpose: str, *, now: datetime | None = None) -> str:
        """A token naming ``subscriber_id`` for ``purpose``; confirm tokens carry their issue time."""
        _check_purpose(purpose)
        if not isinstance(subscriber_id, int) or subscriber_id < 1:
            raise ValueError(f"subscriber id must be a positive integer, not {subscriber_id!r}")
        body = str(subscriber_id)
        if purpose == "confirm":
            body += f".{int((now or utcnow()).timestamp())}"
        return f"{body}.{self.mac(purpose, body)}"


def make_token(secret: bytes, subscriber_id: int, purpose: str, *, now: datetime | None = None) -> str:
    """A token naming ``subscriber_id`` for ``purpose``; confirm tokens carry their issue time."""
    return TokenSigner(secret).token(subscriber_id, purpose, now=now)


def verify_token(secret: bytes, token: str, purpose: str, *, now: datetime | None = None) -> int:
    """The subscriber id in a valid ``purpose`` token; raises :class:`InvalidToken` otherwise."""
    _check_purpose(purpose)
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise InvalidToken("the link is incomplete or altered")
    subscriber_id, issued, mac = match.groups()
    if (issued is not None) != (purpose == "confirm"):
        raise InvalidToken("the link is not valid for this action")
    body = subscriber_id if issued is None else f"{subscriber_id}.{issued}"
    if not hmac.compare_digest(TokenSigner(secret).mac(purpose, body), mac):
        raise InvalidToken("the link is incomplete or altered")
    if issued is not None:
        age = (now or utcnow()) - datetime.fromtimestamp(int(issued), tz=UTC)
        if age > CONFIRM_TTL:
            raise TokenExpired("the confirmation link has expired; sign up again to get a new one")
        if age < -_CLOCK_SKEW:
            raise InvalidToken("the link is not valid yet")
    return int(subscriber_id)


def load_secret(config: Config) -> bytes:
    """The signing secret: ``DIGEST_SECRET``, else the key file beside the database (made if missing)."""
    if config.secret:
        secret = config.secret.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise DigestError(
                f"DIGEST_SECRET is too short ({len(secret)} bytes); use at least {MIN_SECRET_BYTES} random "
                "characters, e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return secret
    path = config.db_path.parent / KEY_FILE
    return _read_or_create_key(path)


def _read_or_create_key(path: Path) -> bytes:
    if not path.exists():
        if not path.parent.is_dir():
            raise DigestError(
                f"{path.parent}: folder does not exist; create it, or set DIGEST_SECRET in the environment"
            )
        _create_key(path)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise DigestError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    if len(key) < 32:
        raise DigestError(f"{path}: the signing key is too short; delete the file to generate a new one")
    return key


def _create_key(path: Path) -> None:
    """Write a fresh key atomically: temp file (0600) then link, so a racing process reads a whole key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process made it first; use theirs
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _key(secret: bytes | str) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("empty signing secret")
    return key


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}; one of {', '.join(PURPOSES)}")
