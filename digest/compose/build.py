"""Compose issues: pick an edition's articles for a period and freeze them as a numbered issue.

:func:`compose_issue` is the entry point. The issue row carries a JSON snapshot of everything
the templates show (titles, links, summaries, categories in order), so rendering never
depends on later article edits.
Composing is idempotent per (edition, period): the check and the insert happen inside one
``BEGIN IMMEDIATE`` transaction, and the ``UNIQUE (edition, period_start)`` constraint backs
it up, so two processes building the same issue at once still make one.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from digest.compose.issues import issue_name
from digest.compose.periods import format_date, format_datetime, period_start_for
from digest.compose.stories import Story, group_stories
from digest.compose.subject import make_preheader, make_subject, preheader_titles
from digest.config import Config, Edition
from digest.errors import ConfigError, DigestError
from digest.ingest.images import load_image
from digest.localtime import next_fire_time
from digest.store.database import from_iso, iso, transaction, utcnow
from digest.summary import ArticleSummary, article_summaries, make_summaries
from digest.summary.make import Progress

SNAPSHOT_VERSION = 1


@dataclass
class ComposeResult:
    """What :func:`compose_issue` did: the issue (None for an empty period), whether it is new,
    and ``warnings`` (one per article whose generated summary could not be made)."""

    issue: dict[str, Any] | None
    created: bool
    message: str
    warnings: list[str] = field(default_factory=list)
    summary_error: str | None = None  # the model could not be used at all (summaries_required=False)


def compose_issue(
    db: sqlite_utils.Database,
    config: Config,
    edition_key: str,
    *,
    period_end: datetime,
    progress: Progress | None = None,
    summaries_required: bool = True,
) -> ComposeResult:
    """Build (or find) the issue of ``edition_key`` for the period ending at ``period_end``.

    The period is ``[period_end - window, period_end)``. Its articles that no earlier issue
    of the edition carried are grouped by category (the edition's order first, then
    alphabetical), newest first, capped at ``max_articles`` (the newest are kept). Articles
    that report one story share a card (``[compose] merge_stories``). With
    ``[summary] engine = "llm"`` the chosen articles' summaries are made first, before the
    write lock is taken; ``progress`` hears how far that is. A model that cannot be used at
    all (``llm`` missing, an unknown model, no key) raises ConfigError, unless
    ``summaries_required`` is false (a scheduled run): then every article keeps its feed
    summary, the issue is built, and ``summary_error`` says why.
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
    summary_error = None
    try:
        warnings = _make_summaries(db, config, edition, period_start, period_end, progress)
    except ConfigError as exc:
        if summaries_required:
            raise
        warnings, summary_error = [], f"{exc}; every article keeps its feed summary"
    try:
        with transaction(db):
            existing = _issue_for_period(db, edition.key, period_start)
            if existing is not None:
                return ComposeResult(
                    existing, False, f"Issue {issue_name(existing)} already exists ({where})"
                )
            articles = _candidate_articles(db, edition.key, period_start, period_end)
            if not articles:
                why = explain_empty_period(db, edition, period_start, period_end)
                return ComposeResult(
                    None, False, f"No new articles for {where}; no issue built. {why}", warnings
                )
            stories = choose_stories(config, edition, articles)
            issue = _insert_issue(db, config, edition, period_start, period_end, stories)
            message = f"Built issue {issue_name(issue)} with {plural(len(stories), 'article')}"
            merged = sum(len(s.others) for s in stories)
            if merged:
                message += f" ({merged} more merged into the same stories' cards)"
            return ComposeResult(issue, True, message, warnings, summary_error)
    except sqlite3.IntegrityError:
        # Another process won a race that BEGIN IMMEDIATE should already prevent; theirs stands.
        existing = _issue_for_period(db, edition.key, period_start)
        if existing is None:
            raise
        return ComposeResult(existing, False, f"Issue {issue_name(existing)} already exists ({where})")


def plural(count: int, noun: str) -> str:
    """``1 article``, ``2 articles``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def explain_empty_period(
    db: sqlite_utils.Database, edition: Edition, period_start: datetime, period_end: datetime
) -> str:
    """Why the period ``[period_start, period_end)`` has nothing new, and what to try.

    Names how many articles are stored and the newest one's time, how many in the window
    an earlier issue of the edition already carried, and then the ``--date`` whose issue
    would carry the latest article before the window that no issue has yet (the usual
    case after ingesting an archive), or when the next issue with newer articles is due.
    """
    total, newest = db.execute("SELECT COUNT(*), MAX(published_at) FROM articles").fetchone()
    if not total:
        return "There are no articles yet: run `digest ingest` (or `digest articles add`) first."
    zone = edition.zone

    def shown(at: datetime) -> str:
        return f"{format_datetime(at.astimezone(zone))} ({edition.timezone})"

    said = f"{plural(total, 'article')} stored, the newest published {shown(from_iso(newest))}."
    in_window = db.execute(
        "SELECT COUNT(*) FROM articles WHERE published_at >= ? AND published_at < ?",
        [iso(period_start), iso(period_end)],
    ).fetchone()[0]
    if in_window:
        said += f" The {plural(in_window, 'article')} in the window went out in earlier {edition.key} issues."
    uncarried = """
        SELECT {agg}(published_at) FROM articles
        WHERE published_at {op} ?
          AND id NOT IN (SELECT ia.article_id FROM issue_articles ia JOIN issues i ON i.id = ia.issue_id
                         WHERE i.edition = ?)
    """
    before = db.execute(uncarried.format(agg="MAX", op="<"), [iso(period_start), edition.key]).fetchone()[0]
    after = db.execute(uncarried.format(agg="MIN", op=">="), [iso(period_end), edition.key]).fetchone()[0]
    try:
        fire_before = next_fire_time(edition, from_iso(before)) if before is not None else None
        # Only a date whose window really holds that article (a 1900 date never does: the
        # schedule starts in 1970) is worth suggesting.
        if fire_before is not None and period_start_for(edition, fire_before) <= from_iso(before):
            day = fire_before.astimezone(zone).date().isoformat()
            return (
                f"{said} The latest article before the window that no {edition.key} issue carried yet is "
                f"from {shown(from_iso(before))}: try `digest issues build {edition.key} --date {day}`."
            )
        if after is not None:
            fire = next_fire_time(edition, from_iso(after))
            if fire <= utcnow():
                day = fire.astimezone(zone).date().isoformat()
                hint = f"try `digest issues build {edition.key} --date {day}`"
                return f"{said} Newer articles are waiting: {hint}."
            return f"{said} Newer articles go into the issue scheduled for {shown(fire)}: wait for it."
    except DigestError:  # a schedule that never fires again
        return said
    return f"{said} Ingest newer articles, or wait for the next scheduled time."


def choose_stories(config: Config, edition: Edition, articles: list[dict[str, Any]]) -> list[Story]:
    """The cards of an issue from its candidate articles (newest first): one per story when
    ``[compose] merge_stories`` is on, at most ``max_articles`` of them."""
    if not config.compose.merge_stories:
        return [Story(a) for a in articles[: edition.max_articles]]
    return group_stories(
        articles,
        threshold=config.compose.merge_threshold,
        preferred_sources=config.compose.preferred_sources,
        max_stories=edition.max_articles,
    )


def _make_summaries(
    db: sqlite_utils.Database,
    config: Config,
    edition: Edition,
    period_start: datetime,
    period_end: datetime,
    progress: Progress | None,
) -> list[str]:
    # Model calls take seconds each: they run before the write lock, for the articles that
    # would get a card, and are stored; the snapshot then reads what is stored.
    if config.summary.engine != "llm" or _issue_for_period(db, edition.key, period_start) is not None:
        return []
    articles = _candidate_articles(db, edition.key, period_start, period_end)
    leads = [story.lead["id"] for story in choose_stories(config, edition, articles)]
    return make_summaries(db, config, leads, progress=progress).warnings


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
    stories: list[Story],
) -> dict[str, Any]:
    summaries = article_summaries(db, config, [s.lead for s in stories])
    by_category: dict[str, list[dict[str, Any]]] = {}
    cards: dict[str, list[dict[str, Any]]] = {}
    for story in stories:  # already newest first
        article = story.lead
        by_category.setdefault(article["category"], []).append(article)
        card = _snapshot_article(article, edition, summaries[article["id"]], story.others)
        cards.setdefault(article["category"], []).append(card)
    categories = order_categories(list(by_category), edition.categories)
    row = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM issues WHERE edition = ?", [edition.key])
    number = row.fetchone()[0]
    local_end = period_end.astimezone(edition.zone)
    ordered = [a for c in categories for a in by_category[c]]
    titles = [a["title"] for a in ordered]
    subject = make_subject(config, edition, number, local_end, headline=titles[0])
    preheader = make_preheader(preheader_titles(config, edition, titles))
    snapshot = {
        "version": SNAPSHOT_VERSION,
        "edition": edition.key,
        "edition_title": edition.title,
        "number": number,
        "date": format_date(local_end),
        "timezone": edition.timezone,
        "period_start": iso(period_start),
        "period_end": iso(period_end),
        "categories": [{"name": c, "articles": cards[c]} for c in categories],
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
    # Articles merged into another's card are carried too (after the cards, under the
    # card's category), so no later issue of the edition shows them again.
    lead_category = {s.lead["id"]: s.lead["category"] for s in stories}
    merged = [(o, lead_category[s.lead["id"]]) for s in stories for o in s.others]
    rows = [(issue_id, a["id"], a["category"], pos) for pos, a in enumerate(ordered, 1)]
    rows += [(issue_id, o["id"], cat, pos) for pos, (o, cat) in enumerate(merged, len(ordered) + 1)]
    db.conn.executemany(
        "INSERT INTO issue_articles (issue_id, article_id, category, position) VALUES (?, ?, ?, ?)", rows
    )
    return dict(db["issues"].get(issue_id))


def _snapshot_article(
    article: dict[str, Any],
    edition: Edition,
    summary: ArticleSummary,
    others: list[dict[str, Any]],
) -> dict[str, Any]:
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
        "summary": summary.text,
        "summary_label": summary.label if summary.text else "",
        # Checked against its source: the web version links the label to the article.
        "summary_checked": summary.checked and bool(summary.text),
        "reading_minutes": max(1, int(summary.reading_minutes or article["reading_minutes"] or 1)),
        "also_covered": [{"source": _source_name(o), "url": o["url"]} for o in others],
        **({"image": image} if (image := load_image(article.get("image"))) else {}),
    }


def _source_name(article: dict[str, Any]) -> str:
    """What "Also covered by" calls an article's outlet: its source, else its site's host."""
    if article.get("source"):
        return article["source"]
    host = urlsplit(article.get("url") or "").hostname or ""
    return host.removeprefix("www.") or article.get("url") or ""
