"""Bylines are names: what a feed's author field becomes before anyone reads it.

RSS puts an address in ``<author>`` (``reviews@example.org (Elena Fischer)``), Atom and
other tools write ``Elena Fischer <elena@example.org>``; Blogger writes
``noreply@blogger.com (Unknown)``. :func:`byline` keeps the name and never an address: at
ingest for new articles, and again when an issue is rendered, for articles stored before.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"<?\s*(?:mailto:)?[^\s<>()@,;]+@[^\s<>()@,;]+\s*>?", re.IGNORECASE)
_PARENS = re.compile(r"\(\s*([^()]*?)\s*\)")
_PLACEHOLDER_NAMES = {"unknown", "noreply", "no-reply", "admin", "administrator", "none", "n/a"}


def byline(author: str | None) -> str:
    """The name(s) in a feed's author field; '' when it holds only an address (or nothing).

    ``"reviews@x.example (Elena Fischer)"`` and ``"Elena Fischer <elena@x.example>"`` give
    ``"Elena Fischer"``; ``"elena@x.example"`` gives ``""``. No address survives.
    """
    text = " ".join(str(author or "").split())
    if "@" not in text and text.casefold() not in _PLACEHOLDER_NAMES:
        return text
    # "address (Name)": the name is in the parentheses.
    inside = [m.group(1) for m in _PARENS.finditer(text) if m.group(1) and "@" not in m.group(1)]
    outside = _PARENS.sub(" ", text)
    outside = _ADDRESS.sub(" ", outside)
    name = " ".join(outside.split()).strip(" ,;:-–—|/")
    if not name and inside:
        name = ", ".join(inside)
    name = " ".join(_ADDRESS.sub(" ", name).split()).strip(" ,;:-–—|/")
    if "@" in name or name.casefold() in _PLACEHOLDER_NAMES:
        return ""
    return name
