"""Counted story links: ``/r/<issue>/<link>`` on the web app, signed, carrying no reader.

With ``[render] count_clicks = true`` every story link of an issue points at
``{base_url}/r/<issue id>/<article id>.<signature>``: the same address for every reader
of the issue, so a click says which story was read and nothing about who read it. The
signature (HMAC of the issue and article ids under the workspace secret) makes the link
unforgeable; the web app redirects only to the article's URL in the issue's frozen
snapshot, never to an address the link carries, so there is no open redirect either way.

Each issue also carries one canary link (``c.<signature>``) that no person sees: a client
that follows it is a scanner, and its other clicks are not counted.
"""

from __future__ import annotations

import hashlib
import hmac

CANARY = "c"
"""The link name of an issue's hidden canary."""

_SIGNATURE_CHARS = 16


def _signature(secret: bytes, issue_id: int, name: str) -> str:
    mac = hmac.new(secret, f"click:{issue_id}:{name}".encode(), hashlib.sha256)
    return mac.hexdigest()[:_SIGNATURE_CHARS]


def click_path(secret: bytes, issue_id: int, name: str | int) -> str:
    """The path of the counted link to story ``name`` (an article id, or :data:`CANARY`)."""
    name = str(name)
    return f"/r/{issue_id}/{name}.{_signature(secret, issue_id, name)}"


def click_url(base_url: str, secret: bytes, issue_id: int, name: str | int) -> str:
    """The full counted link (see :func:`click_path`) under the publication's ``base_url``."""
    return base_url.rstrip("/") + click_path(secret, issue_id, name)


def checked_link(secret: bytes, issue_id: int, link: str) -> str | None:
    """The story a counted link names (an article id as text, or :data:`CANARY`), or None
    when its signature is not this workspace's for this issue (compared in constant time)."""
    name, dot, signature = link.partition(".")
    if not dot or not (name == CANARY or (name.isascii() and name.isdigit() and len(name) < 19)):
        return None
    expected = _signature(secret, issue_id, name)
    return name if hmac.compare_digest(expected.encode(), signature.encode()) else None
