"""What every editor's change to a draft shares: one transaction that refuses an issue whose
sending started or that changed since the form was loaded (:func:`editing_draft`), the
record of a content change that also withdraws an approval (:func:`content_changed`), and
the :class:`EditResult` every change returns."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from digest.compose.history import record_change
from digest.compose.issues import EditRefused, StaleIssue, get_issue, issue_name, send_started, update_issue
from digest.compose.snapshot import refresh_issue
from digest.config import Config
from digest.store.database import transaction


@dataclass
class EditResult:
    """What an edit did: the issue row after it and a one-line message for the editor."""

    issue: dict[str, Any]
    message: str


@contextlib.contextmanager
def editing_draft(db: sqlite_utils.Database, ref: str | int, version: int | None) -> Iterator[dict[str, Any]]:
    """One transaction around an edit of draft ``ref``; yields the issue row. Refused
    (:class:`EditRefused`) when sending started, :class:`StaleIssue` when ``version`` is
    given and is not the issue's."""
    with transaction(db):
        issue = get_issue(db, ref)
        if send_started(db, issue):
            raise EditRefused(
                f"issue {issue_name(issue)} is {issue['status']}: "
                "sending has started, so it can no longer change"
            )
        if version is not None and int(version) != int(issue["version"]):
            raise StaleIssue("this issue changed; reload")
        yield issue


def content_changed(
    db: sqlite_utils.Database,
    config: Config,
    issue: dict[str, Any],
    editor: str,
    action: str,
    message: str,
    *,
    article_id: int | None = None,
    detail: str = "",
) -> EditResult:
    """Record a content change, withdraw an approval it invalidates, remake the snapshot."""
    record_change(db, editor, action, issue=issue, article_id=article_id, detail=detail)
    if issue.get("approved_at"):
        update_issue(db, issue["id"], approved_at=None, approved_by=None)
        record_change(db, editor, "unapprove", issue=issue, detail=f"withdrawn by the change: {action}")
        message += "; its approval is withdrawn (approve it again)"
    return EditResult(refresh_issue(db, config, issue["id"]), message)
