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

from digest.errors import DigestError
from digest.web.common import get_db, state
from digest.web.desk.pages import find_issue
from digest.web.desk.session import check_form

STALE = "this issue changed; reload"
MAX_FIELD = 5000

Action = Callable[[dict[str, Any], dict[str, Any], int], str]
"""(issue row, editor, version the form was loaded with) → what the page says it did."""


def register(desk: Blueprint) -> None:
    """Add the issue actions to the desk's blueprint."""
    desk.add_url_rule("/issues/<edition>/<int:number>/<action>", "act", act, methods=["POST"])


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


def _web() -> tuple[Any, Any]:
    web = state()
    return get_db(), web.config


ACTIONS: dict[str, Action] = {}
