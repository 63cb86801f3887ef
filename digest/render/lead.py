"""The lead story: the one that opens an issue above its sections.

The editor's lead (an article the snapshot marks ``"lead": true``, set at the desk) when the
variant carries it, else the first story of the first section. :func:`pick_lead` is used by
the size budget (the lead is the last story an issue gives up) and the template context.
"""

from __future__ import annotations

from typing import Any


def pick_lead(sections: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The lead article of ``sections`` (snapshot sections, each with ``articles``), or None
    when they hold no article."""
    for section in sections:
        for article in section["articles"]:
            if article.get("lead") is True:
                return article
    return next((s["articles"][0] for s in sections if s["articles"]), None)
