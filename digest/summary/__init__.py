"""Article summaries: the feed's own, the leading sentences, or a model's through ``llm``.

``[summary] engine`` picks one. ``feed`` and ``lead`` cost nothing and are worked out when an
issue is composed. ``llm`` summaries are made only for the articles chosen into an issue
(or ahead of time by ``digest articles summarize``), several at once, and stored per article
with the model and a hash of the prompt as sent, so a rebuild or another edition reuses them
and a changed prompt, model or article makes new ones. A model that fails, times out or
answers with something unusable leaves the article with its feed summary and a warning.

Entry points: :func:`make_summaries` (call the model where needed, store the answers) and
:func:`article_summaries` (what a snapshot shows, from what is stored; never calls a model).
"""

from __future__ import annotations

from digest.summary.make import (
    ArticleSummary,
    SummaryReport,
    article_summaries,
    make_summaries,
    summarize_since,
)

__all__ = ["ArticleSummary", "SummaryReport", "article_summaries", "make_summaries", "summarize_since"]
