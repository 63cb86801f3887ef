"""The editor's note: a few lines at the top of one issue, written before it is sent."""

from __future__ import annotations

import re
from typing import Any

import sqlite_utils

from digest.compose.issues import get_issue, issue_by_id, issue_name, send_started, set_issue_note_text
from digest.errors import DigestError
from digest.store.database import transaction

NOTE_MAX_CHARS = 1000
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def clean_note(text: str) -> str:
    """The note as stored: plain text, control characters gone, at most :data:`NOTE_MAX_CHARS`."""
    note = _CONTROL_RE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if len(note) > NOTE_MAX_CHARS:
        raise DigestError(
            f"the note is {len(note)} characters; keep it to {NOTE_MAX_CHARS} (a note, not an article)"
        )
    return note


def set_issue_note(db: sqlite_utils.Database, ref: str | int, text: str) -> dict[str, Any]:
    """Set (or, with empty ``text``, clear) the editor's note of issue ``ref``; return the
    issue row. Plain text: a blank line starts a paragraph. Refused once sending started,
    since every recipient must get the same issue."""
    note = clean_note(text)
    with transaction(db):
        issue = get_issue(db, ref)
        if send_started(db, issue):
            raise DigestError(
                f"issue {issue_name(issue)} is {issue['status']}: "
                "sending has started, so its note can no longer change"
            )
        set_issue_note_text(db, issue["id"], note)
    return issue_by_id(db, issue["id"])
