"""An editor's values for one article, stored beside the feed's (the ``articles`` table's
``editor_*`` and ``hidden_at`` columns; a sibling of :mod:`digest.ingest.articles`, which
owns the rest of the table and is at its size limit).

The feed's ``title``, ``summary_text``, ``category`` and ``author`` are rewritten by every
re-ingest; the editor's ``editor_title``, ``editor_summary``, ``editor_category`` and
``editor_byline`` never are, and win over them wherever an issue is built
(:func:`with_editor_values`). ``hidden_at`` keeps an article out of every issue built after.
Functions here write no transaction of their own: the caller's edit is one.
"""

from __future__ import annotations

import re
from typing import Any

import sqlite_utils

from digest.errors import DigestError
from digest.ingest.articles import articles_by_ids, clean_category, configured_spelling, get_article
from digest.ingest.sanitize import one_line
from digest.store.database import MAX_ID

EDITABLE = ("title", "summary", "category", "byline")
"""What an editor may set on an article (``digest articles edit --title/--summary/...``)."""

_COLUMN = {name: f"editor_{name}" for name in EDITABLE}
_FEED_FIELD = {"title": "title", "summary": "summary_text", "category": "category", "byline": "author"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LIMITS = {"title": 300, "summary": 2000, "category": 100, "byline": 200}


def article_row(db: sqlite_utils.Database, article_id: int | str) -> dict[str, Any]:
    """The full ``articles`` row (feed and editor values) of ``article_id``; raises NotFound."""
    get_article(db, article_id)  # the one-line NotFound for a bad or unknown id
    return next(iter(db.query("SELECT * FROM articles WHERE id = ?", [int(article_id)])))


def articles_by_id(db: sqlite_utils.Database, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Full ``articles`` rows by id, with the editor's values applied (:func:`with_editor_values`)."""
    wanted = [i for i in ids if 0 < int(i) <= MAX_ID]
    return {row["id"]: with_editor_values(row) for row in articles_by_ids(db, wanted)}


def with_editor_values(article: dict[str, Any]) -> dict[str, Any]:
    """The article as issues show it: each editor value that is set replaces the feed's
    (``editor_summary`` stays too: :func:`digest.summary.article_summaries` lets it win)."""
    shown = dict(article)
    for name in EDITABLE:
        value = article.get(_COLUMN[name])
        if value is not None:
            shown[_FEED_FIELD[name]] = value
    return shown


def editor_values(article: dict[str, Any]) -> dict[str, Any]:
    """The editor's side of an article for ``articles show --json``: each editable field
    (None when the feed's stands), ``hidden`` and ``hidden_at``."""
    values: dict[str, Any] = {name: article.get(_COLUMN[name]) for name in EDITABLE}
    values["hidden"] = article.get("hidden_at") is not None
    values["hidden_at"] = article.get("hidden_at")
    return values


def feed_values(article: dict[str, Any]) -> dict[str, Any]:
    """The feed's side of the editable fields (what a re-ingest writes)."""
    return {name: article.get(_FEED_FIELD[name]) for name in EDITABLE}


def clean_editor_values(config: Any, values: dict[str, str | None]) -> dict[str, str | None]:
    """Checked editor values: plain one-line text (a summary keeps its paragraphs), within
    limits; an empty string clears the field back to the feed's (None). Unknown fields
    and a field left empty where it cannot be (a title) are one-line DigestErrors."""
    cleaned: dict[str, str | None] = {}
    for name, raw in values.items():
        if name not in EDITABLE:
            raise DigestError(f"an article's {name!r} cannot be edited; edit {', '.join(EDITABLE)}")
        if raw is None:
            continue
        text = _clean(raw, keep_paragraphs=name == "summary")
        if len(text) > _LIMITS[name]:
            raise DigestError(f"--{name} is {len(text)} characters; keep it to {_LIMITS[name]}")
        if name == "category" and text:
            text = configured_spelling(clean_category(text), config)
        cleaned[name] = text or None
    if not cleaned:
        raise DigestError("nothing to change: give --title, --summary, --category or --byline")
    return cleaned


def _clean(raw: str, *, keep_paragraphs: bool) -> str:
    raw = _CONTROL.sub("", raw)
    if not keep_paragraphs:
        return one_line(raw)
    paragraphs = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")
    return "\n\n".join(p for p in (one_line(p) for p in paragraphs) if p)


def store_editor_values(db: sqlite_utils.Database, article_id: int, values: dict[str, str | None]) -> None:
    """Write checked editor values (None clears one) onto the article."""
    for name, value in values.items():
        db.execute(f"UPDATE articles SET {_COLUMN[name]} = ? WHERE id = ?", [value, article_id])


def set_hidden(db: sqlite_utils.Database, article_id: int, hidden_at: str | None) -> None:
    """Hide the article from every issue built after (``hidden_at`` a UTC time) or unhide it (None)."""
    db.execute("UPDATE articles SET hidden_at = ? WHERE id = ?", [hidden_at, article_id])
