"""Compose issues: pick an edition's articles for a period and freeze them as a numbered issue.

The issue row carries a JSON snapshot of everything the templates show (titles, links,
summaries, categories in order), so rendering never depends on later article edits.
Composing is idempotent per (edition, period): the check and the insert happen inside one
``BEGIN IMMEDIATE`` transaction, and the ``UNIQUE (edition, period_start)`` constraint backs
it up, so two processes building the same issue at once still make one.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlite_utils

from digest.config import Config, Edition
from digest.errors import ConfigError, DigestError, NotFound
from digest.localtime import latest_fire_time
from digest.store import MAX_ID, from_iso, iso, transaction, utcnow

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PREHEADER_HEADLINES = 3
PREHEADER_MAX_CHARS = 150
SNAPSHOT_VERSION = 1


@dataclass
class ComposeResult:
    """What :func:`compose_issue` did: the issue (None for an empty period), whether it is new."""

    issue: dict[str, Any] | None
    created: bool
    message: str


def format_date(dt: datetime) -> str:
    """``23 Jan 2026`` — locale-independent, for subjects and headers."""
    return f"{dt.day} {MONTHS[dt.month - 1]} {dt.year}"


def format_datetime(dt: datetime) -> str:
    """``23 Jan 2026, 07:30`` — locale-independent."""
    return f"{format_date(dt)}, {dt:%H:%M}"


def scheduled_time(edition: Edition, on: date) -> datetime:
    """The edition's fire time for the local date ``on``: the latest scheduled time at or
    before the end of that day in the edition's zone, as an aware UTC datetime."""
    try:
        return _scheduled_time(edition, on)
    except OverflowError:
        # date arithmetic past year 1 or 9999 (cron fire times exist from 1970 on)
        raise DigestError(
            f"date {on.isoformat()} is out of range for edition {edition.key!r}'s schedule; "
            "pick a date from 1970-01-01 to 9999-12-30"
        ) from None


def _scheduled_time(edition: Edition, on: date) -> datetime:
    # The scheduler's own fire-time iteration (localtime), so these are its period ends,
    # including on a fall-back night, where it skips the repeat of a wall time.
    zone = edition.zone
    day_end = datetime.combine(on + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    for lookback in (1, 8, 32, 367, 366 * 8):
        start = datetime.combine(on - timedelta(days=lookback - 1), time(0), tzinfo=zone).astimezone(UTC)
        last = latest_fire_time(edition, start, day_end - timedelta(microseconds=1))
        if last is not None:
            return last
    raise ConfigError(
        f"editions.{edition.key}.schedule: {edition.schedule!r} never fires on or before {on.isoformat()}"
    )


def period_start_for(edition: Edition, period_end: datetime) -> datetime:
    """The start of the period ending at ``period_end`` (aware UTC).

    Whole-day windows are counted in the edition's wall clock, so across a DST change a
    daily period is 23 or 25 hours long and lines up with the previous scheduled time:
    no hour of articles falls between two issues.
    """
    window = edition.window_delta
    if window % timedelta(days=1):
        return period_end - window
    local_end = period_end.astimezone(edition.zone)
    return (local_end - window).astimezone(UTC)


def compose_issue(
    db: sqlite_utils.Database, config: Config, edition_key: str, *, period_end: datetime
) -> ComposeResult:
    """Build (or find) the issue of ``edition_key`` for the period ending at ``period_end``.

    The period is ``[period_end - window, period_end)``. Its articles that no earlier issue
    of the edition carried are grouped by category (the edition's order first, then
    alphabetical), newest first, capped at ``max_articles`` (the newest are kept).
    """
    edition = config.edition(edition_key)
    if period_end.tzinfo is None:
        raise DigestError("period_end must be an aware datetime")
    period_end = period_end.astimezone(UTC).replace(microsecond=0)
    zone = edition.zone
    period_start = period_start_for(edition, period_end)
    where = (
        f"{edition.key}, {format_datetime(period_start.astimezone(zone))} – "
        f"{format_datetime(period_end.astimezone(zone))} ({edition.timezone})"
    )
    try:
        with transaction(db):
            existing = _issue_for_period(db, edition.key, period_start)
            if existing is not None:
                return ComposeResult(existing, False, f"Issue #{existing['number']} already exists ({where})")
            articles = _candidate_articles(db, edition.key, period_start, period_end)
            if not articles:
                return ComposeResult(None, False, f"No new articles for {where}; no issue built")
            issue = _insert_issue(db, config, edition, period_start, period_end, articles)
            return ComposeResult(issue, True, f"Built issue #{issue['number']} with {len(articles)} articles")
    except sqlite3.IntegrityError:
        # Another process won a race that BEGIN IMMEDIATE should already prevent; theirs stands.
        existing = _issue_for_period(db, edition.key, period_start)
        if existing is None:
            raise
        return ComposeResult(existing, False, f"Issue #{existing['number']} already exists ({where})")


def latest_scheduled_time(edition: Edition, now: datetime) -> datetime:
    """The edition's most recent scheduled time at or before ``now`` (aware UTC)."""
    local_today = now.astimezone(edition.zone).date()
    for back in range(0, 400):
        fire = scheduled_time(edition, local_today - timedelta(days=back))
        if fire <= now:
            return fire
    raise ConfigError(f"editions.{edition.key}.schedule: {edition.schedule!r} has not fired in the last year")


def _issue_for_period(db: sqlite_utils.Database, edition: str, period_start: datetime) -> dict | None:
    rows = list(
        db.query("SELECT * FROM issues WHERE edition = ? AND period_start = ?", [edition, iso(period_start)])
    )
    return rows[0] if rows else None


def _candidate_articles(
    db: sqlite_utils.Database, edition: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    return list(
        db.query(
            """
            SELECT * FROM articles
            WHERE published_at >= ? AND published_at < ?
              AND id NOT IN (
                SELECT ia.article_id FROM issue_articles ia JOIN issues i ON i.id = ia.issue_id
                WHERE i.edition = ?)
            ORDER BY published_at DESC, id DESC
            """,
            [iso(start), iso(end), edition],
        )
    )


def order_categories(names: list[str], configured: list[str]) -> list[str]:
    """The edition's configured categories first (in its order), then the rest alphabetically."""
    rank = {c.casefold(): i for i, c in enumerate(configured)}
    present = list(dict.fromkeys(names))
    return sorted(present, key=lambda c: (rank.get(c.casefold(), len(rank)), c.casefold(), c))


def _insert_issue(
    db: sqlite_utils.Database,
    config: Config,
    edition: Edition,
    period_start: datetime,
    period_end: datetime,
    articles: list[dict[str, Any]],
) -> dict[str, Any]:
    articles = articles[: edition.max_articles]  # already newest first
    by_category: dict[str, list[dict[str, Any]]] = {}
    for article in articles:
        by_category.setdefault(article["category"], []).append(article)
    categories = order_categories(list(by_category), edition.categories)
    row = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM issues WHERE edition = ?", [edition.key])
    number = row.fetchone()[0]
    local_end = period_end.astimezone(edition.zone)
    ordered = [a for c in categories for a in by_category[c]]
    subject = make_subject(config, edition, number, local_end)
    preheader = make_preheader([a["title"] for a in ordered])
    snapshot = {
        "version": SNAPSHOT_VERSION,
        "edition": edition.key,
        "edition_title": edition.title,
        "number": number,
        "date": format_date(local_end),
        "timezone": edition.timezone,
        "period_start": iso(period_start),
        "period_end": iso(period_end),
        "categories": [
            {"name": c, "articles": [_snapshot_article(a, edition) for a in by_category[c]]}
            for c in categories
        ],
    }
    now = iso(utcnow())
    cursor = db.execute(
        "INSERT INTO issues (edition, number, period_start, period_end, subject, preheader, status, snapshot,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?)",
        [
            edition.key,
            number,
            iso(period_start),
            iso(period_end),
            subject,
            preheader,
            json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")),
            now,
        ],
    )
    issue_id = cursor.lastrowid
    db.conn.executemany(
        "INSERT INTO issue_articles (issue_id, article_id, category, position) VALUES (?, ?, ?, ?)",
        [(issue_id, a["id"], a["category"], pos) for pos, a in enumerate(ordered, 1)],
    )
    return dict(db["issues"].get(issue_id))


def _snapshot_article(article: dict[str, Any], edition: Edition) -> dict[str, Any]:
    published = from_iso(article["published_at"])
    return {
        "id": article["id"],
        "title": article["title"],
        "url": article["url"],
        "source": article["source"] or "",
        "author": article["author"] or "",
        "category": article["category"],
        "published_at": article["published_at"],
        "published_local": format_datetime(published.astimezone(edition.zone)),
        # The source gave no date (published_at is the fetch time): templates say "undated".
        "undated": bool(article["date_estimated"]),
        "summary": article["summary_text"] or "",
        "reading_minutes": max(1, int(article["reading_minutes"] or 1)),
    }


def make_subject(config: Config, edition: Edition, number: int, local_date: datetime) -> str:
    """The subject from the edition's pattern (else ``render.subject``).

    Fields: ``{title}`` (edition title), ``{number}``, ``{date}`` (``23 Jan 2026``),
    ``{publication}``, ``{edition}`` (its key).
    """
    pattern = edition.subject or config.render.subject
    values = {
        "title": edition.title,
        "number": number,
        "date": format_date(local_date),
        "publication": config.publication.name,
        "edition": edition.key,
    }
    try:
        subject = pattern.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{config.source}: subject pattern {pattern!r} is invalid ({exc!r}); "
            "use the fields {title}, {number}, {date}, {publication}, {edition}"
        ) from None
    # Never let a header line break through.
    return " ".join(subject.split())


def make_preheader(titles: list[str]) -> str:
    """The inbox preview line: the top headlines joined with `` · ``, cut near 150 characters."""
    text = " · ".join(" ".join(t.split()) for t in titles[:PREHEADER_HEADLINES])
    if len(text) > PREHEADER_MAX_CHARS:
        text = text[: PREHEADER_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(" ·") + "…"
    return text


def get_issue(db: sqlite_utils.Database, ref: str | int, edition: str | None = None) -> dict[str, Any]:
    """The issue row for ``ref``: an id, or ``latest`` (of ``edition`` when given)."""
    text = str(ref).strip()
    if text.lower() == "latest":
        sql, params = "SELECT * FROM issues", []
        if edition:
            sql, params = sql + " WHERE edition = ?", [edition]
        rows = list(db.query(sql + " ORDER BY period_end DESC, id DESC LIMIT 1", params))
        if not rows:
            scope = f" for edition {edition!r}" if edition else ""
            raise NotFound(f"no issues yet{scope}; build one with `digest issues build`")
        return rows[0]
    if not text.isdigit():
        raise NotFound(f"issue {text!r}: give an issue id (see `digest issues list`) or 'latest'")
    if int(text) > MAX_ID:  # past any SQLite row id
        raise NotFound(f"issue {text} not found; see `digest issues list`")
    rows = list(db.query("SELECT * FROM issues WHERE id = ?", [int(text)]))
    if not rows or (edition and rows[0]["edition"] != edition):
        raise NotFound(f"issue {text} not found; see `digest issues list`")
    return rows[0]


def issue_snapshot(issue: dict[str, Any]) -> dict[str, Any]:
    """The frozen JSON snapshot of an issue row, decoded."""
    try:
        return json.loads(issue["snapshot"])
    except (TypeError, ValueError):
        raise DigestError(f"issue {issue.get('id')}: has no readable snapshot; rebuild it") from None


def issue_categories(db: sqlite_utils.Database, issue_id: int) -> list[str]:
    """The categories present in the issue, in the issue's order."""
    rows = db.execute(
        "SELECT category FROM issue_articles WHERE issue_id = ? GROUP BY category ORDER BY MIN(position)",
        [issue_id],
    ).fetchall()
    return [r[0] for r in rows]


def list_issues(db: sqlite_utils.Database, edition: str | None = None) -> list[dict[str, Any]]:
    """Issues, newest first, with their article counts (no snapshot)."""
    sql = (
        "SELECT i.id, i.edition, i.number, i.period_start, i.period_end, i.subject, i.preheader, i.status,"
        " i.created_at, i.sent_at,"
        " (SELECT COUNT(*) FROM issue_articles ia WHERE ia.issue_id = i.id) AS articles"
        " FROM issues i"
    )
    params: list[Any] = []
    if edition:
        sql += " WHERE i.edition = ?"
        params.append(edition)
    return list(db.query(sql + " ORDER BY i.period_end DESC, i.id DESC", params))
