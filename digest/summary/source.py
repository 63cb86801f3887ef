"""What a summary is made from and checked against, and what its label says.

The source is the article's own page when ``[summary] fetch_article`` fetched it
(:mod:`digest.ingest.pages`), else the feed's content, as stored at ingest. The grounding
check compares a summary with the source plus the title and the outlet's name (the prompt
gives the model those too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from digest.config import Config, Summary
from digest.ingest.pages import page_texts
from digest.ingest.sanitize import WORDS_PER_MINUTE
from digest.summary.text import article_text, prompt_hash, render_prompt

ARTICLE = "article"
FEED = "feed"
CHECKED_AGAINST = {ARTICLE: "checked against the article", FEED: "checked against the feed's text"}


@dataclass
class Source:
    """One article's source text, where it came from (``article`` or ``feed``), and the
    reading time its page gives (None without a page)."""

    text: str
    kind: str
    reading_minutes: int | None = None


def article_sources(
    db: sqlite_utils.Database, settings: Summary, articles: Iterable[dict[str, Any]]
) -> dict[int, Source]:
    """The source of each article (full ``articles`` rows), by id."""
    articles = list(articles)
    pages = page_texts(db, [a["id"] for a in articles]) if settings.fetch_article else {}
    sources: dict[int, Source] = {}
    for article in articles:
        page = pages.get(article["id"])
        if page is not None and page.text:
            minutes = max(1, (page.words + WORDS_PER_MINUTE // 2) // WORDS_PER_MINUTE)
            sources[article["id"]] = Source(page.text, ARTICLE, minutes)
        else:
            sources[article["id"]] = Source(article_text(article), FEED)
    return sources


def grounding_text(article: dict[str, Any], source: Source) -> str:
    """What a summary's facts must be found in: the title, the outlet and the source text."""
    return "\n".join([article.get("title") or "", article.get("source") or "", source.text])


def prompt_key(settings: Summary, article: dict[str, Any], source: Source) -> tuple[str, str]:
    """The prompt for ``article`` from ``source``, and its hash (what a stored summary is keyed by)."""
    prompt = render_prompt(settings, article, source.text)
    return prompt, prompt_hash(prompt)


def generated_label(config: Config, source_kind: str) -> str:
    """The label of a checked model summary: ``[summary] label`` and what it was checked against."""
    return f"{config.summary.label}, {CHECKED_AGAINST.get(source_kind, CHECKED_AGAINST[FEED])}"


def editor_label(config: Config) -> str:
    """The label of an editor's own summary: the publication's."""
    return f"Summary by {config.publication.name}"
