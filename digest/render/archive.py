"""The public archive of sent issues: pages, previous/next links, the Atom feed, and a static build.

The web app (:mod:`digest.web.archive`) and ``digest archive build`` share this
module: the data is built here (a page of issues grouped by edition, an issue's
neighbours, the feed), the link style is the caller's (``/issues/7`` on the web,
``issues/7.html`` in a static build). Only sent issues are public, and nothing
personal is in any of it.
"""

from __future__ import annotations

import hmac
import math
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import sqlite_utils

from digest.atomic import write_atomic, write_atomic_bytes
from digest.brand import accent_colors, read_logo
from digest.compose.issues import (
    category_counts,
    count_sent_issues,
    sent_issue_ids,
    sent_issues_page,
    sent_neighbours,
)
from digest.config import Config
from digest.errors import DigestError
from digest.i18n import direction, format_date, translations
from digest.render.public import feed_content, public_page
from digest.store.database import from_iso, iso, utcnow
from subscribers.tokens import TokenSigner

PER_PAGE = 20
FEED_ENTRIES = 50


@dataclass(frozen=True)
class Links:
    """How pages link to each other: ``archive(page)``, ``issue(id)``, ``feed()``, ``stylesheet()``,
    ``subscribe()`` (where the sign-up forms post), ``asset(path)`` (``/assets/logo.png`` as
    the page links it)."""

    archive: Callable[[int], str]
    issue: Callable[[int], str]
    feed: Callable[[], str]
    stylesheet: Callable[[], str]
    subscribe: Callable[[], str]
    asset: Callable[[str], str]


def page_count(db: sqlite_utils.Database) -> int:
    """How many archive pages there are (at least one, which may be empty)."""
    total = count_sent_issues(db)
    return max(1, math.ceil(total / PER_PAGE))


def archive_page(db: sqlite_utils.Database, config: Config, page: int = 1) -> dict[str, Any]:
    """One page of sent issues, newest first, grouped by edition (configured order first)."""
    pages = page_count(db)
    if page < 1 or page > pages:
        raise DigestError(f"archive page {page} does not exist; there are {pages}")
    rows = sent_issues_page(db, PER_PAGE, (page - 1) * PER_PAGE)
    groups: dict[str, dict[str, Any]] = {}
    for key, edition in config.editions.items():
        groups[key] = {"key": key, "title": edition.title or key, "issues": []}
    for issue_id, edition_key, number, subject, period_end, sent_at in rows:
        group = groups.setdefault(edition_key, {"key": edition_key, "title": edition_key, "issues": []})
        group["issues"].append(
            {
                "id": issue_id,
                "number": number,
                "subject": subject,
                "date": _local_date(config, edition_key, sent_at or period_end),
                "day": _local_day(config, edition_key, sent_at or period_end),
            }
        )
    return {
        "editions": [g for g in groups.values() if g["issues"]],
        "page": page,
        "pages": pages,
    }


def issue_nav_html(
    db: sqlite_utils.Database,
    issue_id: int,
    links: Links,
    config: Config,
    accent: tuple[str, str] = ("#1d4ed8", "#93c5fd"),
) -> str:
    """A small bar (archive, previous, next) to put at the top of an issue's web page, in the
    publication's language (arrows pointing the way it reads) and the brand's ``accent`` (light,
    dark), with 44 px tall links; dark in dark mode."""
    near = sent_neighbours(db, issue_id)
    language = config.publication.language
    words = translations(language, config.base_dir)
    rtl = direction(language) == "rtl"
    back, ahead = ("→", "←") if rtl else ("←", "→")
    parts = [f"<a href={quoteattr(links.archive(1))}>{escape(words.gettext('Archive'))}</a>"]
    if near["previous"]:
        href = quoteattr(links.issue(near["previous"]))
        parts.append(f'<a href={href} rel="prev">{back} {escape(words.gettext("Previous"))}</a>')
    if near["next"]:
        href = quoteattr(links.issue(near["next"]))
        parts.append(f'<a href={href} rel="next">{escape(words.gettext("Next"))} {ahead}</a>')
    light, dark = accent
    side = "left" if rtl else "right"
    style = (
        ".dg-nav{font-family:Helvetica,Arial,sans-serif;font-size:16px;padding:0 16px;background:#ffffff;"
        "border-bottom:1px solid #d1d5db}"
        f".dg-nav a{{display:inline-block;line-height:44px;margin-{side}:20px;color:{light}}}"
        "@media (prefers-color-scheme:dark){.dg-nav{background:#030712;border-color:#374151}"
        f".dg-nav a{{color:{dark}}}}}"
    )
    label = quoteattr(words.gettext("Issues"))
    nav = f'<nav aria-label={label} class="dg-nav" dir="{direction(language)}">'
    return f"<style>{style}</style>{nav}" + "".join(parts) + "</nav>"


def with_nav(html: str, nav: str) -> str:
    """``html`` with ``nav`` right after its ``<body>`` tag (or in front, if it has none)."""
    lower = html.lower()
    start = lower.find("<body")
    end = lower.find(">", start) if start != -1 else -1
    if end == -1:
        return nav + html
    return html[: end + 1] + nav + html[end + 1 :]


def feed_xml(
    db: sqlite_utils.Database,
    config: Config,
    links: Links,
    content: Callable[[int], str] | None = None,
) -> str:
    """An Atom feed (RFC 4287) of the latest sent issues; ``links`` must give absolute URLs
    (the feed's own is ``links.feed()``, the archive's ``links.archive(1)``). ``content(id)``,
    when given, is an entry's HTML (already sanitised: :func:`digest.render.public.feed_content`)."""
    rows = [(i, subject, end, sent) for i, _e, _n, subject, end, sent in sent_issues_page(db, FEED_ENTRIES)]
    self_url, archive_url = links.feed(), links.archive(1)
    categories_of = category_counts(db, [row[0] for row in rows])
    updated = (rows[0][3] or rows[0][2]) if rows else iso(utcnow())
    publication = config.publication
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang={quoteattr(publication.language or "en")}>',
        f"<title>{escape(publication.name)}</title>",
        f"<id>{escape(self_url)}</id>",
        f"<updated>{_atom_time(updated)}</updated>",
        f"<author><name>{escape(publication.name)}</name></author>",
        f'<link rel="self" type="application/atom+xml" href={quoteattr(self_url)}/>',
        f'<link rel="alternate" type="text/html" href={quoteattr(archive_url)}/>',
    ]
    for issue_id, subject, period_end, sent_at in rows:
        url = links.issue(issue_id)
        categories = categories_of[issue_id]
        summary = ", ".join(f"{name} ({count})" for name, count in categories) or "No articles"
        out += [
            "<entry>",
            f"<title>{escape(subject)}</title>",
            f"<id>{escape(url)}</id>",
            f"<updated>{_atom_time(sent_at or period_end)}</updated>",
            f'<link rel="alternate" type="text/html" href={quoteattr(url)}/>',
            f"<summary>{escape(summary)}</summary>",
            *([f'<content type="html">{escape(content(issue_id))}</content>'] if content else []),
            *(f"<category term={quoteattr(name)}/>" for name, _ in categories),
            "</entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def build_archive(
    db: sqlite_utils.Database,
    config: Config,
    outdir: Path,
    *,
    render_page: Callable[[dict[str, Any], Links], str],
    render_issue: Callable[[int], str],
    stylesheet: str,
) -> dict[str, int]:
    """Write the archive as static files into ``outdir``; returns counts of what was written.

    Layout: ``index.html`` (page 1), ``page-N.html``, ``issues/<id>.html``, ``feed.atom``,
    ``style.css``, and ``assets/logo.<ext>`` when ``[render] logo`` is set (the address every
    email loads it from, under ``publication.base_url``). Links between them are relative, so
    the folder works under any path; the feed's links are absolute (``publication.base_url``),
    as feed readers need.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "issues").mkdir(exist_ok=True)
    base = config.publication.base_url.rstrip("/")
    top, nested, absolute = _static_links(base)
    accent = (config.render.accent_color, config.render.accent_color_dark)
    pages = page_count(db)
    for n in range(1, pages + 1):
        _write(outdir / top.archive(n), render_page(archive_page(db, config, n), top))
    ids = sent_issue_ids(db)
    contents: dict[int, str] = {}  # the feed entries' HTML, much smaller than the pages
    for issue_id in ids:
        email_html = render_issue(issue_id)
        contents[issue_id] = feed_content(email_html)
        page = public_page(email_html, config, nested.subscribe())
        html = with_nav(page, issue_nav_html(db, issue_id, nested, config, accent_colors(*accent)))
        _write(outdir / "issues" / f"{issue_id}.html", html)
    feed = feed_xml(db, config, absolute, contents.__getitem__)
    _write(outdir / "feed.atom", feed)
    _write(outdir / "style.css", stylesheet)
    if config.render.logo:
        logo = read_logo(config.path(config.render.logo))
        (outdir / "assets").mkdir(exist_ok=True)
        _write_bytes(outdir / logo.url_path.lstrip("/"), logo.path.read_bytes())
    return {"pages": pages, "issues": len(ids)}


def _static_links(base: str) -> tuple[Links, Links, Links]:
    """Links from the archive's top folder and from ``issues/`` (relative, so the folder works
    under any path), and absolute ones under ``base`` (for the feed)."""
    top = Links(
        archive=lambda n: "index.html" if n == 1 else f"page-{n}.html",
        issue=lambda i: f"issues/{i}.html",
        feed=lambda: "feed.atom",
        stylesheet=lambda: "style.css",
        subscribe=lambda: f"{base}/subscribe",
        asset=lambda path: path.lstrip("/"),
    )
    nested = Links(
        archive=lambda n: "../index.html" if n == 1 else f"../page-{n}.html",
        issue=lambda i: f"{i}.html",
        feed=lambda: "../feed.atom",
        stylesheet=lambda: "../style.css",
        subscribe=lambda: f"{base}/subscribe",
        asset=lambda path: "../" + path.lstrip("/"),
    )
    absolute = Links(
        archive=lambda n: f"{base}/index.html",
        issue=lambda i: f"{base}/issues/{i}.html",
        feed=lambda: f"{base}/feed.atom",
        stylesheet=lambda: f"{base}/style.css",
        subscribe=lambda: f"{base}/subscribe",
        asset=lambda path: base + path,
    )
    return top, nested, absolute


def _write(path: Path, text: str) -> None:
    """Write whole (a reader of the folder never sees half a page) and through a fresh
    temporary name, so a link planted in OUTDIR is never followed (digest.atomic)."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise DigestError(f"{path}: cannot write ({exc.strerror})") from None


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        write_atomic_bytes(path, data)
    except OSError as exc:
        raise DigestError(f"{path}: cannot write ({exc.strerror})") from None


def _local_date(config: Config, edition_key: str, when: str) -> str:
    edition = config.editions.get(edition_key)
    zone = edition.zone if edition else zoneinfo.ZoneInfo(config.publication.timezone)
    return from_iso(when).astimezone(zone).date().isoformat()


def _local_day(config: Config, edition_key: str, when: str) -> str:
    """The issue's day as a reader reads it, in the publication's language."""
    edition = config.editions.get(edition_key)
    zone = edition.zone if edition else zoneinfo.ZoneInfo(config.publication.timezone)
    return format_date(from_iso(when).astimezone(zone), config.publication.language)


def _atom_time(text: str) -> str:
    return from_iso(text).strftime("%Y-%m-%dT%H:%M:%SZ")


TEST_PURPOSE = "issue-test"


def issue_test_token(secret: bytes, issue_id: int) -> str:
    """A signed token that shows issue ``issue_id`` on the web even while it is a draft."""

    return f"{issue_id}.{TokenSigner(secret).mac(TEST_PURPOSE, str(issue_id))}"


def check_issue_test_token(secret: bytes, issue_id: int, token: str) -> bool:
    """True when ``token`` is :func:`issue_test_token` for ``issue_id`` (compared in constant time)."""
    return hmac.compare_digest(issue_test_token(secret, issue_id).encode(), token.encode("utf-8", "replace"))


def issue_test_link(config: Config, secret: bytes, issue_id: int) -> str:
    """The web address of an issue's test view: ``<base_url>/issues/<id>/test/<token>``."""
    base = config.publication.base_url.rstrip("/")
    return f"{base}/issues/{issue_id}/test/{issue_test_token(secret, issue_id)}"
