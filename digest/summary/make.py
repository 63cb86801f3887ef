"""Make, store and look up article summaries (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.ingest.articles import article_ids_published_since, articles_by_ids
from digest.ingest.sanitize import one_line
from digest.summary.model import ask, load_model
from digest.summary.pool import GIVE_UP_AFTER, GaveUp, TimedOut, run_all
from digest.summary.stored import ENGINE, save_summary, stored_text
from digest.summary.text import check_answer, feed_summary, lead_summary, prompt_hash, render_prompt

Progress = Callable[[int, int], None]
"""Called with (done, total) as model calls finish."""


@dataclass
class ArticleSummary:
    """What an issue shows under an article: the text, and whether a model wrote it."""

    text: str
    generated: bool = False


@dataclass
class SummaryReport:
    """What :func:`make_summaries` did. ``warnings`` name each article left with its feed summary."""

    made: int = 0
    reused: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Job:
    article: dict[str, Any]
    prompt: str
    key: str


def make_summaries(
    db: sqlite_utils.Database,
    config: Config,
    article_ids: Iterable[int],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> SummaryReport:
    """Ask the configured model for a summary of each article that has none stored for the
    current model and prompt (all of them with ``force``), ``summary.concurrency`` at a time,
    and store the usable answers. Does nothing unless ``summary.engine = "llm"``.

    One article's failure (an error, a timeout, an unusable answer) is a warning in the
    report; a missing ``llm`` library, an unknown model or a missing key raise ConfigError."""
    settings = config.summary
    report = SummaryReport()
    if settings.engine != ENGINE:
        return report
    jobs: list[_Job] = []
    for article in articles_by_ids(db, article_ids):
        prompt = render_prompt(settings, article)
        key = prompt_hash(prompt)
        if not force and stored_text(db, article["id"], settings.model, key) is not None:
            report.reused += 1
        else:
            jobs.append(_Job(article, prompt, key))
    if not jobs:
        return report
    model = load_model(settings.model)
    if progress:
        progress(0, len(jobs))
    outcomes = run_all(
        lambda job: ask(model, job.prompt), jobs, concurrency=settings.concurrency, timeout=settings.timeout
    )
    skipped = 0
    for done, outcome in enumerate(outcomes, 1):
        job = outcome.item
        if isinstance(outcome.error, GaveUp):
            skipped += 1
            text, why = None, ""
        elif outcome.error is not None:
            text, why = None, _failure(outcome.error, settings.timeout)
        else:
            text, why = check_answer(outcome.result, settings.max_words)
        if text is None:
            report.failed += 1
            if why:
                report.warnings.append(_warning(job.article, why))
        else:
            save_summary(db, job.article["id"], settings.model, job.key, text)
            report.made += 1
        if progress:
            progress(done, len(jobs))
    if skipped:
        report.warnings.append(
            f"{skipped} more article{'s' if skipped != 1 else ''} kept the feed summary without asking"
            f" the model: it timed out {GIVE_UP_AFTER} times (summary.timeout = {settings.timeout:g} s)"
        )
    return report


def summarize_since(
    db: sqlite_utils.Database,
    config: Config,
    since: datetime,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> SummaryReport:
    """:func:`make_summaries` for every article published at or after ``since``
    (``digest articles summarize``)."""
    ids = article_ids_published_since(db, since)
    return make_summaries(db, config, ids, force=force, progress=progress)


def article_summaries(
    db: sqlite_utils.Database, config: Config, articles: Iterable[dict[str, Any]]
) -> dict[int, ArticleSummary]:
    """The summary each article (a full ``articles`` row) shows, by id, from what the engine
    gives for free or what is stored; never calls a model. Without a stored model summary
    for the current model and prompt, an article shows its feed summary."""
    settings = config.summary
    shown: dict[int, ArticleSummary] = {}
    for article in articles:
        if settings.engine == "lead":
            shown[article["id"]] = ArticleSummary(lead_summary(article, settings.max_words))
            continue
        if settings.engine == ENGINE:
            key = prompt_hash(render_prompt(settings, article))
            stored = stored_text(db, article["id"], settings.model, key)
            if stored is not None:
                shown[article["id"]] = ArticleSummary(stored, generated=True)
                continue
        shown[article["id"]] = ArticleSummary(feed_summary(article))
    return shown


def _failure(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimedOut) and not error.started:
        return f"earlier calls to the model had not returned after summary.timeout ({timeout:g} s)"
    if isinstance(error, TimedOut):
        return f"the model did not answer within summary.timeout ({timeout:g} s)"
    detail = one_line(str(error))[:200]
    return f"the model failed ({type(error).__name__}{': ' + detail if detail else ''})"


def _warning(article: dict[str, Any], why: str) -> str:
    return f"article {article['id']} ({one_line(article['title'])[:80]!r}): kept the feed summary; {why}"
