"""Article summaries: the feed's own, the leading sentences, a model's through ``llm``, or the editor's.

``[summary] engine`` picks one. ``feed`` and ``lead`` cost nothing and are worked out when an
issue is composed. ``llm`` summaries are made only for the articles chosen into an issue
(or ahead of time by ``digest articles summarize``), several at once, and stored per article
with the model and a hash of the prompt as sent, so a rebuild or another edition reuses them
and a changed prompt, model or article makes new ones. Every model summary is checked against
its source before it is used (:mod:`digest.summary.grounding`: each number, date, quote and
name must be found there; then, with ``verify_model``, a second model confirms each
sentence); one that fails, like a model that fails, times out or answers with something
unusable, leaves the article with its feed summary and a warning. With ``fetch_article``
the source is the article's own page (:mod:`digest.ingest.pages`), not the feed's teaser.
An editor's summary (``articles.editor_summary``, :mod:`digest.summary.editor`) always wins.

Entry points: :func:`make_summaries` (call the model where needed, check and store the
answers), :func:`article_summaries` (what a snapshot shows, from what is stored; never calls
a model) and :func:`regenerate_summary_now` (``digest articles summary ID --regenerate``).
"""

from __future__ import annotations

from digest.summary.editor import SummaryEdit, editor_summary_text, regenerate_summary_now, shown_summary
from digest.summary.make import (
    ArticleSummary,
    SummaryReport,
    article_summaries,
    make_summaries,
    summarize_since,
)

__all__ = [
    "ArticleSummary",
    "SummaryEdit",
    "SummaryReport",
    "article_summaries",
    "editor_summary_text",
    "make_summaries",
    "regenerate_summary_now",
    "shown_summary",
    "summarize_since",
]
