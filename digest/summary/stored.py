"""The generated summaries stored for one article, for ``digest articles show``.

Entry point: :func:`stored_summaries`. Each row says whether the current ``[summary]``
settings (model and prompt as sent) would show it in a new issue; it never calls a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.summary.make import ENGINE
from digest.summary.text import prompt_hash, render_prompt


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
        article = next(iter(db.query("SELECT * FROM articles WHERE id = ?", [article_id])), None)
        if article is not None:
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
