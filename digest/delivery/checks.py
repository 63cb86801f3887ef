"""Checks a real send makes before the first message: can the links in it work for a reader?"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from digest.config import Config

__all__ = ["check_public_base_url"]


def check_public_base_url(config: Config) -> str | None:
    """Why ``publication.base_url`` cannot serve readers' links, or None when it can.

    Every message carries unsubscribe and preferences links under the base URL, and
    Gmail and Yahoo require an https one-click unsubscribe: the URL must be https and
    name a host other than this machine (localhost, a loopback or unspecified address).
    """
    url = config.publication.base_url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return (
            f"publication.base_url {url!r} is not https; readers' unsubscribe links must be https"
            " (Gmail and Yahoo require an https one-click unsubscribe): set it to your public https address"
        )
    local = host in ("", "localhost") or host.endswith(".localhost")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if local or (address is not None and (address.is_loopback or address.is_unspecified)):
        return (
            f"publication.base_url {url!r} points at this machine ({host or 'no host'}), which readers"
            " cannot reach; set it to your public https address"
        )
    return None
