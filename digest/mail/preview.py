"""Preview an issue as one subscriber (or one category set) would get it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from digest.compose.issues import get_issue, issue_categories
from digest.config import Config
from digest.errors import DigestError
from digest.mail.message import build_message
from digest.render.personalise import config_greeting, personalise, sample_fields
from digest.render.variants import RenderedVariant, current_variant, variant_key
from subscribers.links import subscriber_links
from subscribers.store import get_subscriber
from subscribers.tokens import load_secret

FORMATS = ("html", "text", "eml")


@dataclass
class Preview:
    """A previewed issue: the bytes to show and what they were made from."""

    issue: dict[str, Any]
    variant: str
    format: str
    content: bytes
    trimmed: int
    recipient: dict[str, Any]


def preview_issue(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int = "latest",
    *,
    fmt: str = "html",
    subscriber: str | None = None,
    categories: Iterable[str] | None = None,
) -> Preview:
    """Render issue ``ref`` as ``fmt`` (html, text or eml) for ``subscriber`` (email or id:
    their categories, name and personal links) or for ``categories`` with sample values."""
    if fmt not in FORMATS:
        raise DigestError(f"unknown preview format {fmt!r}; use one of {', '.join(FORMATS)}")
    issue = get_issue(db, ref)
    present = issue_categories(db, issue["id"])
    recipient: dict[str, Any] = {**sample_fields(config), "subscriber_id": None}
    wanted: list[str] | None = list(categories) if categories is not None else None
    who = "these categories"
    if subscriber is not None:
        sub = _subscriber(db, config, subscriber)
        wanted = sub["categories"]
        recipient = sub["recipient"]
        who = f"subscriber {recipient['email']}"
    variant = variant_key(wanted, present)
    if variant == "[]":
        raise DigestError(
            f"{who} follow none of issue {issue['id']}'s categories ({', '.join(present)}); "
            "they would not get this issue"
        )
    rendered = current_variant(db, config, issue["id"], variant)
    return Preview(
        issue, variant, fmt, _content(config, issue, rendered, recipient, fmt), rendered.trimmed, recipient
    )


def _subscriber(db: sqlite_utils.Database, config: Config, ref: str) -> dict[str, Any]:

    sub = get_subscriber(db, ref)
    links = subscriber_links(config, load_secret(config), sub)
    return {
        "categories": sub.get("categories"),
        "recipient": {
            "name": sub.get("name") or "",
            "email": sub["email"],
            "unsubscribe_url": links["unsubscribe_url"],
            "preferences_url": links["preferences_url"],
            "subscriber_id": sub["id"],
            "attributes": sub.get("attributes") or {},
        },
    }


def _content(
    config: Config, issue: dict[str, Any], rendered: RenderedVariant, recipient: dict[str, Any], fmt: str
) -> bytes:
    greeting = config_greeting(config)
    if fmt == "html":
        return personalise(rendered.html, recipient, html=True, greeting_pair=greeting).encode("utf-8")
    if fmt == "text":
        return personalise(rendered.text, recipient, html=False, greeting_pair=greeting).encode("utf-8")
    # The one message builder the send uses too, so the preview is what goes out.
    return build_message(config, issue, rendered, recipient)
