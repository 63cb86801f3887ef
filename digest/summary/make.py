"""Make, check, store and look up article summaries (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.ingest.articles import article_ids_published_since, articles_by_ids
from digest.ingest.pages import fetch_pages
from digest.ingest.sanitize import one_line
from digest.summary.grounding import ground
from digest.summary.model import ask, load_model
from digest.summary.pool import GIVE_UP_AFTER, GaveUp, TimedOut, run_all
from digest.summary.source import (
    ARTICLE,
    Source,
    article_sources,
    editor_label,
    generated_label,
    grounding_text,
    prompt_key,
)
from digest.summary.stored import ENGINE, ModelSummary, find_summary, save_summary
from digest.summary.text import check_answer, feed_summary, lead_summary
from digest.summary.verify import verify_summaries

Progress = Callable[[int, int], None]
"""Called with (done, total) as model calls finish."""


@dataclass
class ArticleSummary:
    """What an issue shows under an article: the text, whether a model wrote it (and it was
    checked), or an editor; its label; and the reading time the article's page gives."""

    text: str
    generated: bool = False
    label: str = ""
    checked: bool = False
    editor: bool = False
    reading_minutes: int | None = None


@dataclass
class SummaryReport:
    """What :func:`make_summaries` did. ``warnings`` name each article left with its feed
    summary, and why (the model failed, or the summary said what its source does not);
    ``checks`` counts the facts the grounding check looked for."""

    made: int = 0
    reused: int = 0
    failed: int = 0
    unsupported: int = 0
    checks: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Job:
    article: dict[str, Any]
    source: Source
    prompt: str
    key: str
    answer: str = ""
    stored: bool = False  # a stored summary checked again, not a new one


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
    check each answer against its source (:mod:`digest.summary.grounding`, then
    ``summary.verify_model`` if set) and store it with the outcome; only a supported summary
    is ever shown. With ``summary.fetch_article`` the articles' pages are fetched first and are
    the source. Does nothing unless ``summary.engine = "llm"``.

    One article's failure (an error, a timeout, an unusable or unsupported answer) is a
    warning in the report; a missing library, an unknown model or a missing key raise
    ConfigError."""
    settings = config.summary
    report = SummaryReport()
    if settings.engine != ENGINE:
        return report
    articles = articles_by_ids(db, article_ids)
    if settings.fetch_article:
        report.warnings += fetch_pages(db, config, articles).warnings
    sources = article_sources(db, settings, articles)
    jobs: list[_Job] = []
    again: list[_Job] = []
    for article in articles:
        source = sources[article["id"]]
        job = _Job(article, source, *prompt_key(settings, article, source))
        stored = None if force else find_summary(db, article["id"], settings.model, job.key)
        if stored is None:
            jobs.append(job)
            continue
        report.reused += 1
        if stored.grounding is None or (settings.verify_model and stored.grounding == "checked"):
            job.answer, job.stored = stored.text, True  # stored before the check, or before verify_model
            again.append(job)
    # Load the verifier first: a bad verify_model fails before any summary is paid for.
    verifier = (
        load_model(settings.verify_model, "summary.verify_model")
        if settings.verify_model and (jobs or again)
        else None
    )
    answered = _ask_model(config, jobs, report, progress) if jobs else []
    if answered or again:
        _check_and_save(db, config, answered + again, report, verifier)
    return report


def _ask_model(
    config: Config, jobs: list[_Job], report: SummaryReport, progress: Progress | None
) -> list[_Job]:
    """Ask the model for each job; the jobs whose answer is usable prose, with it."""
    settings = config.summary
    model = load_model(settings.model)
    if progress:
        progress(0, len(jobs))
    outcomes = run_all(
        lambda job: ask(model, job.prompt), jobs, concurrency=settings.concurrency, timeout=settings.timeout
    )
    answered: list[_Job] = []
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
            job.answer = text
            answered.append(job)
        if progress:
            progress(done, len(jobs))
    if skipped:
        report.warnings.append(
            f"{skipped} more article{'s' if skipped != 1 else ''} kept the feed summary without asking"
            f" the model: it timed out {GIVE_UP_AFTER} times (summary.timeout = {settings.timeout:g} s)"
        )
    return answered


def _check_and_save(
    db: sqlite_utils.Database, config: Config, jobs: list[_Job], report: SummaryReport, verifier: Any
) -> None:
    """Ground each answer in its source, ask ``verifier`` (the verify model, or None) about
    those that pass, and store every answer with its outcome."""
    settings = config.summary
    outcome: dict[int, ModelSummary] = {}
    for n, job in enumerate(jobs):
        found = ground(job.answer, grounding_text(job.article, job.source))
        report.checks += found.checked
        grounding = "checked" if found.supported else "unsupported"
        outcome[n] = ModelSummary(job.answer, grounding, found.unsupported, job.source.kind)
        if not found.supported:
            words = ", ".join(found.unsupported)
            report.warnings.append(
                _warning(job.article, f"its {_against(job.source)} does not support: {words}")
            )
    passed = [n for n, summary in outcome.items() if summary.grounding == "checked"]
    if verifier is not None and passed:
        items = [(n, grounding_text(jobs[n].article, jobs[n].source), jobs[n].answer) for n in passed]
        refused = verify_summaries(
            verifier, items, concurrency=settings.concurrency, timeout=settings.timeout
        )
        for n in passed:
            summary = outcome[n]
            summary.grounding, summary.unsupported = (
                ("refuted", refused[n]) if refused[n] else ("verified", [])
            )
            if refused[n]:
                why = f"{settings.verify_model} did not confirm: " + " / ".join(refused[n])
                report.warnings.append(_warning(jobs[n].article, why))
    for n, job in enumerate(jobs):
        summary = outcome[n]
        save_summary(db, job.article["id"], settings.model, job.key, summary)
        good = summary.usable(bool(settings.verify_model))
        report.unsupported += not good
        if not job.stored:
            report.made += good
            report.failed += not good


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
    gives for free or what is stored; never calls a model. An editor's summary (the row's
    ``editor_summary``) always wins; then, with engine ``llm``, a stored model summary for the
    current model and prompt that passed its checks; else the feed summary."""
    settings = config.summary
    articles = list(articles)
    sources = article_sources(db, settings, articles)
    shown: dict[int, ArticleSummary] = {}
    for article in articles:
        source = sources[article["id"]]
        minutes = source.reading_minutes
        if article.get("editor_summary") is not None:
            shown[article["id"]] = ArticleSummary(
                article["editor_summary"], label=editor_label(config), editor=True, reading_minutes=minutes
            )
            continue
        if settings.engine == "lead":
            shown[article["id"]] = ArticleSummary(
                lead_summary(article, settings.max_words), reading_minutes=minutes
            )
            continue
        if settings.engine == ENGINE:
            key = prompt_key(settings, article, source)[1]
            stored = find_summary(db, article["id"], settings.model, key)
            if stored is not None and stored.usable(bool(settings.verify_model)):
                label = generated_label(config, stored.source)
                shown[article["id"]] = ArticleSummary(stored.text, True, label, True, reading_minutes=minutes)
                continue
        shown[article["id"]] = ArticleSummary(feed_summary(article), reading_minutes=minutes)
    return shown


def _against(source: Source) -> str:
    return "article" if source.kind == ARTICLE else "feed's text"


def _failure(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimedOut) and not error.started:
        return f"earlier calls to the model had not returned after summary.timeout ({timeout:g} s)"
    if isinstance(error, TimedOut):
        return f"the model did not answer within summary.timeout ({timeout:g} s)"
    detail = one_line(str(error))[:200]
    return f"the model failed ({type(error).__name__}{': ' + detail if detail else ''})"


def _warning(article: dict[str, Any], why: str) -> str:
    return f"article {article['id']} ({one_line(article['title'])[:80]!r}): kept the feed summary; {why}"
