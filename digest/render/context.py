"""The template context of an issue: what ``issue.mjml.j2`` and ``issue.txt.j2`` see.

:func:`template_context` builds it from the issue, its snapshot and the articles to show.
Every untrusted value passes :func:`defuse` first, so feed text can never become a live
per-recipient placeholder.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from pathlib import Path
from typing import Any

from digest.brand import Logo, accent_colors, font_stack, read_logo
from digest.config import Config
from digest.errors import DigestError
from digest.i18n import direction, format_date, format_datetime, translations
from digest.ingest.bylines import byline
from digest.ingest.images import checked_image
from digest.ingest.sanitize import break_long_words, clean_text, cut_chars, safe_url, summary_chars
from digest.render.click_links import CANARY, click_url
from digest.render.lead import pick_lead
from digest.render.personalise import ATTRIBUTE_PREFIX, PLACEHOLDERS, placeholder_token
from digest.store.database import from_iso
from subscribers.model import attribute_key
from subscribers.tokens import load_secret

IMAGE_WIDTH = 544
"""Lead images are shown at most this wide (the 600 px column less its padding)."""


_DOUBLE_UNDERSCORE_RE = re.compile(r"_(?=_)")


def defuse(value: Any, *, url: bool = False) -> Any:
    """Untrusted text must never contain a live placeholder (a feed title that says
    ``__DIGEST_EMAIL__`` would otherwise be filled with the reader's address).

    Every placeholder starts and ends with ``__``, so every run of two underscores is broken
    (and a leading or trailing underscore fenced off from neighbouring template text): no
    filter a template applies afterwards (``upper``, ``title``, ``wrap`` …) and no spelling
    of the token in any case can rebuild one. Text gets an invisible WORD JOINER; a URL gets
    ``%5F``, the same address to any server, so links keep working."""
    if isinstance(value, list):  # a snapshot's list of links, e.g. an article's also_covered
        return [
            {k: defuse(v, url=k == "url") for k, v in d.items()} if isinstance(d, dict) else d for d in value
        ]
    if not isinstance(value, str):
        return value
    # Content must never make an issue unrenderable: no control character reaches MJML.
    value = safe_url(value) if url else clean_text(value)
    if "_" not in value:
        return value
    if url:
        return value.replace("__", "_%5F")
    value = _DOUBLE_UNDERSCORE_RE.sub("_\u2060", value)
    if value.startswith("_"):
        value = "\u2060" + value
    if value.endswith("_"):
        value += "\u2060"
    return value


def summary_limit(config: Config) -> int:
    """The most characters an article's summary shows in an issue: room for the longest the
    feed (``ingest.summary_words``) or a model (twice ``summary.max_words``) may give."""
    return summary_chars(max(config.ingest.summary_words, 2 * config.summary.max_words))


def _shown_text(article: dict[str, Any], limit: int) -> dict[str, Any]:
    """The title and summary as shown: the summary at most ``limit`` characters (a snapshot
    made before summaries were cut by characters may hold 200,000), no word wider than the
    column."""
    shown = dict(article)
    for key in ("title", "summary"):
        value = shown.get(key)
        if isinstance(value, str):
            shown[key] = break_long_words(cut_chars(value, limit) if key == "summary" else value)
    return shown


@functools.lru_cache(maxsize=1024)
def _local_time(when: str, zone: str, language: str, day_only: bool = False) -> str:
    """An ISO time shown in ``zone`` in the language's style (cached: once per article)."""
    at = from_iso(when).astimezone(zoneinfo.ZoneInfo(zone))
    return format_date(at, language) if day_only else format_datetime(at, language)


def _localised(article: dict[str, Any], zone: str, language: str, words: Any) -> dict[str, Any]:
    """The article with ``published_local`` and the summary's label in the publication's
    language (snapshots store them in English; ``published_at`` is the truth)."""
    label, when = article.get("summary_label"), article.get("published_at")
    if label:
        article = {**article, "summary_label": words.gettext(label)}
    if language.lower() == "en" or not when or not zone:
        return article
    try:
        return {**article, "published_local": _local_time(str(when), zone, language)}
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return article


def _article(article: dict[str, Any], images: bool, limit: int) -> dict[str, Any]:
    """One snapshot article for the templates: untrusted text defused, title and summary
    bounded (:func:`_shown_text`); the optional fields (author, undated, summary_label,
    also_covered, image) always present."""
    article = _shown_text(article, limit)
    out = {k: defuse(v, url=k == "url") for k, v in article.items() if k not in ("also_covered", "image")}
    # A name, never an address, also for articles stored before ingest cleaned bylines.
    out["author"] = defuse(byline(str(article.get("author") or "")))
    out["reading_minutes"] = _minutes(article.get("reading_minutes"))
    out.setdefault("undated", False)
    out.setdefault("summary_label", "")
    out.setdefault("summary_checked", False)
    out.setdefault("news", "")  # a story sent before, with news: "Now also reported by …"
    out["also_covered"] = [
        {"source": defuse(str(c.get("source") or "")), "url": defuse(str(c.get("url") or ""), url=True)}
        for c in article.get("also_covered") or []
        if isinstance(c, dict) and c.get("url")
    ]
    out["image"] = _image(article.get("image")) if images else None
    return out


def _minutes(value: Any) -> int:
    """Reading minutes as shown: 0 (not shown) when unknown."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _image(image: Any) -> dict[str, Any] | None:
    """A lead image fit to show: an https/http URL with a sane size (never a 1×1 tracker),
    scaled to the content width; alt text the image's own (a caption), else empty: never
    the headline, which stands right beside it."""
    checked = checked_image(image) if isinstance(image, dict) else None
    if checked is None:
        return None  # unknown or tiny: a tracking pixel, or a layout jump when it loads
    url, width, height = checked["url"], checked["width"], checked["height"]
    shown_width = min(width, IMAGE_WIDTH)
    return {
        "url": defuse(url, url=True),
        "width": shown_width,
        "height": round(height * shown_width / width),
        "alt": defuse(str(image.get("alt") or "")),
    }


def template_context(
    config: Config,
    issue: dict[str, Any],
    snapshot: dict[str, Any],
    sections: list[dict[str, Any]],
    keep: set[int],
) -> dict[str, Any]:
    """The context for rendering ``sections`` of the issue, showing the articles whose id is in
    ``keep`` (the rest are counted as "N more in the web version")."""
    categories = []
    images, limit = config.render.images, summary_limit(config)
    language, zone = config.publication.language or "en", str(snapshot.get("timezone") or "")
    words = translations(language, config.base_dir)
    sections = [
        {**s, "articles": [_localised(a, zone, language, words) for a in s["articles"]]} for s in sections
    ]
    chosen = pick_lead(sections)
    lead_id = chosen["id"] if chosen is not None and chosen["id"] in keep else None
    lead = None
    for section in sections:
        articles = section["articles"]
        kept = [a for a in articles if a["id"] in keep]
        if any(a["id"] == lead_id for a in kept):
            lead = {**_article(chosen, images, 2 * limit), "category": defuse(section["name"])}
        categories.append(
            {
                "name": defuse(section["name"]),
                "count": len(articles),
                "articles": [_article(a, images, limit) for a in kept if a["id"] != lead_id],
                "shown": len(kept),  # the lead counted in its own section
                "more": len(articles) - len(kept),
            }
        )
    pub = config.publication
    canary = _count_clicks(config, issue["id"], categories, lead) if config.render.count_clicks else ""
    return {
        "language": language,
        "dir": direction(language),
        "brand": brand_context(config),
        "lead": lead,
        "subject": defuse(issue["subject"]),
        "preheader": defuse(issue["preheader"]),
        "publication": _publication(pub),
        "edition": {
            "key": snapshot.get("edition", issue["edition"]),
            "title": defuse(snapshot["edition_title"]),
        },
        "issue": {"id": issue["id"], "number": issue["number"], "date": _issue_date(snapshot, language)},
        "note": _note_paragraphs(issue),
        "web_url": web_url(config, issue["id"]),
        "categories": categories,
        "total": sum(c["count"] for c in categories),
        "shown": sum(c["shown"] for c in categories),
        "canary_url": canary,
        "p": PLACEHOLDERS,
        "subscriber": _SubscriberFields(),
    }


def _publication(pub: Any) -> dict[str, str]:
    return {"name": defuse(pub.name), "postal_address": defuse(pub.postal_address), "base_url": pub.base_url}


def _note_paragraphs(issue: dict[str, Any]) -> list[str]:
    """The editor's note as paragraphs (split at blank lines, spaces collapsed), defused."""
    return [
        defuse(" ".join(para.split())) for para in str(issue.get("note") or "").split("\n\n") if para.strip()
    ]


def _count_clicks(
    config: Config, issue_id: int, categories: list[dict[str, Any]], lead: dict[str, Any] | None
) -> str:
    """Point every shown story link (the lead's too) at its counted ``/r/`` link, the same
    for every reader; return the issue's hidden canary link."""
    secret, base = load_secret(config), config.publication.base_url
    stories = [article for category in categories for article in category["articles"]]
    for article in [*stories, *([lead] if lead else [])]:
        article["url"] = click_url(base, secret, issue_id, article["id"])
    return click_url(base, secret, issue_id, CANARY)


def _issue_date(snapshot: dict[str, Any], language: str) -> str:
    """The issue's date (its period's end, in the edition's zone) in the publication's language."""
    end, zone = snapshot.get("period_end"), snapshot.get("timezone")
    if language.lower() == "en" or not end or not zone:
        return snapshot["date"]
    try:
        return _local_time(str(end), str(zone), language, day_only=True)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return snapshot["date"]


class _AttributeFields:
    """``subscriber.attributes.KEY`` (or ``["Column Name"]``) in a template: KEY's placeholder."""

    def __getattr__(self, name: str) -> str:
        return self[name]

    def __getitem__(self, name: str) -> str:

        key = attribute_key(str(name))
        if not key:
            raise DigestError(f"template: {name!r} is not an attribute name; use letters, digits and _")
        return placeholder_token(ATTRIBUTE_PREFIX + key)


class _SubscriberFields:
    """The ``subscriber`` a template sees: placeholders filled per recipient at send time."""

    name = PLACEHOLDERS["name"]
    first_name = PLACEHOLDERS["first_name"]
    email = PLACEHOLDERS["email"]
    attributes = _AttributeFields()


def brand_context(config: Config) -> dict[str, Any]:
    """The brand every email template sees as ``brand``: ``accent`` and ``accent_dark``
    (``#rrggbb``), ``font`` (a CSS font stack), ``masthead`` (a line under the logo) and
    ``logo`` (``{url, width, height}`` as shown, or None)."""
    r = config.render
    accent, accent_dark = accent_colors(r.accent_color, r.accent_color_dark)
    logo = None
    if r.logo:
        found = cached_logo(config.path(r.logo))
        base = config.publication.base_url.rstrip("/")
        logo = {"url": base + found.url_path, "width": found.shown_width, "height": found.shown_height}
    return {
        "accent": accent,
        "accent_dark": accent_dark,
        "font": font_stack(r.font),
        "masthead": defuse(r.masthead),
        "logo": logo,
    }


def cached_logo(path: Path) -> Logo:
    """The logo read (cached while the file is unchanged: a render or a page must not re-read it)."""
    try:
        stat = path.stat()
    except OSError:
        return read_logo(path)  # raises the clear error
    return _cached_logo(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _cached_logo(path: Path, _mtime: int, _size: int) -> Logo:
    return read_logo(path)


def web_url(config: Config, issue_id: int) -> str:
    """The issue's "view in browser" address."""
    return f"{config.publication.base_url.rstrip('/')}/issues/{issue_id}"
