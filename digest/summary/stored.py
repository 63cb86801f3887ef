"""The ``summaries`` table: the only module that writes (or reads) it.

A model's summary is a row keyed by engine ``llm``, model and the hash of the prompt as sent,
with what the grounding check found (``grounding``: NULL before it ran, ``checked``,
``verified``, ``unsupported`` or ``refuted``; ``unsupported``: the words or sentences at
fault). An editor's own summary is the row with engine ``editor`` (one per article).

Entry point for ``digest articles show``: :func:`stored_summaries`, which says of each row
whether the current ``[summary]`` settings would show it; it never calls a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.ingest.articles import articles_by_ids
from digest.store.database import iso, transaction, utcnow
from digest.summary.source import article_sources, editor_label, generated_label, prompt_key

ENGINE = "llm"
"""The ``summaries.engine`` of model-made rows (the free engines store nothing)."""
EDITOR = "editor"
"""The ``summaries.engine`` of an editor's own summary."""
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


def editor_summaries(db: sqlite_utils.Database, article_ids: Iterable[int]) -> dict[int, str]:
    """The editor's own summary of each article that has one, by id."""
    wanted = list(dict.fromkeys(article_ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT article_id, text FROM summaries WHERE engine = ? AND article_id IN ({marks})",
            [EDITOR, *chunk],
        )
        found.update(dict(rows.fetchall()))
    return found


def pin_summary(db: sqlite_utils.Database, article_id: int, text: str) -> None:
    """Store ``text`` as the editor's summary of ``article_id``, replacing an earlier one."""
    save = (
        "INSERT INTO summaries (article_id, engine, model, prompt_hash, text, grounding, created_at)"
        " VALUES (?, ?, '', '', ?, 'editor', ?) ON CONFLICT (article_id, engine, model, prompt_hash)"
        " DO UPDATE SET text = excluded.text, created_at = excluded.created_at"
    )
    with transaction(db):
        db.execute(save, [article_id, EDITOR, text, iso(utcnow())])


def unpin_summary(db: sqlite_utils.Database, article_id: int) -> bool:
    """Remove the editor's summary of ``article_id``; False when there was none."""
    with transaction(db):
        cursor = db.execute("DELETE FROM summaries WHERE article_id = ? AND engine = ?", [article_id, EDITOR])
    return cursor.rowcount > 0


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
    """Every summary stored for ``article_id``: the editor's first, then the current model's,
    then the rest newest first."""
    settings = config.summary
    current_key = ""
    if settings.engine == ENGINE and settings.model.strip():
        article = next(iter(articles_by_ids(db, [article_id])), None)
        if article is not None:
            source = article_sources(db, settings, [article])[article_id]
            current_key = prompt_key(settings, article, source)[1]
    rows = db.execute(
        "SELECT engine, model, prompt_hash, text, created_at, grounding, unsupported, source FROM summaries"
        " WHERE article_id = ? ORDER BY created_at DESC, id DESC",
        [article_id],
    ).fetchall()
    found = []
    for engine, model, key, text, created_at, grounding, unsupported, source in rows:
        editor = engine == EDITOR
        current = editor or (bool(current_key) and model == settings.model and key == current_key)
        label = editor_label(config) if editor else settings.label
        if not editor and grounding in USABLE:
            label = generated_label(config, source)
        found.append(
            StoredSummary(model, text, created_at, current, label, grounding, json.loads(unsupported), editor)
        )
    return sorted(found, key=lambda s: (not s.editor, not s.current))  # stable: newest first within
