"""Compose issues: pick an edition's articles for a period and freeze them as a numbered issue.

:func:`compose_issue` is the entry point. The issue row carries a JSON snapshot of everything
the templates show (titles, links, summaries, categories in order), so rendering never
depends on later article edits.
Composing is idempotent per (edition, period): the check and the insert happen inside one
``BEGIN IMMEDIATE`` transaction, and the ``UNIQUE (edition, period_start)`` constraint backs
it up, so two processes building the same issue at once still make one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from digest.compose.issues import (
    CARRIED_BY_EDITION_SQL,
    insert_issue,
    insert_issue_rows,
    issue_for_period,
    issue_name,
)
from digest.compose.memory import Repeat, recall, sent_stories
from digest.compose.periods import format_datetime, period_start_for
from digest.compose.snapshot import refresh_issue
from digest.compose.stories import Story, group_stories
from digest.config import Config, Edition
from digest.errors import ConfigError, DigestError
from digest.ingest.article_edits import with_editor_values
from digest.ingest.articles import (
    article_totals,
    count_published_between,
    uncarried_published_at,
)
from digest.ingest.articles import (
    candidate_articles as candidate_articles_stored,
)
from digest.localtime import next_fire_time
from digest.store.database import from_iso, iso, transaction, utcnow
from digest.summary import make_summaries
from digest.summary.make import Progress


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
    period_start = period_start_for(edition, period_end)
    where = _period_name(edition, period_start, period_end)
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
            articles = candidate_articles(db, edition.key, period_start, period_end)
            if not articles:
                why = explain_empty_period(db, edition, period_start, period_end)
                return ComposeResult(
                    None, False, f"No new articles for {where}; no issue built. {why}", warnings
                )
            picked = pick_stories(db, config, edition, articles, period_start, period_end)
            if not picked.shown:
                held = plural(len(picked.held), "story")
                message = f"No new stories for {where}; no issue built: {held} held back as already sent"
                return ComposeResult(None, False, f"{message} ([compose] repeat_stories).", warnings)
            issue = _insert_issue(db, config, edition, period_start, period_end, picked)
            return ComposeResult(issue, True, _built(issue, picked), warnings, summary_error)
    except sqlite3.IntegrityError:
        # Another process won a race that BEGIN IMMEDIATE should already prevent; theirs stands.
        existing = _issue_for_period(db, edition.key, period_start)
        if existing is None:
            raise
        return ComposeResult(existing, False, f"Issue {issue_name(existing)} already exists ({where})")


def _built(issue: dict[str, Any], picked: Picked) -> str:
    """``Built issue daily/3 with 5 articles (2 more merged …); 1 story held back …``."""
    message = f"Built issue {issue_name(issue)} with {plural(len(picked.shown), 'article')}"
    merged = sum(len(s.others) for s in picked.shown)
    if merged:
        message += f" ({merged} more merged into the same stories' cards)"
    if picked.held:
        message += f"; {plural(len(picked.held), 'story')} held back as already sent"
    return message


def _period_name(edition: Edition, period_start: datetime, period_end: datetime) -> str:
    """``daily, <start> – <end> (Europe/Berlin)``, in the edition's zone, for messages."""
    zone = edition.zone
    return (
        f"{edition.key}, {format_datetime(period_start.astimezone(zone))} – "
        f"{format_datetime(period_end.astimezone(zone))} ({edition.timezone})"
    )


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
    total, newest = article_totals(db)
    if not total:
        return "There are no articles yet: run `digest ingest` (or `digest articles add`) first."
    zone = edition.zone

    def shown(at: datetime) -> str:
        return f"{format_datetime(at.astimezone(zone))} ({edition.timezone})"

    said = f"{plural(total, 'article')} stored, the newest published {shown(from_iso(newest))}."
    in_window = count_published_between(db, period_start, period_end)
    if in_window:
        said += f" The {plural(in_window, 'article')} in the window went out in earlier {edition.key} issues."
    carried = (CARRIED_BY_EDITION_SQL, [edition.key])
    before = uncarried_published_at(db, carried, before=period_start)
    after = uncarried_published_at(db, carried, since=period_end)
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


def choose_stories(
    config: Config, edition: Edition, articles: list[dict[str, Any]], *, capped: bool = True
) -> list[Story]:
    """The cards of an issue from its candidate articles (newest first): one per story when
    ``[compose] merge_stories`` is on, at most ``max_articles`` of them (all when not
    ``capped``)."""
    cap = edition.max_articles if capped else None
    if not config.compose.merge_stories:
        return [Story(a) for a in articles[:cap]]
    return group_stories(
        articles,
        threshold=config.compose.merge_threshold,
        preferred_sources=config.compose.preferred_sources,
        max_stories=cap,
    )


@dataclass
class Picked:
    """An issue's stories: the cards ``shown`` (at most ``max_articles``), the stories
    ``held`` back as already sent, and each repeat's :class:`Repeat` by its lead's id."""

    shown: list[Story]
    held: list[Story]
    repeats: dict[int, Repeat]


def pick_stories(
    db: sqlite_utils.Database,
    config: Config,
    edition: Edition,
    articles: list[dict[str, Any]],
    period_start: datetime,
    period_end: datetime,
) -> Picked:
    """The stories of an issue from its candidate articles: :func:`choose_stories`, then
    ``[compose] repeat_stories`` applied against what the edition's issues already sent
    (:mod:`digest.compose.memory`). A held-back story takes no card's place."""
    mode = config.compose.repeat_stories
    if mode == "allow":
        return Picked(choose_stories(config, edition, articles), [], {})
    stories = choose_stories(config, edition, articles, capped=False)
    sent = sent_stories(db, edition.key, period_start, period_end)
    repeats = recall(stories, sent, threshold=config.compose.merge_threshold, mode=mode)
    shown: list[Story] = []
    held: list[Story] = []
    for story in stories:
        if len(shown) >= edition.max_articles:
            break
        repeat = repeats.get(story.lead["id"])
        (held if repeat is not None and repeat.held else shown).append(story)
    return Picked(shown, held, repeats)


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
    articles = candidate_articles(db, edition.key, period_start, period_end)
    picked = pick_stories(db, config, edition, articles, period_start, period_end)
    leads = [story.lead["id"] for story in picked.shown]
    return make_summaries(db, config, leads, progress=progress).warnings


def _issue_for_period(db: sqlite_utils.Database, edition: str, period_start: datetime) -> dict | None:
    return issue_for_period(db, edition, iso(period_start))


def candidate_articles(
    db: sqlite_utils.Database, edition: str, start: datetime, end: datetime, *, own_issue: int = 0
) -> list[dict[str, Any]]:
    """The articles published in ``[start, end)`` that no issue of ``edition`` (other than
    ``own_issue``, the one being rebuilt) carries and no editor hid, newest first, with the
    editor's values winning over the feed's."""
    carried = (f"{CARRIED_BY_EDITION_SQL} AND ia.issue_id != ?", [edition, own_issue])
    return [with_editor_values(row) for row in candidate_articles_stored(db, start, end, carried)]


def story_rows(stories: list[Story], start: int = 1, picked: Picked | None = None) -> list[dict[str, Any]]:
    """The ``issue_articles`` rows of ``stories``: one per card in order from ``start``, then
    each article merged into a card (``card_of``), so no later issue of the edition shows it.
    With ``picked``, its held-back stories follow the cards as dropped rows, and every
    repeat's row carries its note (``repeat``)."""
    held = picked.held if picked else []
    repeats = picked.repeats if picked else {}
    cards = [*stories, *held]
    dropped = {s.lead["id"] for s in held}
    rows = [
        {
            "article_id": s.lead["id"],
            "category": s.lead["category"],
            "position": n,
            "dropped": s.lead["id"] in dropped,
            "repeat": repeats[s.lead["id"]].note() if s.lead["id"] in repeats else None,
        }
        for n, s in enumerate(cards, start)
    ]
    others = [(o, s.lead) for s in cards for o in s.others]
    rows += [
        {
            "article_id": o["id"],
            "category": lead["category"],
            "position": n,
            "card_of": lead["id"],
            "dropped": lead["id"] in dropped,
        }
        for n, (o, lead) in enumerate(others, start + len(cards))
    ]
    return rows


def _insert_issue(
    db: sqlite_utils.Database,
    config: Config,
    edition: Edition,
    period_start: datetime,
    period_end: datetime,
    picked: Picked,
) -> dict[str, Any]:
    issue_id = insert_issue(db, edition.key, period_start, period_end, now=utcnow())
    insert_issue_rows(db, issue_id, story_rows(picked.shown, picked=picked))
    return refresh_issue(db, config, issue_id)
