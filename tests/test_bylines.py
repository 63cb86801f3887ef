"""Bylines are names: a feed's author field never prints an address (ingest and render)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.config import load_config
from digest.ingest.articles import ArticleInput, prepare_article
from digest.ingest.bylines import byline

NOW = datetime(2026, 1, 23, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("author", "name"),
    [
        ("reviews@riverside.example (Elena Fischer)", "Elena Fischer"),
        ("Elena Fischer <elena@riverside.example>", "Elena Fischer"),
        ("Elena Fischer (elena@riverside.example)", "Elena Fischer"),
        ("mailto:desk@riverside.example (Tom Baker)", "Tom Baker"),
        ("A. Smith, b.jones@riverside.example", "A. Smith"),
        ("desk@riverside.example", ""),
        ("<desk@riverside.example>", ""),
        ("noreply@blogger.com (Unknown)", ""),
        ("Mara Quill", "Mara Quill"),
        ("Dr. Who (BBC)", "Dr. Who (BBC)"),
        ("", ""),
    ],
)
def test_a_byline_is_the_name_and_never_an_address(author: str, name: str) -> None:
    assert byline(author) == name


def test_ingest_stores_the_name_only() -> None:
    config = load_config(None)
    raw = "reviews@riverside.example (Elena Fischer)"
    item = ArticleInput(title="T", url="https://x.example/t", author=raw)
    assert prepare_article(config, item, now=NOW)["author"] == "Elena Fischer"
    item = ArticleInput(title="T", url="https://x.example/t", author="desk@riverside.example")
    assert prepare_article(config, item, now=NOW)["author"] is None


def test_reading_time_is_stored_only_when_the_article_text_is_known() -> None:
    config = load_config(None)
    summary = ArticleInput(title="T", url="https://x.example/t", summary_html="<p>Forty words " * 10 + "</p>")
    assert prepare_article(config, summary, now=NOW)["reading_minutes"] == 0  # was 1: from the summary
    body = "<p>" + "The council met. " * 400 + "</p>"
    full = ArticleInput(title="T", url="https://x.example/t", summary_html="Short.", content_html=body)
    assert prepare_article(config, full, now=NOW)["reading_minutes"] == 5
