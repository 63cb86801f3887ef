"""The draft's flags an editor sets: locked (the selection frozen) and approved (the
scheduled run may send it). Re-exported by :mod:`digest.compose.editing`."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from digest.compose.edit_guard import EditResult, editing_draft
from digest.compose.history import record_change
from digest.compose.issues import EditRefused, issue_by_id, issue_name, update_issue
from digest.config import Config
from digest.store.database import iso, utcnow


def lock_issue(
    db: sqlite_utils.Database, config: Config, ref: str | int, editor: str, *, version: int | None = None
) -> EditResult:
    """Freeze the draft's selection: no rebuild, not even the scheduled one at send time."""
    with editing_draft(db, ref, version) as issue:
        if issue["locked_at"]:
            raise EditRefused(f"{issue_name(issue)} is already locked")
        update_issue(db, issue["id"], locked_at=iso(utcnow()))
        record_change(db, editor, "lock", issue=issue)
        return EditResult(dict(issue_by_id(db, issue["id"]) or {}), f"Locked {issue_name(issue)}")


def unlock_issue(
    db: sqlite_utils.Database, config: Config, ref: str | int, editor: str, *, version: int | None = None
) -> EditResult:
    """Let the draft's selection be made again (``rebuild``, the scheduled run)."""
    with editing_draft(db, ref, version) as issue:
        if not issue["locked_at"]:
            raise EditRefused(f"{issue_name(issue)} is not locked")
        update_issue(db, issue["id"], locked_at=None)
        record_change(db, editor, "unlock", issue=issue)
        return EditResult(dict(issue_by_id(db, issue["id"]) or {}), f"Unlocked {issue_name(issue)}")


def approve_issue(
    db: sqlite_utils.Database, config: Config, ref: str | int, editor: str, *, version: int | None = None
) -> EditResult:
    """Approve the draft as it is: the scheduled run may send it."""
    with editing_draft(db, ref, version) as issue:
        if issue["approved_at"]:
            raise EditRefused(f"{issue_name(issue)} is already approved (by {issue['approved_by']})")
        update_issue(db, issue["id"], approved_at=iso(utcnow()), approved_by=editor)
        record_change(db, editor, "approve", issue=issue)
        return EditResult(dict(issue_by_id(db, issue["id"]) or {}), f"Approved {issue_name(issue)}")


def unapprove_issue(
    db: sqlite_utils.Database, config: Config, ref: str | int, editor: str, *, version: int | None = None
) -> EditResult:
    """Take an approval back before sending starts."""
    with editing_draft(db, ref, version) as issue:
        if not issue["approved_at"]:
            raise EditRefused(f"{issue_name(issue)} is not approved")
        update_issue(db, issue["id"], approved_at=None, approved_by=None)
        record_change(db, editor, "unapprove", issue=issue)
        return EditResult(dict(issue_by_id(db, issue["id"]) or {}), f"Unapproved {issue_name(issue)}")


def require_approval(config: Config, issue: dict[str, Any]) -> None:
    """Refuse to start sending a draft of an edition that requires approval and has none
    (`digest send`; a test copy or a dry run needs none)."""
    edition = config.editions.get(issue["edition"])
    if edition is None or edition.approval != "required" or issue["status"] != "draft":
        return
    if not issue.get("approved_at"):
        name = issue_name(issue)
        raise EditRefused(f"{name} waits for approval; `digest issues approve {name}` first")
