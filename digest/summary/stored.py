"""The generated summaries: the owner of the ``summaries`` table.

:func:`stored_text` and :func:`save_summary` are what :mod:`digest.summary.make` reads and
writes; :func:`stored_summaries` lists an article's for ``digest articles show``. Each row says
whether the current ``[summary]`` settings (model and prompt as sent) would show it in a new
issue; nothing here calls a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.ingest.articles import articles_by_ids
from digest.store.database import iso, transaction, utcnow
from digest.summary.text import prompt_hash, render_prompt

ENGINE = "llm"
"""The ``summaries.engine`` of model-made rows (the free engines store nothing)."""


def stored_text(db: sqlite_utils.Database, article_id: int, model: str, key: str) -> str | None:
    """The summary ``model`` wrote for the article from the prompt hashed as ``key``, or None."""
    row = db.execute(
        "SELECT text FROM summaries WHERE article_id = ? AND engine = ? AND model = ? AND prompt_hash = ?",
        [article_id, ENGINE, model, key],
    ).fetchone()
    return row[0] if row else None


def save_summary(db: sqlite_utils.Database, article_id: int, model: str, key: str, text: str) -> None:
    """Store (or replace) what ``model`` wrote for the article from the prompt hashed as ``key``."""
    with transaction(db):
        db.execute(
            "INSERT INTO summaries (article_id, engine, model, prompt_hash, text, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (article_id, engine, model, prompt_hash)"
            " DO UPDATE SET text = excluded.text, created_at = excluded.created_at",
            [article_id, ENGINE, model, key, text, iso(utcnow())],
        )


@dataclass
class StoredSummary:
    """One stored model summary of an article."""

    model: str
    text: str
    created_at: str
    current: bool
    """True when the current settings would show it (engine llm, same model and prompt)."""
    label: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def stored_summaries(db: sqlite_utils.Database, config: Config, article_id: int) -> list[StoredSummary]:
    """Every generated summary stored for ``article_id``, the current one first, then newest first."""
    settings = config.summary
    current_key = ""
    if settings.engine == ENGINE and settings.model.strip():
        for article in articles_by_ids(db, [article_id]):
            current_key = prompt_hash(render_prompt(settings, article))
    rows = db.execute(
        "SELECT model, prompt_hash, text, created_at FROM summaries WHERE article_id = ? AND engine = ?"
        " ORDER BY created_at DESC, id DESC",
        [article_id, ENGINE],
    ).fetchall()
    found = [
        StoredSummary(
            model=model,
            text=text,
            created_at=created_at,
            current=bool(current_key) and model == settings.model and key == current_key,
            label=settings.label,
        )
        for model, key, text, created_at in rows
    ]
    return sorted(found, key=lambda s: not s.current)  # stable: newest first within each group
