"""Every editor's change, recorded: the ``editor_changes`` table (this module owns it).

One row per change: what (``action`` and ``detail``), when, by whom (the desk's editor or
the local user name), and the issue by id, edition, number and period (no foreign key: a
discarded issue's lines stay readable) or the article it concerned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from digest.store.database import iso, utcnow


def record_change(
    db: sqlite_utils.Database,
    editor: str,
    action: str,
    *,
    issue: dict[str, Any] | None = None,
    article_id: int | None = None,
    detail: str = "",
    now: datetime | None = None,
) -> None:
    """Record one change (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO editor_changes (at, editor, action, issue_id, edition, number, period_end, article_id,"
        " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            iso(now or utcnow()),
            editor,
            action,
            issue["id"] if issue else None,
            issue["edition"] if issue else None,
            issue["number"] if issue else None,
            issue["period_end"] if issue else None,
            article_id,
            detail,
        ],
    )


def issue_changes(db: sqlite_utils.Database, issue_id: int) -> list[dict[str, Any]]:
    """The changes to one issue (by its id), oldest first."""
    return list(
        db.query(
            "SELECT at, editor, action, article_id, detail FROM editor_changes"
            " WHERE issue_id = ? ORDER BY id",
            [issue_id],
        )
    )


def discarded_issues(db: sqlite_utils.Database, edition: str | None = None) -> list[dict[str, Any]]:
    """The issues that were discarded (newest first): id, edition, number, period_end, at, editor,
    and the subject they had (``detail``)."""
    sql = (
        "SELECT issue_id AS id, edition, number, period_end, at, editor, detail FROM editor_changes"
        " WHERE action = 'discard'"
    )
    params: list[Any] = []
    if edition:
        sql += " AND edition = ?"
        params.append(edition)
    return list(db.query(sql + " ORDER BY id DESC", params))


def discarded_issue(
    db: sqlite_utils.Database, issue_id: int | None = None, *, edition: str = "", number: int = 0
) -> dict[str, Any] | None:
    """The discard record of the issue that had id ``issue_id`` (or, without one, the latest
    discarded ``edition``/``number``), if there is one."""
    where, params = (
        ("issue_id = ?", [issue_id])
        if issue_id is not None
        else ("edition = ? AND number = ?", [edition, number])
    )
    rows = list(
        db.query(
            "SELECT issue_id AS id, edition, number, period_end, at, editor, detail FROM editor_changes"
            f" WHERE action = 'discard' AND {where} ORDER BY id DESC LIMIT 1",
            params,
        )
    )
    return rows[0] if rows else None


def period_discarded(db: sqlite_utils.Database, edition: str, period_end: str) -> bool:
    """Whether an issue of ``edition`` for the period ending at ``period_end`` (ISO) was discarded:
    the scheduled run then builds no new one for it."""
    row = db.execute(
        "SELECT 1 FROM editor_changes WHERE action = 'discard' AND edition = ? AND period_end = ? LIMIT 1",
        [edition, period_end],
    ).fetchone()
    return row is not None
