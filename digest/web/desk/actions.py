"""The POSTs of an issue's page: ``/desk/issues/<edition>/<number>/<action>``.

Each checks the session and its CSRF token (:func:`~digest.web.desk.session.check_form`),
then calls one function of :mod:`digest.compose.editing` — the code path the CLI uses — with
the issue's version the form was loaded with, so a form older than the last change is refused
("this issue changed; reload") instead of being applied on top. The answer is a redirect back
to the page (POST, then redirect: a reload does not post again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, request

from digest.compose import editing
from digest.compose.issues import issue_snapshot
from digest.delivery.trial import test_send
from digest.errors import DigestError
from digest.store.database import MAX_ID
from digest.web.common import get_db, state
from digest.web.desk.pages import find_issue, issue_stories
from digest.web.desk.session import check_form

STALE = "this issue changed; reload"
MAX_FIELD = 5000

Action = Callable[[dict[str, Any], dict[str, Any], int], str]
"""(issue row, editor, version the form was loaded with) → what the page says it did."""


def register(desk: Blueprint) -> None:
    """Add the issue actions to the desk's blueprint."""
    rule = f"/issues/<edition>/<int(max={MAX_ID}):number>/<action>"
    desk.add_url_rule(rule, "act", act, methods=["POST"])


def act(edition: str, number: int, action: str) -> Response:
    """Apply one action and go back to the issue's page, saying what happened."""
    who = check_form()
    handler = ACTIONS.get(action)
    if handler is None:
        abort(404)
    row = find_issue(edition, number)
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = -1
    try:
        done = handler(row, who, version)
    except DigestError as exc:
        return _back(edition, number, error=str(exc))
    if action == "discard":
        return redirect("/desk?" + urlencode({"done": done}), code=303)
    return _back(edition, number, done=done)


def _back(edition: str, number: int, **query: str) -> Response:
    return redirect(f"/desk/issues/{edition}/{number}?{urlencode(query)}", code=303)


def field(name: str) -> str:
    """A text field of the form, cut at :data:`MAX_FIELD` characters."""
    return (request.form.get(name) or "")[:MAX_FIELD]


def article_id() -> int:
    """The form's article id (a DigestError when missing or not a number)."""
    text = request.form.get("article", "")
    if not text.isdigit():
        raise DigestError("no story was named; reload the page")
    return int(text)


def _ref(row: dict[str, Any]) -> str:
    return f"{row['edition']}/{row['number']}"


def _drop(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    return editing.drop_stories(*_db(), _ref(row), [article_id()], who["email"], version=version).message


def _restore(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    return editing.restore_stories(*_db(), _ref(row), [article_id()], who["email"], version=version).message


def _lead(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    return editing.set_lead(*_db(), _ref(row), article_id(), who["email"], version=version).message


def _step(offset: int) -> Action:
    """**Up** (-1) or **Down** (+1): one place within the story's section."""

    def move(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
        story = article_id()
        place = _place_in_section(row, story)
        return editing.move_story(
            *_db(), _ref(row), story, place + offset, who["email"], version=version
        ).message

    return move


def _place_in_section(row: dict[str, Any], story: int) -> int:
    """The story's 1-based place in its section, as the page showed it."""
    for section in issue_snapshot(row).get("categories", []):
        ids = [a["id"] for a in section["articles"]]
        if story in ids:
            return ids.index(story) + 1
    raise DigestError(f"article {story} is not a story of {_ref(row)}; reload the page")


def _edit(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    """**Edit**: the story's title, summary and category (only the fields that changed)."""
    story = article_id()
    if int(row["version"]) != version:
        raise DigestError(STALE)
    # Compare with what the form was filled with (the page's story: the model's summary, none
    # for a dropped one), not the article's stored text, or those would become the editor's.
    shown = next((s for s in issue_stories(row) if s["id"] == story), None)
    if shown is None:
        view = editing.article_view(get_db(), story)
        shown = {"title": view["title"], "summary": view["summary_text"], "category": view["category"]}
    values = {name: field(name) for name in ("title", "summary", "category") if name in request.form}
    changed = {k: v for k, v in values.items() if v.strip() != str(shown.get(k) or "").strip()}
    if not changed:
        return "nothing changed"
    editing.edit_article(*_db(), story, changed, who["email"])
    return f"article {story}: {', '.join(changed)} changed"


def _fields(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    """The subject, preheader and editor's note: each one that changed, in turn (an emptied
    subject goes back to the template's subject and preheader)."""
    done = []
    subject, preheader, note = field("subject").strip(), field("preheader").strip(), field("note").strip()
    changed: dict[str, Any] = {}
    if subject != (row["subject"] or ""):
        changed = {"reset": True} if not subject else {"subject": subject}
    if preheader != (row["preheader"] or "") and "reset" not in changed:
        changed["preheader"] = preheader
    if changed:
        result = editing.set_subject(*_db(), _ref(row), who["email"], version=version, **changed)
        done.append(result.message)
        version = int(result.issue["version"])
    if note != (row.get("note") or ""):
        done.append(editing.set_note(*_db(), _ref(row), note, who["email"], version=version).message)
    return "; ".join(done) or "nothing changed"


def _regenerate(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    """**Regenerate summary** (engine ``llm``): the model is asked again for this story; the
    drafts carrying it are remade (an editor's own summary gives way to the model's)."""
    story = article_id()
    if int(row["version"]) != version:
        raise DigestError(STALE)
    done = editing.regenerate_summary(*_db(), story, who["email"])
    if done.get("warnings"):
        raise DigestError(done["warnings"][0])
    return f"article {story}: a new summary from {state().config.summary.model}"


def _approve(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    return editing.approve_issue(*_db(), _ref(row), who["email"], version=version).message


def _unapprove(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    return editing.unapprove_issue(*_db(), _ref(row), who["email"], version=version).message


def _discard(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    return editing.discard_issue(*_db(), _ref(row), who["email"], version=version).message


def _test(row: dict[str, Any], who: dict[str, Any], version: int) -> str:
    """**Send me a test**: the "[TEST]" copy `digest send --to` sends, to the signed-in editor."""
    db, config = _db()
    report = test_send(db, config, row, [who["email"]], config.delivery.transport)
    if report.failed:
        raise DigestError(f"the test to {who['email']} was refused: {report.plan[0]['reply']}")
    return f"a test of {_ref(row)} went to {who['email']}"


def _db() -> tuple[Any, Any]:
    return get_db(), state().config


ACTIONS: dict[str, Action] = {
    "drop": _drop,
    "restore": _restore,
    "up": _step(-1),
    "down": _step(+1),
    "lead": _lead,
    "edit": _edit,
    "fields": _fields,
    "regenerate": _regenerate,
    "approve": _approve,
    "unapprove": _unapprove,
    "discard": _discard,
    "test": _test,
}
