"""The figures a publisher reads: per issue (delivered, bounced, complaints, unsubscribes,
clicks) and for the list (sign-ups, confirmations, unsubscribes, bounces, size, sources,
choices). Every table is read through its owner's named functions; only counts come back.

A click count under :data:`SHOWN_FROM` is shown as ``"<5"`` (unless ``raw``), so no single
reader's click can be read off a report.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from digest.bounces.process import issue_report_counts, reports_per_day
from digest.compose.issues import get_issue, issue_name, issue_snapshot, list_issues
from digest.delivery.ledger import delivery_counts
from digest.stats.clicks import issue_clicks
from digest.store.database import from_iso, iso
from subscribers.events import count_events, events_per_day
from subscribers.history import choice_counts, list_size_changes, source_counts

GMAIL_WARN = 0.001
"""Gmail's line for complaints (0.1 %): stay under it."""
GMAIL_LIMIT = 0.003
"""Gmail's hard line (0.3 %): over it, mail is filtered."""
SHOWN_FROM = 5
"""Click counts below this show as ``"<5"``."""
UNSUBSCRIBE_DAYS = 7
UNSUBSCRIBE_KINDS = ("unsubscribe", "mailed_unsubscribe")


def shown(count: int, raw: bool = False) -> int | str:
    """A click count as shown: ``"<5"`` under :data:`SHOWN_FROM` unless ``raw``."""
    return count if raw or count >= SHOWN_FROM else f"<{SHOWN_FROM}"


def flag(rate: float) -> str:
    """``✘`` at or over Gmail's 0.3 % line, ``⚠`` at or over its 0.1 % line, else ``""``."""
    return "✘" if rate >= GMAIL_LIMIT else "⚠" if rate >= GMAIL_WARN else ""


def _started(issue: dict[str, Any]) -> str | None:
    return issue.get("frozen_at") or issue.get("sent_at")


def issue_figures(db: sqlite_utils.Database, issue: dict[str, Any], *, raw: bool = False) -> dict[str, Any]:
    """One issue's figures (``issue`` is a row of ``issues``; the snapshot gives story titles)."""
    counts = delivery_counts(db, issue["id"])
    reports = issue_report_counts(db, issue["id"])
    delivered = counts.get("sent", 0)
    bounced = reports["hard"] + reports["soft"]
    started = _started(issue)
    unsubscribes = 0
    if started:
        until = iso(from_iso(started) + timedelta(days=UNSUBSCRIBE_DAYS))
        unsubscribes = count_events(db, UNSUBSCRIBE_KINDS, started, until)
    complaint_rate = reports["complaint"] / delivered if delivered else 0.0
    bounce_rate = bounced / delivered if delivered else 0.0
    return {
        "issue": issue_name(issue),
        "id": issue["id"],
        "subject": issue["subject"],
        "sent_at": issue.get("sent_at") or started,
        "delivered": delivered,
        "failed": counts.get("failed", 0),
        "waiting": sum(counts.get(s, 0) for s in ("queued", "sending", "deferred")),
        "bounced": {"hard": reports["hard"], "soft": reports["soft"]},
        "complaints": reports["complaint"],
        "unsubscribes_7_days": unsubscribes,
        "complaint_rate": complaint_rate,
        "complaint_flag": flag(complaint_rate),
        "bounce_rate": bounce_rate,
        "bounce_flag": flag(bounce_rate),
        "clicks": _story_clicks(db, issue, raw),
    }


def _story_clicks(db: sqlite_utils.Database, issue: dict[str, Any], raw: bool) -> list[dict[str, Any]]:
    counted = issue_clicks(db, issue["id"])
    if not counted:
        return []
    full = get_issue(db, issue["id"]) if "snapshot" not in issue else issue
    stories = [
        a for section in issue_snapshot(full).get("categories", []) for a in section.get("articles", [])
    ]
    return [
        {
            "story": str(story.get("title") or ""),
            "clicks": shown(counted.get(str(story["id"]), (0, 0))[0], raw),
            "scanner": shown(counted.get(str(story["id"]), (0, 0))[1], raw),
        }
        for story in stories
    ]


def recent_issues(db: sqlite_utils.Database, days: int, now: datetime) -> list[dict[str, Any]]:
    """The issues sent (or sending) in the last ``days`` days, newest first."""
    since = iso(now - timedelta(days=days))
    return [
        i
        for i in list_issues(db)
        if i["status"] != "draft" and (i.get("sent_at") or i["created_at"]) >= since
    ]


def list_figures(db: sqlite_utils.Database, days: int, now: datetime) -> dict[str, Any]:
    """The list day by day for the last ``days`` days (UTC), and who is on it now."""
    first = (now - timedelta(days=days - 1)).date()
    since = iso(datetime(first.year, first.month, first.day, tzinfo=now.tzinfo))
    events = events_per_day(db, ("subscribe", "confirm", *UNSUBSCRIBE_KINDS), since)
    reports = reports_per_day(db, since)
    joined, left = list_size_changes(db)
    day0 = first.isoformat()
    size = sum(n for d, n in joined.items() if d < day0) - sum(n for d, n in left.items() if d < day0)
    rows = []
    for offset in range(days):
        day = (first + timedelta(days=offset)).isoformat()
        size += joined.get(day, 0) - left.get(day, 0)
        today, bounced = events.get(day, {}), reports.get(day, {})
        rows.append(
            {
                "day": day,
                "signups": today.get("subscribe", 0),
                "confirmations": today.get("confirm", 0),
                "unsubscribes": sum(today.get(k, 0) for k in UNSUBSCRIBE_KINDS),
                "bounces": bounced.get("hard", 0) + bounced.get("soft", 0),
                "size": size,
            }
        )
    editions, categories = choice_counts(db)
    return {"days": rows, "sources": source_counts(db), "editions": editions, "categories": categories}
