"""The Message-ID of an issue's message to one reader: deterministic, and signed.

``<digest.ISSUE.SUBSCRIBER.MAC@domain>``: the issue and subscriber ids, then 32 hex
digits (128 bits) of HMAC-SHA256 over ``ISSUE.SUBSCRIBER`` for the purpose
``message-id``, keyed with the workspace secret (the key of the links' tokens and
of VERP). It is the same every time for one issue × subscriber, so a resumed send
re-sends the same Message-ID; and nobody without the secret can make one, so a
bounce or complaint that quotes it names that reader and no other
(:meth:`MessageIds.verify`, in constant time). Message-IDs made before they were
signed (16 hex digits of a plain hash) verify as nobody's.
"""

from __future__ import annotations

import functools
import hmac
import re
from email.utils import parseaddr

from digest.config import Config
from subscribers.tokens import TokenSigner, load_secret

MAC_HEX = 32
_ID = "([1-9][0-9]{0,17})"
_OURS = re.compile(rf"<digest\.{_ID}\.{_ID}\.([0-9a-f]{{{MAC_HEX}}})@[^<>@\s]+>")


class MessageIds:
    """Makes and checks signed Message-IDs with the HMAC key prepared once (cheap per message)."""

    def __init__(self, secret: bytes | str, domain: str) -> None:

        self._signer = TokenSigner(secret)
        self.domain = domain

    def _mac(self, issue_id: int, subscriber_id: int) -> str:
        return self._signer.digest("message-id", f"{issue_id}.{subscriber_id}")[: MAC_HEX // 2].hex()

    def make(self, issue_id: int, subscriber_id: int) -> str:
        """The Message-ID of issue ``issue_id`` to subscriber ``subscriber_id``."""
        return f"<digest.{issue_id}.{subscriber_id}.{self._mac(issue_id, subscriber_id)}@{self.domain}>"

    def verify(self, value: str | None) -> tuple[int, int] | None:
        """(issue id, subscriber id) of one of our signed Message-IDs; None for any other text."""
        match = _OURS.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            return None
        issue_id, subscriber_id = int(match.group(1)), int(match.group(2))
        if not hmac.compare_digest(self._mac(issue_id, subscriber_id), match.group(3)):
            return None
        return issue_id, subscriber_id


def message_ids(config: Config) -> MessageIds:
    """The :class:`MessageIds` of ``config``: its secret, the domain of its From address."""

    domain = parseaddr(config.publication.from_address)[1].rpartition("@")[2].lower()
    return _keyed(load_secret(config), domain)


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes, domain: str) -> MessageIds:
    return MessageIds(secret, domain)
