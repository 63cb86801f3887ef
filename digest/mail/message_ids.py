"""The Message-ID of an issue's message to one reader: unique, and signed.

``<digest.ISSUE.SUBSCRIBER.NONCE.MAC@domain>``: the issue and subscriber ids, 16 hex
digits (64 bits) of randomness made when the ledger row is first claimed, then 32 hex
digits (128 bits) of HMAC-SHA256 over ``ISSUE.SUBSCRIBER.NONCE`` for the purpose
``message-id``, keyed with the workspace secret (the key of the links' tokens and of
VERP). The ledger stores it with the row, so a resumed send re-sends the same
Message-ID; the nonce makes it unique across workspaces and database resets, where
the same issue and subscriber ids come round again (a receiver may drop a repeated
Message-ID as a duplicate). Nobody without the secret can make one, so a bounce or
complaint that quotes it names that reader and no other (:meth:`MessageIds.verify`, in
constant time). Message-IDs made before the nonce (``<digest.ISSUE.SUBSCRIBER.MAC@…>``)
still verify; those made before they were signed (16 hex digits of a plain hash)
verify as nobody's.
"""

from __future__ import annotations

import functools
import hmac
import os
import re
from email.utils import parseaddr

from digest.config import Config
from subscribers.tokens import TokenSigner, load_secret

MAC_HEX = 32
NONCE_HEX = 16
_ID = "([1-9][0-9]{0,17})"
_NONCE = rf"(?:([0-9a-f]{{{NONCE_HEX}}})\.)?"  # absent in Message-IDs made before it
_OURS = re.compile(rf"<digest\.{_ID}\.{_ID}\.{_NONCE}([0-9a-f]{{{MAC_HEX}}})@[^<>@\s]+>")


class MessageIds:
    """Makes and checks signed Message-IDs with the HMAC key prepared once (cheap per message)."""

    def __init__(self, secret: bytes | str, domain: str) -> None:

        self._signer = TokenSigner(secret)
        self.domain = domain

    def _mac(self, signed: str) -> str:
        return self._signer.digest("message-id", signed)[: MAC_HEX // 2].hex()

    def make(self, issue_id: int, subscriber_id: int) -> str:
        """A new Message-ID for issue ``issue_id`` to subscriber ``subscriber_id``: a fresh
        nonce each call, so store it (the ledger does) to send the same one again."""
        signed = f"{issue_id}.{subscriber_id}.{os.urandom(NONCE_HEX // 2).hex()}"
        return f"<digest.{signed}.{self._mac(signed)}@{self.domain}>"

    def verify(self, value: str | None) -> tuple[int, int] | None:
        """(issue id, subscriber id) of one of our signed Message-IDs; None for any other text."""
        match = _OURS.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            return None
        issue, subscriber, nonce, mac = match.groups()
        signed = f"{issue}.{subscriber}" if nonce is None else f"{issue}.{subscriber}.{nonce}"
        if not hmac.compare_digest(self._mac(signed), mac):
            return None
        return int(issue), int(subscriber)


def message_ids(config: Config) -> MessageIds:
    """The :class:`MessageIds` of ``config``: its secret, the domain of its From address."""

    domain = parseaddr(config.publication.from_address)[1].rpartition("@")[2].lower()
    return _keyed(load_secret(config), domain)


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes, domain: str) -> MessageIds:
    return MessageIds(secret, domain)
