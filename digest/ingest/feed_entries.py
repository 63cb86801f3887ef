"""Feed bytes → article inputs: :func:`parse_feed` (RSS, Atom, RDF through feedparser).

Before parsing, :func:`scrub_feed_bytes` removes what no XML may hold; each entry gets its
link resolved against a safe base, its HTML declared honestly, and its own date
(:func:`entry_date`). No database access.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from digest.config import Config
from digest.errors import DigestError
from digest.ingest.articles import (
    UNIX_TIME,
    ArticleInput,
    configured_spelling,
    map_category,
    parse_date,
)
from digest.ingest.fetch import Fetched, is_http
from digest.ingest.images import entry_image
from digest.ingest.sanitize import is_web_url, one_line, plain_text, resolve_url, text_to_html
from digest.ingest.urls import canonical_url

XML_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
"""Byte-order marks of UTF-16/32 XML (a feed in those encodings starts with one)."""


def parse_feed(
    config: Config,
    source: str,
    fetched: Fetched,
    feed: dict[str, Any] | None,
    warnings: list[str],
) -> tuple[list[ArticleInput], str | None]:
    """Parse feed bytes into article inputs; return them and the feed's title. An entry
    without any usable link gets ``url=""`` (the caller skips it: a digest item must link
    somewhere). Raises DigestError when nothing in it is a feed entry."""
    parsed = _feedparser_result(fetched)
    entries = parsed.get("entries") or []
    problem = _bozo_text(parsed)
    if not entries:
        head = (fetched.content or b"")[:2048].lower()
        if b"<html" in head or b"<!doctype html" in head:
            raise DigestError(f"{source}: a web page, not a feed; give the feed's own URL")
        if problem or not parsed.get("version"):
            raise DigestError(f"{source}: no feed entries found ({problem or 'not a feed'})")
        warnings.append(f"{source}: the feed has no entries")
        return [], None
    if problem:
        warnings.append(f"{source}: parsed with warnings ({problem})")
    meta = parsed.get("feed", {})
    feed_title = plain_text(_detail_text(meta, "title")) or None
    feed_base = _feed_base(fetched, meta)
    feed_category = (feed or {}).get("category")
    if feed_category:
        feed_category = configured_spelling(feed_category, config)
    source_name = (
        (feed or {}).get("name") or feed_title or (urlsplit(feed_base).hostname if feed_base else None)
    )
    items, kept_apart = _articles(config, entries, feed_base, feed_category, source_name)
    if kept_apart:
        what = "entry reuses" if kept_apart == 1 else "entries reuse"
        warnings.append(f"{source}: {kept_apart} {what} an earlier entry's guid; kept as separate articles")
    return items, feed_title


def _feedparser_result(fetched: Fetched) -> Any:
    """feedparser's reading of the fetched bytes (scrubbed first); we sanitise and resolve links ourselves."""
    headers = {}
    if is_http(fetched.url):
        headers["content-location"] = fetched.url
        if fetched.content_type:
            headers["content-type"] = fetched.content_type
    parsed = feedparser.parse(
        scrub_feed_bytes(fetched.content or b""),
        sanitize_html=False,  # nh3 does it, linearly, with our allow-list
        resolve_relative_uris=False,  # done while sanitising, against a safe base
        response_headers=headers,
    )
    return parsed


def _articles(
    config: Config,
    entries: list[Any],
    feed_base: str | None,
    feed_category: str | None,
    source_name: str | None,
) -> tuple[list[ArticleInput], int]:
    """One article input per entry (an entry listed twice once), and how many entries that
    reused an earlier entry's guid were kept apart under a guid of their own."""
    items: list[ArticleInput] = []
    seen: dict[str, tuple[str, str]] = {}
    kept_apart = 0
    for entry in entries:
        link = resolve_url(entry.get("link"), feed_base)
        guid = (entry.get("id") or "").strip() or None
        if link is None and guid and is_web_url(guid):
            link = guid
        title = _entry_title(entry)
        if guid:
            fingerprint = (canonical_url(link) if link else "", title)
            previous = seen.get(guid)
            if previous is None:
                seen[guid] = fingerprint
            elif previous == fingerprint:
                continue  # the same item listed twice
            else:
                # Feeds reuse guids by mistake; two different items must stay two articles.
                digest = hashlib.sha256("\n".join(fingerprint).encode()).hexdigest()[:12]
                guid = f"{guid}#{digest}"
                kept_apart += 1
        summary, content = _entry_html(entry)
        items.append(
            ArticleInput(
                title=title,
                url=link or "",
                guid=guid,
                summary_html=summary.get("value") if summary else None,
                content_html=content.get("value") if content else None,
                category=feed_category or map_category(_first_category(entry), config),
                source_category=None if feed_category else (_first_category(entry) or ""),
                source=source_name,
                author=entry.get("author"),
                published=entry_date(entry),
                base_url=_base_for(summary or content, feed_base, link or ""),
                image=entry_image(entry),
            )
        )
    return items, kept_apart


# A character reference, decimal or hex (digits capped: longer ones are out of range anyway).
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
# Raw C0 controls other than tab, LF and CR: never valid XML, and never part of a multi-byte
# character in an ASCII-compatible encoding.
_RAW_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]+")


def _forbidden(code: int) -> bool:
    return (
        code > 0x10FFFF
        or 0xD800 <= code <= 0xDFFF
        or code in (0xFFFE, 0xFFFF)
        or (code < 0x20 and code not in (0x09, 0x0A, 0x0D))
        or 0x7F <= code <= 0x9F
    )


def _charref(m: re.Match[bytes]) -> bytes:
    hexa, dec = m.group(1), m.group(2)
    code = int(hexa, 16) if hexa else int(dec)
    return b"" if _forbidden(code) else m.group(0)


def scrub_feed_bytes(content: bytes) -> bytes:
    """Feed bytes without what no XML may hold: raw C0 controls and character references to
    controls, surrogates, U+FFFE/U+FFFF or past U+10FFFF (a ``&#xD800;`` crashes
    feedparser's fallback parser; a ``&#x1b;`` forces that fallback). UTF-16/32 feeds are
    left as they are (their bytes are not ASCII-compatible). Linear."""
    head = content[:4]
    if head.startswith(XML_BOMS) or b"\x00" in head:
        return content
    content = _RAW_CONTROLS.sub(b"", content)
    if b"&#" in content:
        content = _CHARREF.sub(_charref, content)
    return content


def _bozo_text(parsed: Any) -> str:
    if not parsed.get("bozo"):
        return ""
    exc = parsed.get("bozo_exception")
    text = str(exc) if exc else "malformed"
    text = one_line(text) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _feed_base(fetched: Fetched, meta: Any) -> str | None:
    candidates = [fetched.url if is_http(fetched.url) else None]
    for link in meta.get("links") or []:
        if link.get("rel") == "self":
            candidates.append(link.get("href"))
    candidates.append(meta.get("link"))
    for candidate in candidates:
        if is_web_url(candidate):
            return candidate
    return None


def _base_for(detail: Any, feed_base: str | None, link: str) -> str:
    base = (detail or {}).get("base")
    if is_web_url(base):
        return base
    return feed_base or link


def _detail_text(obj: Any, key: str) -> str:
    detail = obj.get(f"{key}_detail") or {}
    value = obj.get(key) or ""
    kind = (detail.get("type") or "").lower()
    if "html" in kind:
        return plain_text(value)
    return one_line(value)


def _entry_title(entry: Any) -> str:
    # Empty when the entry has none: prepare_article names it by its first words.
    return _detail_text(entry, "title")


def _entry_html(entry: Any) -> tuple[Any, Any]:
    summary = entry.get("summary_detail") if entry.get("summary") else None
    contents = [c for c in entry.get("content") or [] if c.get("value")]
    content = None
    if contents:
        htmlish = [c for c in contents if "html" in (c.get("type") or "")]
        content = max(htmlish or contents, key=lambda c: len(c.get("value") or ""))
    return _as_html(summary), _as_html(content)


# Markup in a field declared as plain text: a tag or an entity. Feeds mislabel often.
_LOOKS_HTML = re.compile(r"<[a-zA-Z/!]|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});")


def _as_html(detail: Any) -> Any:
    if detail is None or "html" in (detail.get("type") or "html"):
        return detail
    value = detail.get("value") or ""
    if _LOOKS_HTML.search(value):
        return detail
    return {**detail, "value": text_to_html(value)}


def _first_category(entry: Any) -> str | None:
    for tag in entry.get("tags") or []:
        label = (tag.get("label") or "").strip()
        term = (tag.get("term") or "").strip()
        if label:
            return label
        if term and not is_web_url(term):
            return term
    return None


def entry_date(entry: Any) -> datetime | None:
    """The entry's own date, aware UTC: published, else updated, else created; None if it
    has none that parses. Unix timestamps are read as such (feedparser misreads them)."""
    for key in ("published", "updated", "created"):
        # dict.get: FeedParserDict.get("published") falls back to "updated" with a warning.
        raw = dict.get(entry, key)
        if isinstance(raw, str) and UNIX_TIME.match(raw):
            try:
                return parse_date(raw)
            except ValueError:
                pass  # out of range: feedparser's own reading (below) may still have one
        parsed = dict.get(entry, f"{key}_parsed")
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=UTC)
            except (TypeError, ValueError, OverflowError):
                pass
        if isinstance(raw, str) and raw.strip():
            try:
                return parse_date(raw)
            except ValueError:
                continue
    return None
