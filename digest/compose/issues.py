"""Stored issues: how they are named (``daily/3``, ``latest``) and read back.

:func:`get_issue` finds the issue a name stands for (see :data:`ISSUE_NAME_HELP`);
:func:`issue_snapshot`, :func:`issue_categories` and :func:`list_issues` read what was stored.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from digest.errors import DigestError, NotFound
from digest.store.database import MAX_ID

ISSUE_NAME_HELP = (
    "An issue is named EDITION/NUMBER as listings show it (daily/3), `latest` (the most "
    "recently built issue), EDITION/latest (daily/latest), or its database id."
)


def issue_name(issue: dict[str, Any]) -> str:
    """How an issue is shown and typed: ``daily/3`` (edition and its number within it)."""
    return f"{issue['edition']}/{issue['number']}"


def get_issue(db: sqlite_utils.Database, ref: str | int, edition: str | None = None) -> dict[str, Any]:
    """The issue row that ``ref`` names (see :data:`ISSUE_NAME_HELP`).

    ``daily/3`` is issue 3 of the daily edition; ``latest`` the most recently built issue
    (of ``edition`` when given); ``daily/latest`` the most recently built daily; a bare
    number is the database id.
    """
    text = str(ref).strip()
    if "/" in text:
        edition_part, _, number = text.partition("/")
        edition_part = edition_part.strip()
        if edition and edition_part != edition:
            raise NotFound(f"issue {text!r} is not of edition {edition!r}")
        return _get_named(db, text, edition_part, number.strip())
    if text.lower() == "latest":
        return _latest(db, edition)
    if not (text.isascii() and text.isdigit()):
        raise NotFound(
            f"issue {text!r}: name it like daily/3, latest or daily/latest (see `digest issues list`)"
        )
    if int(text) > MAX_ID:  # past any SQLite row id
        raise NotFound(f"issue {text} not found; see `digest issues list`")
    rows = list(db.query("SELECT * FROM issues WHERE id = ?", [int(text)]))
    if not rows or (edition and rows[0]["edition"] != edition):
        raise NotFound(f"issue {text} not found; see `digest issues list`")
    return rows[0]


def _get_named(db: sqlite_utils.Database, text: str, edition: str, number: str) -> dict[str, Any]:
    if not edition:
        raise NotFound(f"issue {text!r}: name the edition before the slash, like daily/3")
    if number.lower() == "latest":
        return _latest(db, edition)
    if not (number.isascii() and number.isdigit()):
        raise NotFound(f"issue {text!r}: after the slash give a number or latest, like {edition}/3")
    if int(number) > MAX_ID:
        raise NotFound(f"no issue {edition}/{number}; see `digest issues list`")
    rows = list(db.query("SELECT * FROM issues WHERE edition = ? AND number = ?", [edition, int(number)]))
    if not rows:
        raise NotFound(f"no issue {edition}/{int(number)}; see `digest issues list`")
    return rows[0]


def _latest(db: sqlite_utils.Database, edition: str | None) -> dict[str, Any]:
    # The most recently built, not the latest period: right after `issues build daily`,
    # `latest` is that daily even when a weekly covers a later period end.
    sql, params = "SELECT * FROM issues", []
    if edition:
        sql, params = sql + " WHERE edition = ?", [edition]
    rows = list(db.query(sql + " ORDER BY created_at DESC, id DESC LIMIT 1", params))
    if not rows:
        scope = f" for edition {edition!r}" if edition else ""
        raise NotFound(f"no issues yet{scope}; build one with `digest issues build`")
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
