"""An issue's subject line and inbox preheader, from the edition's pattern and headlines.

:func:`make_subject` fills the pattern (cutting a long headline at a word);
:func:`make_preheader` joins the next headlines; :func:`issue_subject` remakes a stored
issue's subject around another headline (a category variant's own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from digest.config import Config, Edition
from digest.errors import ConfigError
from digest.i18n import format_date
from digest.store.database import from_iso

PREHEADER_HEADLINES = 3
PREHEADER_MAX_CHARS = 150

SUBJECT_MAX_CHARS = 78


def subject_pattern(config: Config, edition: Edition) -> str:
    """The edition's subject pattern, else ``render.subject``."""
    return edition.subject or config.render.subject


def make_subject(
    config: Config, edition: Edition, number: int, local_date: datetime, *, headline: str = ""
) -> str:
    """The subject from the edition's pattern (else ``render.subject``).

    Fields: ``{title}`` (edition title), ``{number}``, ``{date}`` (``23 Jan 2026``, in the
    publication's language), ``{publication}``, ``{edition}`` (its key), ``{headline}`` (the
    top story). A subject with a headline is kept within :data:`SUBJECT_MAX_CHARS` by cutting
    the headline at a word (with "…"); the other fields are never cut.
    """
    pattern = subject_pattern(config, edition)
    values = {
        "title": edition.title,
        "number": number,
        "date": format_date(local_date, config.publication.language),
        "publication": config.publication.name,
        "edition": edition.key,
    }

    def fill(head: str) -> str:
        try:
            text = pattern.format(**values, headline=head)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{config.source}: subject pattern {pattern!r} is invalid ({exc!r}); "
                "use the fields {title}, {number}, {date}, {publication}, {edition}, {headline}"
            ) from None
        # Never let a header line break through.
        return " ".join(text.split())

    words = " ".join(headline.split()).split(" ")
    subject = fill(" ".join(words))
    if "{headline}" not in pattern or len(subject) <= SUBJECT_MAX_CHARS:
        return subject
    while words:
        words.pop()
        cut = " ".join(words).rstrip(" ,;:·-–—")
        if cut and len(fill(cut + "…")) <= SUBJECT_MAX_CHARS:
            return fill(cut + "…")
    return fill("").rstrip(" :·-–—")


def issue_subject(config: Config, issue: dict[str, Any], headline: str) -> str:
    """The issue's subject with ``headline`` as its top story (a category variant's own);
    the stored subject when the pattern has no ``{headline}`` or the edition is gone."""
    edition = config.editions.get(issue["edition"])
    if edition is None or "{headline}" not in subject_pattern(config, edition) or not headline:
        return issue["subject"]
    local_end = from_iso(issue["period_end"]).astimezone(edition.zone)
    return make_subject(config, edition, issue["number"], local_end, headline=headline)


def preheader_titles(config: Config, edition: Edition | None, titles: list[str]) -> list[str]:
    """The headlines for the preheader: the ones after the subject's own headline (when the
    subject carries one and there are more), so the inbox shows the next stories."""
    if edition is not None and "{headline}" in subject_pattern(config, edition) and len(titles) > 1:
        return titles[1:]
    return titles


def make_preheader(titles: list[str]) -> str:
    """The inbox preview line: the top headlines joined with `` · ``, cut near 150 characters."""
    text = " · ".join(" ".join(t.split()) for t in titles[:PREHEADER_HEADLINES])
    if len(text) > PREHEADER_MAX_CHARS:
        text = text[: PREHEADER_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(" ·") + "…"
    return text
