"""Feeds: the stored sources that ``digest ingest`` reads when given no argument."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlite_utils

from digest.errors import DigestError, NotFound
from digest.ingest.fetch import is_http, local_path
from digest.ingest.sanitize import is_web_url, safe_url
from digest.store.database import MAX_ID, iso, transaction, utcnow

FEED_COLUMNS = "id, url, name, category, etag, modified, last_fetched_at, last_status, last_error, created_at"


def normalize_source(url_or_path: str) -> str:
    """The stored form of a source: an http(s) URL trimmed, with its scheme and host in lower
    case (they are case-insensitive; the path is not), or an absolute path."""
    text = url_or_path.strip()
    if not text:
        raise DigestError("empty feed URL or path")
    if is_http(text):
        text = _lower_scheme_and_host(safe_url(text))  # safe_url: a CR/LF must not split a line
        if not is_web_url(text):
            raise DigestError(f"{text}: not a valid URL (no host)")
        return text
    return str(local_path(text).resolve())


def _lower_scheme_and_host(url: str) -> str:
    """``url`` with the scheme and host (and port) in lower case; user info, path and query kept."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=f"{userinfo}{at}{hostport.lower()}"))


def _same_source(db: sqlite_utils.Database, url: str) -> list[int]:
    """Ids of stored http(s) feeds whose normalised URL is ``url`` (rows stored before URLs
    were normalised may differ from it in case only)."""
    ids = []
    for feed_id, stored in db.execute("SELECT id, url FROM feeds ORDER BY id").fetchall():
        if stored == url or (is_http(stored) and _lower_scheme_and_host(stored) == url):
            ids.append(feed_id)
    return ids


def add_feed(
    db: sqlite_utils.Database,
    url_or_path: str,
    *,
    category: str | None = None,
    name: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Store a feed (http(s) URL or local file). A path must exist; a URL is not fetched."""
    url = normalize_source(url_or_path)
    if not is_http(url):
        path = Path(url)
        if not path.is_file():
            raise DigestError(f"{url_or_path}: no such file; give an http(s) URL or an existing path")
    with transaction(db):
        existing = _same_source(db, url)
        if existing:
            raise DigestError(f"{url}: already added as feed {existing[0]}")
        row = {
            "url": url,
            "name": (name or "").strip() or None,
            "category": (category or "").strip() or None,
            "created_at": iso(now or utcnow()),
        }
        feed_id = db["feeds"].insert(row).last_pk
    return get_feed(db, feed_id)


def list_feeds(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every stored feed, oldest first, with its article count."""
    return list(
        db.query(
            f"SELECT {FEED_COLUMNS}, "
            "(SELECT COUNT(*) FROM articles a WHERE a.feed_id = feeds.id) AS articles "
            "FROM feeds ORDER BY id"
        )
    )


def find_feed(db: sqlite_utils.Database, id_or_url: str | int) -> dict[str, Any] | None:
    """The feed with this id, URL or path, or None."""
    text = str(id_or_url).strip()
    rows: list[dict[str, Any]] = []
    if text.isdigit() and int(text) <= MAX_ID:
        rows = list(db.query(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?", [int(text)]))
    if not rows and text:
        candidates = {text}
        with contextlib.suppress(DigestError):
            candidates.add(normalize_source(text))
        marks = ", ".join("?" for _ in candidates)
        rows = list(db.query(f"SELECT {FEED_COLUMNS} FROM feeds WHERE url IN ({marks})", sorted(candidates)))
        if not rows and is_http(text):
            with contextlib.suppress(DigestError):
                for feed_id in _same_source(db, normalize_source(text))[:1]:
                    rows = list(db.query(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?", [feed_id]))
    return rows[0] if rows else None


def get_feed(db: sqlite_utils.Database, id_or_url: str | int) -> dict[str, Any]:
    """The feed with this id, URL or path; raises NotFound."""
    feed = find_feed(db, id_or_url)
    if feed is None:
        raise NotFound(f"feed {id_or_url!r} not found; see `digest feeds list`")
    return feed


def remove_feed(db: sqlite_utils.Database, id_or_url: str | int) -> dict[str, Any]:
    """Delete a feed. Its articles stay (they may already be in issues); they lose the link."""
    with transaction(db):
        feed = get_feed(db, id_or_url)
        db.execute("DELETE FROM feeds WHERE id = ?", [feed["id"]])
    return feed


def record_fetch(
    db: sqlite_utils.Database,
    feed_id: int,
    *,
    status: str,
    error: str | None = None,
    etag: str | None = None,
    modified: str | None = None,
    name: str | None = None,
    now: datetime | None = None,
) -> None:
    """Remember the outcome of one fetch. ETag/Last-Modified are only replaced on success,
    so a failed fetch never makes the next one unconditional or skips stored content."""
    changes: dict[str, Any] = {
        "last_fetched_at": iso(now or utcnow()),
        "last_status": status,
        "last_error": error,
    }
    if error is None:
        changes["etag"] = etag
        changes["modified"] = modified
    with transaction(db):
        db["feeds"].update(feed_id, changes)
        if name:
            db.execute("UPDATE feeds SET name = ? WHERE id = ? AND name IS NULL", [name[:200], feed_id])


def feed_categories(db: sqlite_utils.Database) -> list[str]:
    """Every default category a stored feed has (each once)."""
    return [r[0] for r in db.execute("SELECT DISTINCT category FROM feeds WHERE category IS NOT NULL")]
