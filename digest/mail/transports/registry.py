"""The transports by URL scheme, and the questions asked of a transport URL.

:data:`TRANSPORTS` is the registry: one line per scheme. :func:`open_transport` opens
the transport a URL names; :func:`capabilities` says what it can do (code elsewhere asks
these, never the scheme); :func:`parse_transport_url` reads a URL strictly.
"""

from __future__ import annotations

import re

from digest.config import Config
from digest.errors import DigestError
from digest.mail.transports.base import URL_HINT, Capabilities, Transport, TransportBase, TransportSpec
from digest.mail.transports.base import without_userinfo as _without_userinfo
from digest.mail.transports.files import MaildirTransport, MboxTransport
from digest.mail.transports.memory import MemoryTransport
from digest.mail.transports.smtp import SMTPTransport

__all__ = [
    "TRANSPORTS",
    "capabilities",
    "default_transport_url",
    "destination",
    "open_transport",
    "parse_transport_url",
    "transport_class",
    "transport_for_display",
]

TRANSPORTS: dict[str, type[TransportBase]] = {
    "smtp": SMTPTransport,
    "smtps": SMTPTransport,
    "maildir": MaildirTransport,
    "mbox": MboxTransport,
    "memory": MemoryTransport,
}
"""Scheme → transport class. Adding a transport is one module and one line here."""

_SCHEME_NAME = re.compile(r"[a-z][a-z0-9+.-]*")


def _split(url: str) -> tuple[str, str, str]:
    """(url stripped, its scheme lower-cased, the URL safe to print); DigestError when there
    is no URL or no scheme."""
    url = (url or "").strip()
    if not url:
        raise DigestError(f"no transport configured; {URL_HINT}")
    shown = _without_userinfo(url)  # messages never echo a user or password
    scheme, sep, _ = url.partition(":")
    if not sep:
        raise DigestError(f"transport {shown!r} has no scheme; {URL_HINT}")
    return url, scheme.lower(), shown


def transport_class(url: str) -> type[TransportBase]:
    """The class of the transport ``url`` names; DigestError for an unknown scheme."""
    url, scheme, shown = _split(url)
    found = TRANSPORTS.get(scheme)
    if found is None:
        named = f" {scheme!r}" if _SCHEME_NAME.fullmatch(scheme) else ""
        raise DigestError(f"unknown transport scheme{named} in {shown!r}; {URL_HINT}")
    return found


def parse_transport_url(url: str) -> TransportSpec:
    """Parse a transport URL; raise DigestError naming what is wrong."""
    kind = transport_class(url)
    url, scheme, shown = _split(url)
    return kind.parse(scheme, url, shown)


def capabilities(url: str) -> Capabilities:
    """What the transport ``url`` names can do (it is not opened)."""
    return transport_class(url).capabilities


def open_transport(url: str, config: Config, *, timeout: float | None = None) -> Transport:
    """Open the transport named by ``url`` (relative paths resolve against the config folder)."""
    spec = parse_transport_url(url)
    return transport_class(url).open(spec, config, timeout)


def destination(url: str, config: Config) -> str | None:
    """Where ``url`` delivers, comparable between two URLs (a maildir by its absolute path);
    None when the URL itself says it (or it does not parse)."""
    try:
        return transport_class(url).destination(parse_transport_url(url), config)
    except DigestError:
        return None


def transport_for_display(url: str) -> str:
    """The transport URL as it is safe to print."""
    try:
        return parse_transport_url(url).describe()
    except DigestError:
        return "(invalid transport)"


def default_transport_url(config: Config) -> str:
    """The configured transport (``load_config`` has already applied $DIGEST_TRANSPORT)."""
    return config.delivery.transport
