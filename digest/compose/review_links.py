"""The review link mailed to an editor: ``/desk/issues/<edition>/<number>?review=<token>``.

The token is ``<issue id>.<expires unix time>.<editor, base64url>.<mac>``, the MAC being
:meth:`subscribers.tokens.TokenSigner.mac` with purpose ``"review"`` over the rest: it names
one issue and one editor, cannot be altered or used for another purpose (a reader's
unsubscribe token never verifies here), and expires after :data:`REVIEW_TTL`. The desk checks
it with :func:`verify_review_token` (constant-time compare) and that the issue id is the one
in the path; the address must still be in ``[publication] editors``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from digest.config import Config
from digest.store.database import utcnow
from subscribers.tokens import InvalidToken, TokenExpired, TokenSigner

REVIEW_PURPOSE = "review"
REVIEW_TTL = timedelta(days=7)
_TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})")


def desk_url(config: Config, issue: dict[str, Any]) -> str:
    """The desk page of ``issue`` (no token: safe to print and log)."""
    base = config.publication.base_url.rstrip("/")
    return f"{base}/desk/issues/{quote(issue['edition'], safe='')}/{int(issue['number'])}"


def make_review_token(secret: bytes | str, issue_id: int, editor: str, *, now: datetime | None = None) -> str:
    """A review token for ``editor`` (an address) on issue ``issue_id``, valid for :data:`REVIEW_TTL`."""
    expires = int(((now or utcnow()) + REVIEW_TTL).timestamp())
    who = base64.urlsafe_b64encode(editor.strip().lower().encode("utf-8")).rstrip(b"=").decode("ascii")
    body = f"{int(issue_id)}.{expires}.{who}"
    return f"{body}.{TokenSigner(secret).mac(REVIEW_PURPOSE, body)}"


def verify_review_token(secret: bytes | str, token: str, *, now: datetime | None = None) -> tuple[int, str]:
    """``(issue id, editor address)`` of a valid review token; raises
    :class:`~subscribers.tokens.InvalidToken` (altered, another purpose) or
    :class:`~subscribers.tokens.TokenExpired`."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise InvalidToken("the review link is incomplete or altered")
    issue_id, expires, who, mac = match.groups()
    body = f"{issue_id}.{expires}.{who}"
    if not hmac.compare_digest(TokenSigner(secret).mac(REVIEW_PURPOSE, body), mac):
        raise InvalidToken("the review link is incomplete or altered")
    if (now or utcnow()) > datetime.fromtimestamp(int(expires), tz=UTC):
        raise TokenExpired("the review link has expired; sign in to the desk instead")
    try:
        editor = base64.urlsafe_b64decode(who + "=" * (-len(who) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidToken("the review link is incomplete or altered") from None
    return int(issue_id), editor


def review_url(config: Config, secret: bytes | str, issue: dict[str, Any], editor: str) -> str:
    """The signed review link for ``editor`` to ``issue``'s desk page."""
    return f"{desk_url(config, issue)}?review={make_review_token(secret, issue['id'], editor)}"
