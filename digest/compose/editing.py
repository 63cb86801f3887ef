"""The editor's desk, core: every change an editor makes to a draft, one code path for the
command line and the web desk.

Every function takes ``(db, config, <issue or article>, <values>, editor)``: ``ref`` names
an issue as listings do (``daily/3``, ``latest``, ``daily/latest`` or its id), articles are
ids, ``editor`` is who acts (the desk's signed-in editor, or the local user name). Each is
ONE transaction, is recorded in ``editor_changes`` (``digest issues history``), returns
plain values, and raises a :class:`~digest.errors.DigestError` with a one-line message:
:class:`~digest.errors.NotFound` (unknown issue or article), :class:`EditRefused` (already
in, not in, past the end, an issue that is sending or sent), :class:`StaleIssue` ("this
issue changed; reload": ``version`` was given and the issue has changed since). A content
change to an approved issue withdraws the approval (the message says so).

Issue edits (each returns an :class:`EditResult`: the issue row after it, one-line message):

- ``drop_stories(db, config, ref, article_ids, editor, *, version=None)``
- ``restore_stories(db, config, ref, article_ids, editor, *, version=None)``
- ``add_stories(db, config, ref, article_ids, editor, *, version=None)``: even from outside the window
- ``set_lead(db, config, ref, article_id | None, editor, *, version=None)``: None clears it
- ``move_story(db, config, ref, article_id, to, editor, *, version=None)``: 1-based place in its section
- ``set_subject(db, config, ref, editor, *, subject=None, preheader=None, reset=False, version=None)``
- ``set_note(db, config, ref, text, editor, *, version=None)``
- ``rebuild_issue(db, config, ref, editor, *, version=None)``: "+2 stories, −1 no longer in the window"
- ``discard_issue(db, config, ref, editor, *, version=None)``: a draft goes; its number is free again
- ``lock_issue`` / ``unlock_issue(db, config, ref, editor, *, version=None)``: freeze the selection
- ``approve_issue`` / ``unapprove_issue(db, config, ref, editor, *, version=None)``
  (these four in :mod:`digest.compose.approvals`; the shared transaction and checks in
  :mod:`digest.compose.edit_guard`)

Articles and reading (in :mod:`digest.compose.article_desk`, re-exported here):

- ``edit_article(db, config, article_id, values, editor) -> dict``: values of title/summary/
  category/byline ("" resets one); drafts carrying it are remade
- ``hide_article`` / ``unhide_article(db, config, article_id, editor) -> dict``
- ``regenerate_summary(db, config, article_id, editor) -> dict``: ``[summary] engine = "llm"`` only
- ``article_view(db, article_id) -> dict``: shown values, ``feed`` and ``editor`` sides
- ``build_ahead(db, config, edition, editor, *, now=None) -> ComposeResult``
- ``issue_state(config, issue) -> str``: draft, awaiting approval, approved, sending, sent
- ``issues_with_states(db, config, edition=None) -> list[dict]``: with discarded ones
- ``dropped_stories(db, issue_id) -> list[dict]`` and ``issue_history(db, ref) -> list[dict]``
"""

from __future__ import annotations

from typing import Any, NoReturn

import sqlite_utils

from digest.compose.approvals import approve_issue, lock_issue, unapprove_issue, unlock_issue
from digest.compose.article_desk import (
    STATES,
    article_view,
    build_ahead,
    dropped_stories,
    edit_article,
    hide_article,
    issue_history,
    issue_state,
    issues_with_states,
    regenerate_summary,
    unhide_article,
)
from digest.compose.edit_guard import EditResult, content_changed, editing_draft
from digest.compose.history import record_change
from digest.compose.issues import (
    EditRefused,
    StaleIssue,
    carried_elsewhere,
    delete_draft,
    get_issue,
    insert_issue_rows,
    issue_name,
    issue_rows,
    later_drafts,
    number_taken,
    update_issue,
    update_issue_row,
)
from digest.compose.memory import held_back
from digest.compose.notes import clean_note
from digest.compose.rebuild import reselect, summarize_window
from digest.compose.snapshot import refresh_issue
from digest.config import Config
from digest.ingest.article_edits import article_row, with_editor_values
from digest.ingest.sanitize import one_line
from digest.store.database import iso, utcnow

__all__ = [
    "STATES",
    "EditRefused",
    "EditResult",
    "StaleIssue",
    "add_stories",
    "approve_issue",
    "article_view",
    "build_ahead",
    "discard_issue",
    "drop_stories",
    "dropped_stories",
    "edit_article",
    "hide_article",
    "issue_history",
    "issue_state",
    "issues_with_states",
    "lock_issue",
    "move_story",
    "rebuild_issue",
    "regenerate_summary",
    "restore_stories",
    "set_lead",
    "set_note",
    "set_subject",
    "unapprove_issue",
    "unhide_article",
    "unlock_issue",
]

SUBJECT_MAX_CHARS = 200
PREHEADER_MAX_CHARS = 200


def _rows(db: sqlite_utils.Database, issue: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["article_id"]: r for r in issue_rows(db, issue["id"])}


def _ids(article_ids: list[int] | list[str]) -> list[int]:
    if not article_ids:
        raise EditRefused("name at least one article id (see `digest issues show`)")
    ids = []
    for raw in article_ids:
        text = str(raw).strip()
        if not (text.isascii() and text.isdigit()):
            raise EditRefused(f"article {raw!r}: ids are numbers (see `digest issues show`)")
        ids.append(int(text))
    return list(dict.fromkeys(ids))


def _titles(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def drop_stories(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    article_ids: list[int],
    editor: str,
    *,
    version: int | None = None,
) -> EditResult:
    """Drop stories from the draft: they leave the email, its text part and the web version
    (``issues show`` still lists them as dropped, and a rebuild never brings them back)."""
    return _set_dropped(db, config, ref, _ids(article_ids), editor, version, dropped=True)


def restore_stories(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    article_ids: list[int],
    editor: str,
    *,
    version: int | None = None,
) -> EditResult:
    """Put dropped stories back at their place."""
    return _set_dropped(db, config, ref, _ids(article_ids), editor, version, dropped=False)


def _set_dropped(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    ids: list[int],
    editor: str,
    version: int | None,
    *,
    dropped: bool,
) -> EditResult:
    """Drop (or restore) each of ``ids``; refused unless every one is in the draft and not
    already in that state."""
    with editing_draft(db, ref, version) as issue:
        rows = _rows(db, issue)
        for article_id in ids:
            row = rows.get(article_id)
            if row is None:
                _not_in(db, issue, article_id)
            if bool(row["dropped"]) == dropped:
                state = "already dropped" if dropped else "not dropped"
                raise EditRefused(f"article {article_id} is {state} from {issue_name(issue)}")
        for article_id in ids:
            update_issue_row(db, issue["id"], article_id, dropped=int(dropped))
        action, done = ("drop", "dropped") if dropped else ("restore", "restored")
        message = f"{issue_name(issue)}: {done} {_titles(ids)}"
        return content_changed(
            db, config, issue, editor, action, message, article_id=ids[0], detail=_titles(ids)
        )


def add_stories(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    article_ids: list[int],
    editor: str,
    *,
    version: int | None = None,
) -> EditResult:
    """Put stored articles into the draft, even from outside its window: each goes last in its
    section (``move_story`` places it) and stays through a rebuild. A story the issue held
    back as already sent goes back in at its place."""
    ids = _ids(article_ids)
    with editing_draft(db, ref, version) as issue:
        rows = _rows(db, issue)
        articles = []
        for article_id in ids:
            article = with_editor_values(article_row(db, article_id))
            row = rows.get(article_id)
            if row is not None and held_back(row):
                continue  # held back as already sent: the editor's add puts it back
            if row is not None:
                hint = "; restore it" if row["dropped"] else ""
                state = "dropped from" if row["dropped"] else "already in"
                raise EditRefused(f"article {article_id} is {state} {issue_name(issue)}{hint}")
            if article.get("hidden_at"):
                raise EditRefused(
                    f"article {article_id} is hidden; `digest articles unhide {article_id}` first"
                )
            other = carried_elsewhere(db, issue["edition"], issue["id"], article_id)
            if other:
                raise EditRefused(f"article {article_id} is already in {other}")
            articles.append(article)
        for article_id in ids:
            if (row := rows.get(article_id)) is not None and held_back(row):
                update_issue_row(db, issue["id"], article_id, dropped=0, added=1)  # stays in a rebuild
                for merged in (r for r in rows.values() if r["card_of"] == article_id):
                    update_issue_row(db, issue["id"], merged["article_id"], dropped=0)
        last = max((r["position"] for r in rows.values()), default=0)
        insert_issue_rows(
            db,
            issue["id"],
            [
                {"article_id": a["id"], "category": a["category"], "position": last + n, "added": 1}
                for n, a in enumerate(articles, 1)
            ],
        )
        message = f"{issue_name(issue)}: added {_titles(ids)}"
        return content_changed(
            db, config, issue, editor, "add", message, article_id=ids[0], detail=_titles(ids)
        )


def _not_in(db: sqlite_utils.Database, issue: dict[str, Any], article_id: int) -> NoReturn:
    """Raise: NotFound for an unknown article, else "not in" the issue."""
    article_row(db, article_id)
    raise EditRefused(f"article {article_id} is not in {issue_name(issue)}")


def _live_card(db: sqlite_utils.Database, issue: dict[str, Any], article_id: int) -> dict[str, Any]:
    row = _rows(db, issue).get(int(article_id))
    if row is None:
        _not_in(db, issue, article_id)
    if row["dropped"]:
        raise EditRefused(f"article {article_id} is dropped from {issue_name(issue)}; restore it first")
    if row["card_of"] is not None:
        raise EditRefused(
            f"article {article_id} is merged into article {row['card_of']}'s card in {issue_name(issue)}"
        )
    return row


def set_lead(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    article_id: int | None,
    editor: str,
    *,
    version: int | None = None,
) -> EditResult:
    """Make a story the lead (shown first, above the sections), or clear the lead (None)."""
    with editing_draft(db, ref, version) as issue:
        if article_id is None:
            if issue["lead_article_id"] is None:
                raise EditRefused(f"{issue_name(issue)} has no lead story")
            update_issue(db, issue["id"], lead_article_id=None)
            return content_changed(
                db, config, issue, editor, "lead", f"{issue_name(issue)}: no lead story", detail="none"
            )
        _live_card(db, issue, article_id)
        if issue["lead_article_id"] == int(article_id):
            raise EditRefused(f"article {article_id} is already the lead of {issue_name(issue)}")
        update_issue(db, issue["id"], lead_article_id=int(article_id))
        message = f"{issue_name(issue)}: article {article_id} is the lead story"
        return content_changed(db, config, issue, editor, "lead", message, article_id=int(article_id))


def move_story(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    article_id: int,
    to: int,
    editor: str,
    *,
    version: int | None = None,
) -> EditResult:
    """Move a story to place ``to`` (1 = first) within its section."""
    with editing_draft(db, ref, version) as issue:
        row = _live_card(db, issue, article_id)
        rows = issue_rows(db, issue["id"])
        section = [
            r for r in rows if r["category"] == row["category"] and not r["dropped"] and r["card_of"] is None
        ]
        if not 1 <= int(to) <= len(section):
            raise EditRefused(
                f"{issue_name(issue)}'s {row['category']} section has {len(section)} "
                f"{'story' if len(section) == 1 else 'stories'}; --to must be 1 to {len(section)}"
            )
        places = [r["position"] for r in section]
        order = [r for r in section if r["article_id"] != int(article_id)]
        order.insert(int(to) - 1, row)
        for position, r in zip(places, order, strict=True):
            if r["position"] != position:
                update_issue_row(db, issue["id"], r["article_id"], position=position)
        message = (
            f"{issue_name(issue)}: article {article_id} is now {to} of {len(section)} in {row['category']}"
        )
        return content_changed(
            db, config, issue, editor, "move", message, article_id=int(article_id), detail=f"to {to}"
        )


def set_subject(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    editor: str,
    *,
    subject: str | None = None,
    preheader: str | None = None,
    reset: bool = False,
    version: int | None = None,
) -> EditResult:
    """Set the editor's subject and/or preheader (they replace the template's), or with
    ``reset`` go back to the template's for both."""
    if reset and (subject is not None or preheader is not None):
        raise EditRefused("give a subject or --reset, not both")
    fields: dict[str, str | None] = {}
    if reset:
        fields = {"subject_set": None, "preheader_set": None}
    if subject is not None:
        fields["subject_set"] = _header_text(subject, "subject", SUBJECT_MAX_CHARS, empty_ok=False)
    if preheader is not None:
        fields["preheader_set"] = _header_text(preheader, "preheader", PREHEADER_MAX_CHARS, empty_ok=True)
    if not fields:
        raise EditRefused("give a subject, --preheader, or --reset")
    with editing_draft(db, ref, version) as issue:
        update_issue(db, issue["id"], **fields)
        what = "subject and preheader are the template's" if reset else "subject set"
        if not reset and subject is None:
            what = "preheader set"
        detail = "; ".join(f"{k.removesuffix('_set')}: {v}" for k, v in fields.items() if v is not None)
        return content_changed(
            db, config, issue, editor, "subject", f"{issue_name(issue)}: {what}", detail=detail or "reset"
        )


def _header_text(value: str, what: str, limit: int, *, empty_ok: bool) -> str:
    """A subject or preheader as one line of text (no line break can reach a header)."""
    text = one_line("".join(ch for ch in value if ch.isprintable() or ch.isspace()))
    if not text and not empty_ok:
        raise EditRefused(f"the {what} is empty; give one, or --reset to use the template's")
    if len(text) > limit:
        raise EditRefused(f"the {what} is {len(text)} characters; keep it to {limit}")
    return text


def set_note(
    db: sqlite_utils.Database,
    config: Config,
    ref: str | int,
    text: str,
    editor: str,
    *,
    version: int | None = None,
) -> EditResult:
    """Set (or, with empty ``text``, clear) the editor's note at the top of the draft."""
    note = clean_note(text)
    with editing_draft(db, ref, version) as issue:
        update_issue(db, issue["id"], note=note)
        message = f"{issue_name(issue)}: " + (
            f"note set ({len(note)} characters)" if note else "note removed"
        )
        return content_changed(db, config, issue, editor, "note", message, detail=note[:80])


def rebuild_issue(
    db: sqlite_utils.Database, config: Config, ref: str | int, editor: str, *, version: int | None = None
) -> EditResult:
    """Select the draft's stories from its window again, keeping every editor's choice
    (drops, adds, lead, order, subject, note); refused while it is locked."""
    warnings = summarize_window(db, config, get_issue(db, ref))
    with editing_draft(db, ref, version) as issue:
        if issue["locked_at"]:
            raise EditRefused(
                f"{issue_name(issue)} is locked; `digest issues unlock {issue_name(issue)}` first"
            )
        change = reselect(db, config, issue)
        update_issue(db, issue["id"], built_at=iso(utcnow()))
        message = f"Rebuilt {issue_name(issue)}: {change.summary()}" + "".join(f"; {w}" for w in warnings)
        return content_changed(db, config, issue, editor, "rebuild", message, detail=change.summary())


def discard_issue(
    db: sqlite_utils.Database, config: Config, ref: str | int, editor: str, *, version: int | None = None
) -> EditResult:
    """Throw a draft away: it is no longer listed as due, overdue or ``latest``, a scheduled
    run builds no new one for its period, and its number goes to the next issue of the
    edition (later drafts move down one). Returns the row as it was."""
    with editing_draft(db, ref, version) as issue:
        record_change(db, editor, "discard", issue=issue, detail=issue["subject"])
        delete_draft(db, issue["id"])
        number = issue["number"]
        for later in later_drafts(db, issue["edition"], number):
            if number_taken(db, issue["edition"], later["number"] - 1):
                break
            update_issue(db, later["id"], number=later["number"] - 1)
            record_change(
                db, editor, "renumber", issue=later, detail=f"now {later['edition']}/{later['number'] - 1}"
            )
            refresh_issue(db, config, later["id"])
        return EditResult(issue, f"Discarded {issue_name(issue)}; its number goes to the next issue")
