"""The text side of summaries: the free engines, the prompt, and checking a model's answer."""

from __future__ import annotations

import hashlib
import re
from string import Template
from typing import Any

from digest.config import Summary
from digest.ingest.sanitize import one_line, plain_text, summarize_text, summary_chars

# A model's answer is untrusted input. Prose is wanted; any of these means it is not prose.
_MARKUP = re.compile(
    r"<[A-Za-z/!?][^>]*>"  # an HTML/XML tag or comment
    r"|^\s*(#{1,6}\s|[-*+•]\s|\d+[.)]\s|>\s|```|\|)"  # a Markdown heading, list, quote, fence or table
    r"|\*\*|__|`|\[[^\]]*\]\([^)]*\)"  # bold, code, a Markdown link
    r"|^\s*[{\[]",  # JSON or another structure
    re.MULTILINE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidi embeddings, overrides and isolates: they can make a summary line read backwards or
# hide a part of it (U+202E). The marks U+200E/U+200F only nudge neutral characters and stay.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# A link in an answer is not the article's: a summary never carries one (the card links).
_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)\S*", re.IGNORECASE)
# What is left of a "Read more: <link>" or "Source: <link>" once the link is gone.
_LINK_LEAD = re.compile(
    r"(?:^|(?<=[.!?…]))[ \t]*"
    r"(?:read (?:more|the full (?:story|article))|full (?:story|article)|source|link|more)"
    r"[ \t]*(?:here|at)?[ \t]*[:：][ \t]*(?=\n|$)",
    re.IGNORECASE | re.MULTILINE,
)


def feed_summary(article: dict[str, Any]) -> str:
    """Today's summary: the feed's description, else the leading sentences (made at ingest)."""
    return article.get("summary_text") or ""


def article_text(article: dict[str, Any]) -> str:
    """The text a summary is made from: the stored body, else the feed's description."""
    return article.get("body_text") or article.get("summary_text") or ""


def lead_summary(article: dict[str, Any], max_words: int) -> str:
    """The leading sentences of the article's text, at most ``max_words`` words."""
    return summarize_text(article_text(article), max_words) or feed_summary(article)


def render_prompt(settings: Summary, article: dict[str, Any]) -> str:
    """The prompt for one article: ``settings.prompt`` with ``$title``, ``$source``, ``$text``
    and ``$max_words`` filled in (unknown ``$names`` are left as they are)."""
    return Template(settings.prompt).safe_substitute(
        title=article.get("title") or "",
        source=article.get("source") or "",
        text=article_text(article),
        max_words=str(settings.max_words),
    )


def prompt_hash(prompt: str) -> str:
    """What a stored summary is keyed by besides its model: the prompt exactly as sent, so a
    changed template, ``max_words`` or article text makes a new one."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def check_answer(answer: str | None, max_words: int) -> tuple[str | None, str]:
    """``(text, "")`` for a usable answer, else ``(None, why)``.

    Unusable: empty, over twice ``max_words`` words or :func:`~digest.ingest.sanitize.summary_chars`
    of that (one endless "word"), or markup of any kind (HTML, Markdown, JSON). An answer
    over its limit is refused, never cut. The text kept is plain, on one line, without
    control or bidi override characters, links, or a "Read more:" left by a link; templates
    escape it like any feed text."""
    raw = _BIDI.sub("", _CONTROL.sub("", answer or "")).strip()
    if not raw:
        return None, "the model's answer was empty"
    if _MARKUP.search(raw):
        return None, "the model answered with markup, not plain sentences"
    text = one_line(plain_text(_LINK_LEAD.sub("", _URL.sub("", raw))))
    words, chars, most = len(text.split()), len(text), summary_chars(2 * max_words)
    if not text:
        return None, "the model's answer was empty"
    if words > 2 * max_words:
        return None, f"the model's answer has {words} words, over twice summary.max_words ({max_words})"
    if chars > most:
        return None, f"the model's answer has {chars} characters, over {most} (twice summary.max_words)"
    return text, ""
