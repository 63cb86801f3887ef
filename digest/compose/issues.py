"""Stored issues: the owner of the ``issues`` and ``issue_articles`` tables.

:func:`get_issue` finds the issue a name stands for (see :data:`ISSUE_NAME_HELP`);
:func:`issue_snapshot`, :func:`issue_categories` and :func:`list_issues` read what was stored.
Every other module reads and writes issues through the named functions below (building,
freezing, sending, the archive); none writes their SQL itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from digest.errors import DigestError, NotFound
from digest.store.database import MAX_ID, iso

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
        "SELECT category FROM issue_articles WHERE issue_id = ? AND dropped = 0"
        " GROUP BY category ORDER BY MIN(position)",
        [issue_id],
    ).fetchall()
    return [r[0] for r in rows]


def list_issues(db: sqlite_utils.Database, edition: str | None = None) -> list[dict[str, Any]]:
    """Issues, newest first, with their article counts (no snapshot)."""
    sql = (
        "SELECT i.id, i.edition, i.number, i.period_start, i.period_end, i.subject, i.preheader, i.status,"
        " i.created_at, i.sent_at, i.version, i.locked_at, i.approved_at, i.approved_by, i.review_mailed_at,"
        " i.lead_article_id, i.subject_set, i.preheader_set, i.built_at,"
        " (SELECT COUNT(*) FROM issue_articles ia WHERE ia.issue_id = i.id AND ia.dropped = 0) AS articles"
        " FROM issues i"
    )
    params: list[Any] = []
    if edition:
        sql += " WHERE i.edition = ?"
        params.append(edition)
    return list(db.query(sql + " ORDER BY i.period_end DESC, i.id DESC", params))


# ---------------------------------------------------------------- reads and writes others ask for

CARRIED_BY_EDITION_SQL = (
    "SELECT ia.article_id FROM issue_articles ia JOIN issues i ON i.id = ia.issue_id WHERE i.edition = ?"
)
"""The ids of the articles an issue of the edition (the parameter) carried, as a subquery."""


def issue_status(db: sqlite_utils.Database, issue_id: int) -> str:
    """The issue's status: draft, sending or sent."""
    return db.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0]


def issue_edition(db: sqlite_utils.Database, issue_id: int) -> str:
    """The key of the issue's edition."""
    return db.execute("SELECT edition FROM issues WHERE id = ?", [issue_id]).fetchone()[0]


def mark_issue_sending(db: sqlite_utils.Database, issue_id: int, frozen_at: str) -> None:
    """Draft → sending: the issue is frozen at ``frozen_at``."""
    db.execute("UPDATE issues SET status = 'sending', frozen_at = ? WHERE id = ?", [frozen_at, issue_id])


def reopen_sent_issue(db: sqlite_utils.Database, issue_id: int) -> None:
    """A ``sent`` issue with rows to send again is ``sending`` again (any other status stays)."""
    db.execute("UPDATE issues SET status = 'sending' WHERE id = ? AND status = 'sent'", [issue_id])


def mark_issue_sent(db: sqlite_utils.Database, issue_id: int, at: str) -> None:
    """The issue is ``sent``; ``sent_at`` keeps the first time it was."""
    db.execute(
        "UPDATE issues SET status = 'sent', sent_at = coalesce(sent_at, ?) WHERE id = ?", [at, issue_id]
    )


def set_issue_transport(db: sqlite_utils.Database, issue_id: int, transport: str | None) -> None:
    """Remember the transport URL (None: the configured one) the issue's resumes use."""
    db.execute("UPDATE issues SET transport = ? WHERE id = ?", [transport, issue_id])


def set_issue_note_text(db: sqlite_utils.Database, issue_id: int, note: str) -> None:
    """Store the (checked) editor's note of the issue."""
    db.execute("UPDATE issues SET note = ? WHERE id = ?", [note, issue_id])


def issue_for_period(db: sqlite_utils.Database, edition: str, period_start: str) -> dict[str, Any] | None:
    """The issue of ``edition`` whose period starts at ``period_start`` (ISO), or None."""
    rows = list(
        db.query("SELECT * FROM issues WHERE edition = ? AND period_start = ?", [edition, period_start])
    )
    return rows[0] if rows else None


def issue_ending(db: sqlite_utils.Database, edition: str, period_end: str) -> dict[str, Any] | None:
    """The first issue of ``edition`` whose period ends at ``period_end`` (ISO), or None."""
    rows = list(
        db.query(
            "SELECT * FROM issues WHERE edition = ? AND period_end = ? ORDER BY id LIMIT 1",
            [edition, period_end],
        )
    )
    return rows[0] if rows else None


# ---------------------------------------------------------------- an issue's rows, for editing

ISSUE_FIELDS = (
    "subject",
    "preheader",
    "snapshot",
    "note",
    "number",
    "subject_set",
    "preheader_set",
    "lead_article_id",
    "locked_at",
    "approved_at",
    "approved_by",
    "review_mailed_at",
    "built_at",
)
"""The columns an edit may set with :func:`update_issue` (each call bumps ``version``)."""


class EditRefused(DigestError):
    """An editor's change that does not fit the issue as it is (already in, not in, past the
    end, sending, sent...)."""


class StaleIssue(EditRefused):
    """The issue changed since the form that asked for this edit was loaded."""


def issue_by_id(db: sqlite_utils.Database, issue_id: int) -> dict[str, Any] | None:
    """The issue row with id ``issue_id``, or None."""
    rows = list(db.query("SELECT * FROM issues WHERE id = ?", [issue_id]))
    return rows[0] if rows else None


def send_started(db: sqlite_utils.Database, issue: dict[str, Any]) -> bool:
    """Whether sending the issue has started (its status, or variants already stored)."""
    if issue["status"] != "draft":
        return True
    row = db.execute("SELECT 1 FROM issue_variants WHERE issue_id = ? LIMIT 1", [issue["id"]]).fetchone()
    return row is not None


def update_issue(db: sqlite_utils.Database, issue_id: int, **fields: Any) -> None:
    """Set ``fields`` (names from :data:`ISSUE_FIELDS`) on a draft and bump its ``version``."""
    unknown = set(fields) - set(ISSUE_FIELDS)
    if unknown:
        raise ValueError(f"not an editable issue column: {', '.join(sorted(unknown))}")
    sets = "".join(f"{name} = ?, " for name in fields)
    db.execute(
        f"UPDATE issues SET {sets}version = version + 1 WHERE id = ? AND status = 'draft'",
        [*fields.values(), issue_id],
    )


def issue_rows(db: sqlite_utils.Database, issue_id: int) -> list[dict[str, Any]]:
    """The issue's ``issue_articles`` rows in position order (dropped and merged ones included)."""
    return list(
        db.query(
            "SELECT article_id, category, position, dropped, added, card_of, repeat FROM issue_articles"
            " WHERE issue_id = ? ORDER BY position, article_id",
            [issue_id],
        )
    )


def insert_issue_rows(db: sqlite_utils.Database, issue_id: int, rows: list[dict[str, Any]]) -> None:
    """Add rows (``article_id``, ``category``, ``position``, optional ``added``, ``card_of``,
    ``dropped``, ``repeat``)."""
    db.conn.executemany(
        "INSERT INTO issue_articles (issue_id, article_id, category, position, added, card_of, dropped,"
        " repeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                issue_id,
                r["article_id"],
                r["category"],
                r["position"],
                int(r.get("added", 0)),
                r.get("card_of"),
                int(r.get("dropped", 0)),
                r.get("repeat"),
            )
            for r in rows
        ],
    )


def update_issue_row(db: sqlite_utils.Database, issue_id: int, article_id: int, **fields: Any) -> None:
    """Set ``category``, ``position``, ``dropped``, ``added``, ``card_of`` or ``repeat`` on one row."""
    unknown = set(fields) - {"category", "position", "dropped", "added", "card_of", "repeat"}
    if unknown:
        raise ValueError(f"not an issue_articles column: {', '.join(sorted(unknown))}")
    sets = ", ".join(f"{name} = ?" for name in fields)
    db.execute(
        f"UPDATE issue_articles SET {sets} WHERE issue_id = ? AND article_id = ?",
        [*fields.values(), issue_id, article_id],
    )


def delete_issue_rows(db: sqlite_utils.Database, issue_id: int, article_ids: list[int]) -> None:
    """Take articles out of the issue's rows altogether (they no longer count as carried)."""
    db.conn.executemany(
        "DELETE FROM issue_articles WHERE issue_id = ? AND article_id = ?",
        [(issue_id, a) for a in article_ids],
    )


def carried_elsewhere(db: sqlite_utils.Database, edition: str, issue_id: int, article_id: int) -> str | None:
    """The name of another issue of ``edition`` that carries ``article_id`` (not dropped), or None."""
    row = db.execute(
        "SELECT i.edition, i.number FROM issue_articles ia JOIN issues i ON i.id = ia.issue_id"
        " WHERE i.edition = ? AND ia.article_id = ? AND ia.issue_id != ? AND ia.dropped = 0 LIMIT 1",
        [edition, article_id, issue_id],
    ).fetchone()
    return f"{row[0]}/{row[1]}" if row else None


def delete_draft(db: sqlite_utils.Database, issue_id: int) -> None:
    """Remove a draft that never started sending (its rows and any stored variant go with it)."""
    db.execute("DELETE FROM issues WHERE id = ? AND status = 'draft'", [issue_id])


def later_drafts(db: sqlite_utils.Database, edition: str, number: int) -> list[dict[str, Any]]:
    """The drafts of ``edition`` numbered after ``number``, lowest first."""
    return list(
        db.query(
            "SELECT * FROM issues WHERE edition = ? AND number > ? AND status = 'draft' ORDER BY number",
            [edition, number],
        )
    )


def number_taken(db: sqlite_utils.Database, edition: str, number: int) -> bool:
    """Whether an issue of ``edition`` has ``number``."""
    row = db.execute("SELECT 1 FROM issues WHERE edition = ? AND number = ?", [edition, number]).fetchone()
    return row is not None


def insert_issue(
    db: sqlite_utils.Database, edition: str, period_start: datetime, period_end: datetime, *, now: datetime
) -> int:
    """A new draft of ``edition`` for the period, numbered after the edition's last issue (a
    discarded draft's number is free again); its snapshot is made by
    :func:`digest.compose.snapshot.refresh_issue`. Returns its id."""
    number = db.execute(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM issues WHERE edition = ?", [edition]
    ).fetchone()[0]
    cursor = db.execute(
        "INSERT INTO issues (edition, number, period_start, period_end, subject, preheader, status,"
        " created_at, built_at) VALUES (?, ?, ?, ?, '', '', 'draft', ?, ?)",
        [edition, number, iso(period_start), iso(period_end), iso(now), iso(now)],
    )
    return int(cursor.lastrowid or 0)


def issue_article_count(db: sqlite_utils.Database, issue_id: int) -> int:
    """How many articles the issue carries."""
    return db.execute("SELECT COUNT(*) FROM issue_articles WHERE issue_id = ?", [issue_id]).fetchone()[0]


def newest_issue(db: sqlite_utils.Database) -> tuple[int, str, int] | None:
    """(id, edition, number) of the most recently stored issue, or None."""
    return db.execute("SELECT id, edition, number FROM issues ORDER BY id DESC LIMIT 1").fetchone()


def sending_issues(db: sqlite_utils.Database, editions: list[str]) -> list[dict[str, Any]]:
    """The issues of ``editions`` being sent, by period end."""
    marks = ", ".join("?" for _ in editions)
    return list(
        db.query(
            f"SELECT * FROM issues WHERE edition IN ({marks}) AND status = 'sending' ORDER BY period_end, id",
            editions,
        )
    )


def drafts_carrying(db: sqlite_utils.Database, article_id: int) -> list[dict[str, Any]]:
    """The drafts (sending not started) that carry ``article_id`` in any role."""
    return list(
        db.query(
            "SELECT i.* FROM issues i JOIN issue_articles ia ON ia.issue_id = i.id"
            " WHERE ia.article_id = ? AND i.status = 'draft'"
            " AND NOT EXISTS (SELECT 1 FROM issue_variants v WHERE v.issue_id = i.id) ORDER BY i.id",
            [article_id],
        )
    )


def overdue_drafts(db: sqlite_utils.Database, editions: list[str], before: str) -> list[tuple]:
    """(id, edition, number, period_end) of the drafts of ``editions`` whose period ended
    before ``before``."""
    marks = ", ".join("?" for _ in editions)
    return db.execute(
        f"SELECT id, edition, number, period_end FROM issues WHERE status = 'draft' AND edition IN ({marks})"
        " AND period_end < ? ORDER BY period_end, id",
        [*editions, before],
    ).fetchall()


def issues_ended_before(
    db: sqlite_utils.Database, ids: list[int], editions: list[str], before: str
) -> list[tuple[int, str, int, str]]:
    """(id, edition, number, period_end) of those of ``ids`` that are of ``editions`` and whose period
    ended before ``before``, by period end."""
    found: list[tuple[int, str, int, str]] = []
    marks = ", ".join("?" for _ in editions)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found += db.execute(
            f"SELECT id, edition, number, period_end FROM issues WHERE id IN ({', '.join('?' * len(chunk))})"
            f" AND edition IN ({marks}) AND period_end < ?",
            [*chunk, *editions, before],
        ).fetchall()
    return sorted(found, key=lambda row: (row[3], row[0]))


# ---------------------------------------------------------------- the archive: sent issues

SENT_ORDER = "ORDER BY coalesce(sent_at, period_end) DESC, id DESC"


def count_sent_issues(db: sqlite_utils.Database) -> int:
    """How many issues were sent."""
    return db.execute("SELECT count(*) FROM issues WHERE status = 'sent'").fetchone()[0]


def sent_issues_page(db: sqlite_utils.Database, limit: int, offset: int = 0) -> list[tuple]:
    """(id, edition, number, subject, period_end, sent_at) of sent issues, newest first."""
    return db.execute(
        "SELECT id, edition, number, subject, period_end, sent_at FROM issues WHERE status = 'sent'"
        f" {SENT_ORDER} LIMIT ? OFFSET ?",
        [limit, offset],
    ).fetchall()


def sent_issue_ids(db: sqlite_utils.Database) -> list[int]:
    """The ids of every sent issue, in id order."""
    return [r[0] for r in db.execute("SELECT id FROM issues WHERE status = 'sent' ORDER BY id")]


def latest_sent_issue_id(db: sqlite_utils.Database) -> int | None:
    """The id of the issue sent last, or None."""
    row = db.execute(
        "SELECT id FROM issues WHERE status = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def sent_neighbours(db: sqlite_utils.Database, issue_id: int) -> dict[str, int | None]:
    """The previous and next sent issue of the same edition (by number), or None."""
    row = db.execute("SELECT edition, number FROM issues WHERE id = ?", [issue_id]).fetchone()
    if row is None:
        return {"previous": None, "next": None}
    edition, number = row
    previous = db.execute(
        "SELECT id FROM issues WHERE edition = ? AND number < ? AND status = 'sent'"
        " ORDER BY number DESC LIMIT 1",
        [edition, number],
    ).fetchone()
    following = db.execute(
        "SELECT id FROM issues WHERE edition = ? AND number > ? AND status = 'sent' ORDER BY number LIMIT 1",
        [edition, number],
    ).fetchone()
    return {"previous": previous[0] if previous else None, "next": following[0] if following else None}


def category_counts(db: sqlite_utils.Database, issue_ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """``(category, article count)`` of each issue, in the issue's order: one query for all."""
    counts: dict[int, list[tuple[str, int]]] = {issue_id: [] for issue_id in issue_ids}
    marks = ", ".join("?" * len(issue_ids))
    for issue_id, category, count in db.execute(
        f"SELECT issue_id, category, count(*) FROM issue_articles WHERE issue_id IN ({marks}) AND dropped = 0"
        " GROUP BY issue_id, category ORDER BY issue_id, min(position)",
        issue_ids,
    ):
        counts[issue_id].append((category, count))
    return counts


def mark_review_mailed(db: sqlite_utils.Database, issue_id: int, at: str) -> None:
    """Record that the review links went out (no version bump: the issue did not change)."""
    db.execute("UPDATE issues SET review_mailed_at = ? WHERE id = ?", [at, issue_id])


def drafts_due(db: sqlite_utils.Database, edition: str, at: str) -> list[dict[str, Any]]:
    """The drafts of ``edition`` whose scheduled time (period end) is at or before ``at``, oldest first."""
    return list(
        db.query(
            "SELECT * FROM issues WHERE edition = ? AND status = 'draft' AND period_end <= ?"
            " ORDER BY period_end, id",
            [edition, at],
        )
    )


def story_count(db: sqlite_utils.Database, issue_id: int) -> int:
    """How many cards the issue shows (dropped and merged articles not counted)."""
    row = db.execute(
        "SELECT COUNT(*) FROM issue_articles WHERE issue_id = ? AND dropped = 0 AND card_of IS NULL",
        [issue_id],
    ).fetchone()
    return int(row[0])


def sent_issues(db: sqlite_utils.Database, edition: str, since: str, until: str) -> list[dict[str, Any]]:
    """The issues of ``edition`` whose sending started (``sending`` or ``sent``) and whose
    period ended in ``[since, until]`` (ISO), newest first, with their snapshots."""
    return list(
        db.query(
            "SELECT id, edition, number, period_end, snapshot FROM issues"
            " WHERE edition = ? AND status != 'draft' AND period_end >= ? AND period_end <= ?"
            " ORDER BY period_end DESC, id DESC",
            [edition, since, until],
        )
    )
