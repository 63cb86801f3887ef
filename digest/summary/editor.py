"""The editor's word on one article's summary: pin their own, ask the model again, or clear.

:func:`edit_summary` is the one code path for ``digest articles summary ID --set/--regenerate/
--clear`` and for the editor's desk. A pinned summary is shown in every new issue whatever the
engine, never replaced by a model, and labelled as the publication's own; clearing it gives
the engine's summary back. Issues already built keep what their snapshot froze.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError
from digest.ingest.articles import articles_by_ids, get_article
from digest.ingest.sanitize import clean_text, one_line, summary_chars
from digest.summary.make import ArticleSummary, SummaryReport, article_summaries, make_summaries
from digest.summary.stored import ENGINE, pin_summary, unpin_summary

ACTIONS = ("set", "regenerate", "clear")
EDITOR_WORDS_MAX = 200
"""The most words an editor's summary may have."""


@dataclass
class SummaryEdit:
    """What :func:`edit_summary` did, and the summary the article now shows in new issues."""

    article_id: int
    action: str
    shown: ArticleSummary
    changed: bool = True
    warnings: list[str] = field(default_factory=list)


def edit_summary(
    db: sqlite_utils.Database, config: Config, article_id: int | str, action: str, text: str = ""
) -> SummaryEdit:
    """Apply the editor's ``action`` to ``article_id``'s summary.

    ``set``: pin ``text`` (plain, one line, at most 200 words) as the editor's summary.
    ``regenerate``: ask the model again now (``summary.engine = "llm"``), replacing its stored
    summary for the current prompt; a pinned summary still wins until cleared.
    ``clear``: remove the pinned summary (``changed`` False when there was none).
    Raises NotFound for an unknown article and DigestError for bad input."""
    if action not in ACTIONS:
        raise DigestError(f"unknown summary action {action!r}; use one of: {', '.join(ACTIONS)}")
    [article] = articles_by_ids(db, [get_article(db, article_id)["id"]])  # NotFound names the id
    changed, warnings = True, []
    if action == "set":
        pin_summary(db, article["id"], _editor_text(text))
    elif action == "clear":
        changed = unpin_summary(db, article["id"])
    else:
        report = _regenerate(db, config, article["id"])
        changed, warnings = report.made > 0, report.warnings
    shown = article_summaries(db, config, [article])[article["id"]]
    return SummaryEdit(article["id"], action, shown, changed, warnings)


def _regenerate(db: sqlite_utils.Database, config: Config, article_id: int) -> SummaryReport:
    if config.summary.engine != ENGINE:
        raise DigestError(
            f'summary.engine is "{config.summary.engine}": there is no model to ask; '
            'set [summary] engine = "llm" and a model'
        )
    return make_summaries(db, config, [article_id], force=True)


def _editor_text(text: str) -> str:
    cleaned = one_line(clean_text(text or ""))
    if not cleaned:
        raise DigestError("--set: the summary is empty; give the text to show")
    words = len(cleaned.split())
    if words > EDITOR_WORDS_MAX or len(cleaned) > summary_chars(EDITOR_WORDS_MAX):
        raise DigestError(f"--set: the summary has {words} words; keep it to {EDITOR_WORDS_MAX}")
    return cleaned
