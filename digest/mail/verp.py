"""The envelope sender (Return-Path) of each message the send engine hands over.

Without ``delivery.bounce_address`` every message goes out with the From
address as its envelope sender. With it (``bounces@news.example.org``) each
message gets its own return path, ``bounces+<token>@news.example.org`` (VERP),
where the token names the deliveries row and is signed with the project's
secret: ``<row id in base 36>-<10 characters of HMAC-SHA256 in base 32>``, all
lower case (mail systems may fold the case of a local part), 50 bits of MAC.
A bounce sent to that address maps to its subscriber and issue without parsing
the quoted original; an altered token is refused (checked in constant time).
The send engine only asks :meth:`ReturnPath.for_delivery` per row.
"""

from __future__ import annotations

import base64
import hmac
import re
from email.utils import parseaddr

from digest.config import Config
from digest.errors import ConfigError
from subscribers.tokens import TokenSigner, load_secret

MAC_CHARS = 10
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN = re.compile(rf"([0-9a-z]{{1,13}})-([a-z2-7]{{{MAC_CHARS}}})")
# Where a token sits in an address: the part after the first "+" of the local part.
_VERP_LOCAL = re.compile(r"^[^@+\s]+\+([^@\s]+)@", re.ASCII)


class VerpSigner:
    """Makes and checks VERP tokens with the HMAC key prepared once (cheap per message)."""

    def __init__(self, secret: bytes | str) -> None:

        self._signer = TokenSigner(secret)  # the same keyed HMAC as the links' tokens, purpose "verp"

    def _mac(self, body: str) -> str:
        # 7 bytes give the first 11 base-32 characters: enough for MAC_CHARS, less to encode.
        return base64.b32encode(self._signer.digest("verp", body)[:7]).decode("ascii")[:MAC_CHARS].lower()

    def token(self, delivery_id: int) -> str:
        """The token naming deliveries row ``delivery_id``."""
        if not isinstance(delivery_id, int) or delivery_id < 1:
            raise ValueError(f"delivery id must be a positive integer, not {delivery_id!r}")
        body = _base36(delivery_id)
        return f"{body}-{self._mac(body)}"

    def verify(self, token: str) -> int | None:
        """The delivery id in a valid token, or None when it is malformed or altered."""
        match = _TOKEN.fullmatch(token.lower()) if isinstance(token, str) else None
        if match is None:
            return None
        body, mac = match.groups()
        if not hmac.compare_digest(self._mac(body), mac):
            return None
        value = int(body, 36)
        return value if value >= 1 else None


def verp_token_of(address: str) -> str | None:
    """The text after ``+`` in an address's local part (``bounces+TOKEN@domain``), or None."""
    match = _VERP_LOCAL.match(address.strip().strip("<>"))
    return match.group(1) if match else None


def split_bounce_address(config: Config) -> tuple[str, str] | None:
    """``delivery.bounce_address`` as (local part, domain), or None when it is not set."""
    raw = config.delivery.bounce_address.strip()
    if not raw:
        return None
    address = parseaddr(raw)[1]
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "+" in local or any(c.isspace() for c in address):
        raise ConfigError(
            f"{config.source}: delivery.bounce_address = {raw!r} is not a plain address without '+'; "
            "use e.g. bounces@news.example.org"
        )
    return local, domain.lower()


class ReturnPath:
    """Builds the envelope sender for each delivery row of a send (cheap per call)."""

    def __init__(self, config: Config) -> None:
        self._default = parseaddr(config.publication.from_address)[1]
        self._bounce = split_bounce_address(config)
        self._signer: VerpSigner | None = None
        if self._bounce is not None:
            self._signer = VerpSigner(load_secret(config))

    def for_delivery(self, delivery_id: int) -> str:
        """The envelope sender for the deliveries row ``delivery_id``."""
        if self._signer is None or self._bounce is None:
            return self._default
        local, domain = self._bounce
        return f"{local}+{self._signer.token(delivery_id)}@{domain}"


def _base36(value: int) -> str:
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)) or "0"
