"""The personal links every email carries, built from the config's base URL and signed tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from digest.config import Config
from subscribers.tokens import TokenSigner


def subscriber_links(
    config: Config, secret: bytes, subscriber: dict[str, Any], *, now: datetime | None = None
) -> dict[str, str]:
    """``unsubscribe_url``, ``preferences_url`` and ``confirm_url`` for ``subscriber`` (needs its id).

    The unsubscribe and preferences links are the same every time for one
    subscriber; the confirm link carries ``now`` and expires a week later.
    """
    base = config.publication.base_url.rstrip("/")
    subscriber_id = int(subscriber["id"])
    token = TokenSigner(secret).token
    return {
        "unsubscribe_url": f"{base}/unsubscribe/{token(subscriber_id, 'unsubscribe')}",
        "preferences_url": f"{base}/preferences/{token(subscriber_id, 'preferences')}",
        "confirm_url": f"{base}/confirm/{token(subscriber_id, 'confirm', now=now)}",
    }
