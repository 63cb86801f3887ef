"""Articles' own pages: fetched once, their main text kept for summaries (``article_pages``).

With ``[summary] fetch_article = true`` a summary is made from the article itself rather than
the feed's teaser. :func:`fetch_pages` reads each page within ingest's limits (``ingest.timeout``,
``ingest.max_bytes``, urllib's redirect limit, http(s) only), asks the site's robots.txt first
(read once per site per call), makes one request per site at a time (sites in parallel,
``ingest.concurrency`` of them), and extracts the main text with trafilatura (navigation,
boilerplate and comments left out). Each article is tried once: a refusal or a failure is
stored too, with its reason, so a later build does not knock again.

This module is the only writer of ``article_pages``; :func:`page_texts` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import sqlite_utils

from digest.config import Config
from digest.errors import ConfigError
from digest.ingest.fetch import FetchError, fetch, is_http
from digest.ingest.sanitize import count_words, one_line
from digest.store.database import iso, transaction, utcnow

PAGE_TEXT_MAX = 50_000
"""Characters of a page's main text kept (``article_pages.text``)."""
INSTALL_HINT = "pip install 'digest-newsletter[fetch]'"


@dataclass
class Page:
    """One article's page as stored: its main text (empty when it could not be had) and why not."""

    url: str
    text: str
    words: int
    error: str = ""


@dataclass
class PageReport:
    """What :func:`fetch_pages` did: pages read, and one warning per page that could not be."""

    fetched: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)


def page_texts(db: sqlite_utils.Database, article_ids: Iterable[int]) -> dict[int, Page]:
    """The stored page of each article that has one (tried, with or without text), by id."""
    wanted = list(dict.fromkeys(article_ids))
    found: dict[int, Page] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(
            f"SELECT article_id, url, text, words, error FROM article_pages WHERE article_id IN ({marks})",
            chunk,
        ):
            found[row["article_id"]] = Page(row["url"], row["text"], row["words"], row["error"])
    return found


def fetch_pages(db: sqlite_utils.Database, config: Config, articles: Iterable[dict[str, Any]]) -> PageReport:
    """Fetch and store the page of each article (an ``articles`` row) not tried before.

    Raises ConfigError when trafilatura is not installed; one page's failure (robots.txt
    says no, too big, too slow, no main text) is a warning and a stored reason."""
    tried = page_texts(db, [a["id"] for a in articles])
    todo = [a for a in articles if a["id"] not in tried and is_http(a.get("url") or "")]
    report = PageReport()
    if not todo:
        return report
    _extractor()  # fail early, before any request, when the library is missing
    by_site: dict[str, list[dict[str, Any]]] = {}
    for article in todo:
        by_site.setdefault(_site(article["url"]), []).append(article)
    workers = max(1, min(config.ingest.concurrency, len(by_site)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digest-page") as pool:
        results = list(pool.map(lambda site: _fetch_site(config, site, by_site[site]), by_site))
    for site_results in results:
        for article, page in site_results:
            _store(db, article["id"], page)
            if page.text:
                report.fetched += 1
            else:
                report.failed += 1
                title = one_line(article.get("title") or "")[:80]
                report.warnings.append(
                    f"article {article['id']} ({title!r}): its page was not used ({page.error})"
                )
    return report


def _fetch_site(config: Config, site: str, articles: list[dict[str, Any]]) -> list[tuple[dict, Page]]:
    """One site's pages, one request at a time, after its robots.txt."""
    robots = _robots(config, site)
    agent = config.ingest.user_agent
    refused = "robots.txt does not allow it"
    return [
        (
            a,
            _fetch_page(config, a["url"])
            if robots.can_fetch(agent, a["url"])
            else Page(a["url"], "", 0, refused),
        )
        for a in articles
    ]


def _robots(config: Config, site: str) -> RobotFileParser:
    """The site's robots.txt rules (RFC 9309): none found (4xx) allows everything; 401/403,
    a server error or no answer at all disallows everything."""
    parser = RobotFileParser(site + "/robots.txt")
    try:
        got = fetch(
            site + "/robots.txt",
            timeout=config.ingest.timeout,
            max_bytes=500_000,
            user_agent=config.ingest.user_agent,
        )
    except FetchError as exc:
        if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403):
            parser.allow_all = True
        else:
            parser.disallow_all = True
        return parser
    parser.parse((got.content or b"").decode("utf-8", "replace").splitlines())
    return parser


def _fetch_page(config: Config, url: str) -> Page:
    try:
        got = fetch(
            url,
            timeout=config.ingest.timeout,
            max_bytes=config.ingest.max_bytes,
            user_agent=config.ingest.user_agent,
        )
    except FetchError as exc:
        return Page(url, "", 0, str(exc).removeprefix(f"{url}: "))
    text = (_extractor()(got.content or b"", got.url) or "").strip()[:PAGE_TEXT_MAX]
    if not text:
        return Page(got.url, "", 0, "no main text found on the page")
    return Page(got.url, text, count_words(text))


def _extractor() -> Callable[[bytes, str], str | None]:
    try:
        import trafilatura  # lazy: start-up (and an optional dependency)
    except ImportError:
        raise ConfigError(
            f"summary.fetch_article = true needs the trafilatura library, which is not installed; "
            f"run: {INSTALL_HINT}"
        ) from None

    def extract(html: bytes, url: str) -> str | None:
        return trafilatura.extract(
            html, url=url, include_comments=False, include_tables=False, favor_precision=True
        )

    return extract


def _site(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))


def _store(db: sqlite_utils.Database, article_id: int, page: Page) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO article_pages (article_id, url, text, words, error, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (article_id) DO NOTHING",
            [article_id, page.url, page.text, page.words, page.error[:500], iso(utcnow())],
        )
