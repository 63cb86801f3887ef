"""Articles: identity, normalisation, and the one place that writes the ``articles`` table.

Identity (the ``guid`` column) is the feed's guid, else the canonical link (tracking
parameters removed), else a hash of title + date. Guids that are not globally
unique by shape (``42``, ``post-7``) are scoped to their source so two feeds' "42"
stay two articles; URL guids are canonicalised so a feed's permalink guid and
the same link in an article file meet in one row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError, NotFound
from digest.ingest.bylines import byline
from digest.ingest.category_names import CATEGORY_MAX as CATEGORY_MAX  # its old home: callers import it here
from digest.ingest.category_names import clean_category as clean_category
from digest.ingest.category_names import configured_spelling as configured_spelling
from digest.ingest.category_names import map_category as map_category
from digest.ingest.images import image_json
from digest.ingest.sanitize import (
    clean_text,
    html_to_text,
    is_web_url,
    one_line,
    reading_minutes,
    safe_url,
    sanitize_html,
    summarize_text,
    summary_chars,
    text_to_html,
)
from digest.ingest.urls import canonical_url, clean_url, unwrap_redirect
from digest.store.database import MAX_ID, from_iso, iso, transaction, utcnow
from digest.when import parse_when as parse_when  # its old home: callers import it from here too

TITLE_MAX = 300
NAME_MAX = 200
URL_MAX = 2000
BODY_TEXT_MAX = 20_000
"""Characters of an article's text kept for summaries (``articles.body_text``)."""
TITLE_WORDS = 12  # an untitled item is named by this many of its first words

UNIX_TIME = re.compile(r"^\s*(\d{9,10}|\d{12,13})(\.\d+)?\s*$")
"""A Unix time as text: 9–10 digits of seconds or 12–13 of milliseconds (11 digits is
neither, and is read as some other date format or not at all). The one definition, also
used by ingest."""


def identity(
    guid: str | None,
    url: str | None,
    title: str,
    published: datetime | None,
    *,
    scope: str = "",
) -> str:
    """The ``guid`` column for an article (see the module docstring for the rules).

    ``published`` is the item's own date (None when estimated: an ingest time must never
    become part of an identity). ``scope`` names the source for guids that are local to it.
    """
    guid = (guid or "").strip()
    if guid:
        if is_web_url(guid):
            return canonical_url(guid)
        if ":" in guid:  # tag:, urn:uuid:, … — globally unique by construction
            return guid
        return f"{scope}#{guid}" if scope else guid
    if url and is_web_url(url):
        return canonical_url(url)
    basis = f"{one_line(title).lower()}\n{iso(published) if published else ''}"
    return "sha256:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def parse_date(value: Any) -> datetime:
    """Parse a date from an article file or option: ISO 8601 (``2026-01-05``,
    ``2026-01-05T07:30:00+01:00``), RFC 2822, or a Unix timestamp. Naive times are UTC.
    Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return _from_timestamp(float(value))
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    text = value.strip()
    m = UNIX_TIME.match(text)
    if m:
        seconds = float(m.group(1) + (m.group(2) or ""))
        if len(m.group(1)) >= 12:  # milliseconds
            seconds /= 1000
        return _from_timestamp(seconds)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            raise ValueError(value) from None
        if dt is None:
            raise ValueError(value) from None
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 and the like
        raise ValueError(value) from None


def _from_timestamp(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(seconds) from None


@dataclass
class ArticleInput:
    """One article as a source gives it, before normalisation. HTML fields are untrusted."""

    title: str
    url: str
    guid: str | None = None
    summary_html: str | None = None  # the source's own summary (HTML or text)
    content_html: str | None = None  # the full text, when the source has it
    category: str | None = None  # already decided (feed category or mapped item category)
    source_category: str | None = None  # the item's own, before the aliases; None: not mapped
    source: str | None = None
    author: str | None = None
    published: datetime | None = None  # the item's own date, aware
    base_url: str | None = None  # for resolving relative links in the HTML
    image: dict[str, Any] | None = None  # lead image {url, width, height} (digest.ingest.images)


def prepare_article(
    config: Config,
    item: ArticleInput,
    *,
    now: datetime,
    scope: str = "",
    feed_id: int | None = None,
) -> dict[str, Any]:
    """Normalise one :class:`ArticleInput` into an ``articles`` row (without ids/timestamps):
    sanitised summary, plain summary, reading time, identity, aware UTC date.

    Every field loses the characters no email may carry (:func:`~digest.ingest.sanitize.clean_text`)
    and every URL is made safe (:func:`~digest.ingest.sanitize.safe_url`): one hostile item can
    never make an issue unrenderable or split a line of the text part."""
    title = one_line(clean_text(item.title))[:TITLE_MAX].strip()
    url = safe_url(clean_url(unwrap_redirect(safe_url(item.url))))[:URL_MAX]
    base_url = safe_url(item.base_url)
    base = base_url if is_web_url(base_url) else url
    words = config.ingest.summary_words
    summary = sanitize_html(clean_text(item.summary_html), base)
    summary_text = html_to_text(summary)
    content_html = clean_text(item.content_html)
    content_text = html_to_text(sanitize_html(content_html, base)) if content_html else ""
    if not title:
        # An item without a title is named by its first words, not "(untitled)".
        lead = one_line(summary_text or content_text)
        title = summarize_text(lead, TITLE_WORDS)[:TITLE_MAX].strip() or "(untitled)"
    full_text = content_text if len(content_text) > len(summary_text) else summary_text
    long_description = len(summary_text.split()) > words or len(summary_text) > summary_chars(words)
    if summary_text and long_description:
        # A feed that puts the whole article (or one endless "word") in its description: keep the lead only.
        summary_text = summarize_text(summary_text, words)
        summary = text_to_html(summary_text)
    elif not summary_text and content_text:
        summary_text = summarize_text(content_text, words)
        summary = text_to_html(summary_text)
    if summary_text == title:  # some feeds repeat the title as the description
        summary, summary_text = "", ""
    published = item.published.astimezone(UTC) if item.published else None
    row: dict[str, Any] = {
        "guid": identity(clean_text(item.guid, multiline=False), url, title, published, scope=scope),
        "url": url,
        "title": title,
        "source": one_line(clean_text(item.source))[:NAME_MAX] or None,
        "author": byline(one_line(clean_text(item.author)))[:NAME_MAX] or None,  # a name, never an address
        "category": clean_category(item.category) or config.ingest.default_category,
        "source_category": None if item.source_category is None else clean_category(item.source_category),
        "published_at": iso(published or now),
        "date_estimated": 0 if published else 1,
        "summary": summary,
        "summary_text": summary_text,
        "reading_minutes": reading_minutes(full_text) if content_text or long_description else 0,
        "feed_id": feed_id,
        "body_text": full_text[:BODY_TEXT_MAX],  # what the lead and llm summaries read
    }
    row["content_hash"] = content_hash(row)
    if item.image:
        row["image"] = image_json(item.image)
    return row


_HASHED = ("url", "title", "source", "author", "category", "summary", "reading_minutes")


def content_hash(row: dict[str, Any]) -> str:
    """What decides "changed": the visible fields, plus the date when the source gave one."""
    data = {k: row.get(k) for k in _HASHED}
    data["published_at"] = None if row.get("date_estimated") else row.get("published_at")
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def upsert_article(db: sqlite_utils.Database, row: dict[str, Any], *, now: datetime | None = None) -> str:
    """Insert or update one prepared row; return ``"new"``, ``"updated"`` or ``"unchanged"``.

    An article first stored from one feed is not rewritten by another feed carrying it,
    and a row with another identity but the same link and title is not stored again
    (both are the same article seen twice). An estimated date never replaces a stored one.
    """
    now_text = iso(now or utcnow())
    existing = db.execute(
        "SELECT id, feed_id, content_hash, published_at, date_estimated FROM articles WHERE guid = ?",
        [row["guid"]],
    ).fetchone()
    if existing is None:
        # Same link and title under another identity (a source-scoped guid in a second
        # feed, say): the same article seen twice, not a new one.
        twin = db.execute(
            "SELECT 1 FROM articles WHERE url = ? AND title = ? LIMIT 1", [row["url"], row["title"]]
        ).fetchone()
        if twin:
            return "unchanged"
        values = {**row, "created_at": now_text, "updated_at": now_text}
        # Plain SQL: sqlite-utils' insert() re-reads the schema on every call, which was most
        # of the time of storing a 100,000-item feed.
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        db.conn.execute(f"INSERT INTO articles ({columns}) VALUES ({marks})", list(values.values()))
        return "new"
    art_id, feed_id, old_hash, old_published, old_estimated = existing
    if feed_id is not None and row.get("feed_id") is not None and feed_id != row["feed_id"]:
        return "unchanged"
    if old_hash == row["content_hash"]:
        return "unchanged"
    changes = {k: v for k, v in row.items() if k != "guid"}
    if row.get("date_estimated"):
        changes["published_at"] = old_published
        changes["date_estimated"] = old_estimated
    if row.get("feed_id") is None:
        changes.pop("feed_id", None)
    changes["updated_at"] = now_text
    db["articles"].update(art_id, changes)
    return "updated"


def get_article(db: sqlite_utils.Database, article_id: int | str) -> dict[str, Any]:
    """One article by id; raises NotFound."""
    try:
        key = int(article_id)
    except (TypeError, ValueError):
        raise NotFound(
            f"article {article_id!r} not found; ids are numbers (see `digest articles list`)"
        ) from None
    if not 0 < key <= MAX_ID:  # SQLite cannot even look up an id past 2**63 - 1
        raise NotFound(f"article {key} not found; see `digest articles list`")
    rows = list(db.query(f"{_SELECT} WHERE a.id = ?", [key]))
    if not rows:
        raise NotFound(f"article {key} not found; see `digest articles list`")
    return _decode(rows[0])


_SELECT = (
    "SELECT a.id, a.guid, a.title, a.url, a.source, a.author, a.category, a.published_at, "
    "a.date_estimated, a.summary, a.summary_text, a.reading_minutes, a.feed_id, "
    "f.url AS feed_url, a.created_at, a.updated_at FROM articles a LEFT JOIN feeds f ON f.id = a.feed_id"
)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["date_estimated"] = bool(row["date_estimated"])
    return row


def list_articles(
    db: sqlite_utils.Database,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Articles newest first; ``since`` inclusive, ``until`` exclusive, ``category`` matched
    without regard to case."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("a.published_at >= ?")
        params.append(iso(since))
    if until is not None:
        where.append("a.published_at < ?")
        params.append(iso(until))
    if category:
        where.append("a.category = ? COLLATE NOCASE")
        params.append(category.strip())
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY a.published_at DESC, a.id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(max(0, int(limit)))
    return [_decode(r) for r in db.query(sql, params)]


@dataclass
class AddResult:
    """What ``add_article`` did: the stored article and ``new``/``updated``/``unchanged``."""

    article: dict[str, Any]
    status: str


def add_article(
    db: sqlite_utils.Database,
    config: Config,
    *,
    title: str,
    url: str,
    category: str | None = None,
    summary: str | None = None,
    source: str | None = None,
    published: str | datetime | None = None,
    now: datetime | None = None,
) -> AddResult:
    """Store one article given by hand (``digest articles add``)."""
    now = now or utcnow()
    if not one_line(clean_text(title)):
        raise DigestError("--title is empty; give the article a title")
    if not is_web_url(url):
        raise DigestError(f"--url {url!r} is not an http(s) URL")
    when = None
    if published is not None and published != "":
        try:
            when = parse_date(published)
        except ValueError:
            raise DigestError(
                f"--published {published!r} is not a date; use ISO 8601 like 2026-01-05T07:30:00Z"
            ) from None
    item = ArticleInput(
        title=title,
        url=url,
        summary_html=summary,
        category=map_category(category, config) if category else None,
        source_category=category or "",
        source=source,
        published=when,
    )
    row = prepare_article(config, item, now=now)
    with transaction(db):
        status = upsert_article(db, row, now=now)
        # "unchanged" can mean stored under another identity with the same URL and title (a
        # feed item whose guid is scoped to its feed): that twin is the article.
        found = (
            db.execute("SELECT id FROM articles WHERE guid = ?", [row["guid"]]).fetchone()
            or db.execute(
                "SELECT id FROM articles WHERE url = ? AND title = ? ORDER BY id LIMIT 1",
                [row["url"], row["title"]],
            ).fetchone()
        )
    return AddResult(article=get_article(db, found[0]), status=status)


def published_local(article: dict[str, Any], zone: str) -> datetime:
    """An article's date in ``zone`` (for display at the edges)."""
    return from_iso(article["published_at"]).astimezone(ZoneInfo(zone))


# ---------------------------------------------------------------- reads other modules ask for

Carried = tuple[str, list[Any]]
"""A subquery of article ids to leave out, and its parameters (from the module that owns them,
e.g. :data:`digest.compose.issues.CARRIED_BY_EDITION_SQL`: what an edition already carried)."""


def article_totals(db: sqlite_utils.Database) -> tuple[int, str | None]:
    """How many articles are stored, and the newest one's ``published_at``."""
    total, newest = db.execute("SELECT COUNT(*), MAX(published_at) FROM articles").fetchone()
    return total, newest


def count_published_between(db: sqlite_utils.Database, start: datetime, end: datetime) -> int:
    """How many articles were published in ``[start, end)``."""
    return db.execute(
        "SELECT COUNT(*) FROM articles WHERE published_at >= ? AND published_at < ?", [iso(start), iso(end)]
    ).fetchone()[0]


def uncarried_published_at(
    db: sqlite_utils.Database,
    carried: Carried,
    *,
    before: datetime | None = None,
    since: datetime | None = None,
) -> str | None:
    """``published_at`` of the newest article before ``before`` (or the oldest at or after
    ``since``) that is not among ``carried``; None when there is none."""
    agg, op, when = ("MAX", "<", before) if before is not None else ("MIN", ">=", since)
    sql, params = carried
    return db.execute(
        f"SELECT {agg}(published_at) FROM articles WHERE published_at {op} ? AND id NOT IN ({sql})",
        [iso(when), *params],
    ).fetchone()[0]


def candidate_articles(
    db: sqlite_utils.Database, start: datetime, end: datetime, carried: Carried
) -> list[dict[str, Any]]:
    """Full rows of the articles published in ``[start, end)``, not among ``carried`` and not
    hidden by an editor, newest first."""
    sql, params = carried
    return list(
        db.query(
            "SELECT * FROM articles WHERE published_at >= ? AND published_at < ? AND hidden_at IS NULL"
            f" AND id NOT IN ({sql}) ORDER BY published_at DESC, id DESC",
            [iso(start), iso(end), *params],
        )
    )


def article_ids_published_since(db: sqlite_utils.Database, since: datetime) -> list[int]:
    """Ids of the articles published at or after ``since``, newest first."""
    rows = db.execute(
        "SELECT id FROM articles WHERE published_at >= ? ORDER BY published_at DESC, id DESC", [iso(since)]
    ).fetchall()
    return [r[0] for r in rows]


def articles_by_ids(db: sqlite_utils.Database, ids: Iterable[int]) -> list[dict[str, Any]]:
    """Full rows of these articles (each once, in the order of ``ids``; unknown ids left out)."""
    wanted = list(dict.fromkeys(ids))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows += db.query(f"SELECT * FROM articles WHERE id IN ({marks})", chunk)
    order = {article_id: n for n, article_id in enumerate(wanted)}
    return sorted(rows, key=lambda r: order[r["id"]])


def article_categories(db: sqlite_utils.Database) -> list[str]:
    """Every category an article has (each once)."""
    return [r[0] for r in db.execute("SELECT DISTINCT category FROM articles")]


def recategorize_articles(db: sqlite_utils.Database, config: Config, *, now: datetime | None = None) -> int:
    """Map every stored article's source category through today's ``[ingest.category_aliases]``
    again, in one transaction; return how many articles changed category.

    Only articles whose category came through the aliases are touched (``source_category``
    set): a feed's own ``--category`` stays."""
    now_text = iso(now or utcnow())
    names = (*_HASHED, "published_at", "date_estimated")
    columns = ", ".join(names)
    changed = 0
    with transaction(db):
        rows = db.execute(
            f"SELECT id, source_category, {columns} FROM articles WHERE source_category IS NOT NULL"
        ).fetchall()
        for art_id, source_category, *hashed in rows:
            row = dict(zip(names, hashed, strict=True))
            category = map_category(source_category, config)
            if category == row["category"]:
                continue
            row["category"] = category
            db.execute(
                "UPDATE articles SET category = ?, content_hash = ?, updated_at = ? WHERE id = ?",
                [category, content_hash(row), now_text, art_id],
            )
            changed += 1
    return changed
