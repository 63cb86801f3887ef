"""The ``summaries`` table: the only module that writes (or reads) it.

A model's summary is a row keyed by engine ``llm``, model and the hash of the prompt as sent,
with what the grounding check found (``grounding``: NULL before it ran, ``checked``,
``verified``, ``unsupported`` or ``refuted``; ``unsupported``: the words or sentences at
fault). An editor's own summary is not here: it is ``articles.editor_summary``.

Entry point for ``digest articles show``: :func:`stored_summaries`, which says of each row
whether the current ``[summary]`` settings would show it; it never calls a model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.ingest.articles import articles_by_ids
from digest.store.database import iso, transaction, utcnow
from digest.summary.source import article_sources, editor_label, generated_label, prompt_key

ENGINE = "llm"
"""The ``summaries.engine`` of model-made rows (the free engines store nothing)."""
USABLE = ("checked", "verified")
"""``summaries.grounding`` values a summary may be shown with (only ``verified`` when
``[summary] verify_model`` is set)."""


@dataclass
class ModelSummary:
    """One stored model summary and what its check found."""

    text: str
    grounding: str | None
    unsupported: list[str] = field(default_factory=list)
    source: str = "feed"

    def usable(self, verifying: bool) -> bool:
        """True when it passed the checks the settings ask for."""
        return self.grounding == "verified" if verifying else self.grounding in USABLE


def find_summary(db: sqlite_utils.Database, article_id: int, model: str, key: str) -> ModelSummary | None:
    """The model summary stored for ``article_id`` by ``model`` from the prompt hashed ``key``."""
    row = db.execute(
        "SELECT text, grounding, unsupported, source FROM summaries"
        " WHERE article_id = ? AND engine = ? AND model = ? AND prompt_hash = ?",
        [article_id, ENGINE, model, key],
    ).fetchone()
    return ModelSummary(row[0], row[1], json.loads(row[2] or "[]"), row[3]) if row else None


def save_summary(
    db: sqlite_utils.Database, article_id: int, model: str, key: str, summary: ModelSummary
) -> None:
    """Store (or replace) a model summary with its check's outcome."""
    with transaction(db):
        db.execute(
            "INSERT INTO summaries (article_id, engine, model, prompt_hash, text, grounding, unsupported,"
            " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (article_id, engine, model, prompt_hash) DO UPDATE SET text = excluded.text,"
            " grounding = excluded.grounding, unsupported = excluded.unsupported, source = excluded.source,"
            " created_at = excluded.created_at",
            [
                article_id,
                ENGINE,
                model,
                key,
                summary.text,
                summary.grounding,
                json.dumps(summary.unsupported, ensure_ascii=False),
                summary.source,
                iso(utcnow()),
            ],
        )


@dataclass
class StoredSummary:
    """One stored summary of an article, as ``digest articles show`` tells it."""

    model: str
    text: str
    created_at: str
    current: bool
    """True when the current settings would look it up (engine llm, same model and prompt)."""
    label: str
    grounding: str | None = None
    unsupported: list[str] = field(default_factory=list)
    editor: bool = False

    @property
    def used(self) -> bool:
        """True when a new issue would show it."""
        return self.editor or (self.current and self.grounding in USABLE)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {**asdict(self), "used": self.used}


def stored_summaries(db: sqlite_utils.Database, config: Config, article_id: int) -> list[StoredSummary]:
    """Every summary stored for ``article_id``: the editor's first (``articles.editor_summary``),
    then the current model's, then the rest newest first."""
    settings = config.summary
    current_key = ""
    article = next(iter(articles_by_ids(db, [article_id])), None)
    if article is not None and settings.engine == ENGINE and settings.model.strip():
        source = article_sources(db, settings, [article])[article_id]
        current_key = prompt_key(settings, article, source)[1]
    rows = db.execute(
        "SELECT engine, model, prompt_hash, text, created_at, grounding, unsupported, source FROM summaries"
        " WHERE article_id = ? ORDER BY created_at DESC, id DESC",
        [article_id],
    ).fetchall()
    found = []
    if article is not None and article["editor_summary"] is not None:
        found.append(
            StoredSummary("", article["editor_summary"], "", True, editor_label(config), editor=True)
        )
    for _engine, model, key, text, created_at, grounding, unsupported, source in rows:
        current = bool(current_key) and model == settings.model and key == current_key
        label = generated_label(config, source) if grounding in USABLE else settings.label
        found.append(
            StoredSummary(model, text, created_at, current, label, grounding, json.loads(unsupported))
        )
    return sorted(found, key=lambda s: (not s.editor, not s.current))  # stable: newest first within
