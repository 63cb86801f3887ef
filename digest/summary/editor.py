"""The editor's word on one article's summary, as ``digest articles summary ID`` gives it.

An editor's own summary lives in one place, ``articles.editor_summary`` (written by
:func:`digest.compose.editing.edit_article`, for ``--set``/``--clear``, ``digest articles edit
--summary`` and the desk's Edit alike). It is shown in every new issue whatever the engine,
never replaced by a model, and labelled as the publication's own; clearing it gives the
engine's summary back. Issues already built keep what their snapshot froze.

Here: :func:`editor_summary_text` (the checks ``--set`` makes), :func:`regenerate_summary_now`
(``--regenerate``) and :func:`shown_summary` (what new issues show).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError
from digest.ingest.articles import articles_by_ids, get_article
from digest.ingest.sanitize import clean_text, one_line, summary_chars
from digest.summary.make import ArticleSummary, article_summaries, make_summaries
from digest.summary.stored import ENGINE

EDITOR_WORDS_MAX = 200
"""The most words an editor's summary may have."""


@dataclass
class SummaryEdit:
    """What :func:`regenerate_summary_now` did, and the summary the article now shows in new issues."""

    article_id: int
    shown: ArticleSummary
    changed: bool = True
    warnings: list[str] = field(default_factory=list)


def shown_summary(db: sqlite_utils.Database, config: Config, article_id: int | str) -> ArticleSummary:
    """The summary new issues show for ``article_id`` (never calls a model); raises NotFound."""
    [article] = articles_by_ids(db, [get_article(db, article_id)["id"]])  # NotFound names the id
    return article_summaries(db, config, [article])[article["id"]]


def regenerate_summary_now(db: sqlite_utils.Database, config: Config, article_id: int | str) -> SummaryEdit:
    """Ask the model again now (``summary.engine = "llm"``), replacing its stored summary for
    the current prompt; an editor's summary still wins until cleared. ``changed`` is False
    when the new answer could not be used. Raises NotFound for an unknown article and
    DigestError when there is no model to ask."""
    key = int(get_article(db, article_id)["id"])
    if config.summary.engine != ENGINE:
        raise DigestError(
            f'summary.engine is "{config.summary.engine}": there is no model to ask; '
            'set [summary] engine = "llm" and a model'
        )
    report = make_summaries(db, config, [key], force=True)
    return SummaryEdit(key, shown_summary(db, config, key), report.made > 0, report.warnings)


def editor_summary_text(text: str) -> str:
    """``text`` as an editor's summary from ``--set``: plain, one line, at most 200 words;
    a one-line DigestError when it is empty or longer."""
    cleaned = one_line(clean_text(text or ""))
    if not cleaned:
        raise DigestError("--set: the summary is empty; give the text to show")
    words = len(cleaned.split())
    if words > EDITOR_WORDS_MAX or len(cleaned) > summary_chars(EDITOR_WORDS_MAX):
        raise DigestError(f"--set: the summary has {words} words; keep it to {EDITOR_WORDS_MAX}")
    return cleaned
