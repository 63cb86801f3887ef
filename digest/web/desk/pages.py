"""The desk's pages: ``/desk`` (the issues) and ``/desk/issues/<edition>/<number>`` (one issue:
its email as readers will see it, its stories and every action), and the email itself at
``/desk/issues/<edition>/<number>/email`` for the page's frames.

Every page answers 404 to anyone not signed in, except an issue's page opened from the
review link that ``digest run`` mails (a valid ``review`` token in the query): that leads
to the sign-in form, which comes back to the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, request

from digest.compose.editing import dropped_stories, issue_state, issues_with_states
from digest.compose.issues import get_issue, issue_snapshot
from digest.compose.review_links import verify_review_token
from digest.errors import NotFound
from digest.store.database import MAX_ID
from digest.web.archive import issue_html
from digest.web.common import get_db, page, state
from digest.web.desk.session import csrf, editor, require_editor
from subscribers.tokens import InvalidToken

RECENT_SENT = 10
# The email in the page's frame: its own inline styles, remote images, no script, no forms;
# framed by the desk only.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
SCHEMES = ("light", "dark")


def register(desk: Blueprint) -> None:
    """Add the desk's pages to its blueprint."""
    desk.add_url_rule("", "home", home)
    desk.add_url_rule(f"/issues/<edition>/<int(max={MAX_ID}):number>", "issue", issue_page)
    desk.add_url_rule(f"/issues/<edition>/<int(max={MAX_ID}):number>/email", "email", email)


def home() -> tuple[str, int]:
    """The drafts and upcoming issues with their state, then the last sent ones."""
    who = require_editor()
    rows = issues_with_states(get_db(), state().config)
    open_rows = [r for r in rows if r["status"] in ("draft", "sending")]
    sent = [r for r in rows if r["status"] == "sent"][:RECENT_SENT]
    return page("desk/home.html", title="The desk", editor=who, csrf=csrf(), open_issues=open_rows, sent=sent)


def find_issue(edition: str, number: int) -> dict[str, Any]:
    """The issue ``edition/number`` (a 404 when there is none)."""
    try:
        return get_issue(get_db(), f"{edition}/{number}")
    except NotFound:
        abort(404)


def issue_page(edition: str, number: int) -> Response | tuple[str, int]:
    """One issue: the email at phone and desktop widths (light or dark), the fields, every story."""
    who = editor()
    if who is None:
        return _signin_for_review(edition, number)
    row = find_issue(edition, number)
    scheme = request.args.get("scheme", "light")
    return page(
        "desk/issue.html",
        title=f"{edition}/{number}",
        editor=who,
        csrf=csrf(),
        issue=row,
        stories=issue_stories(row),
        state_name=issue_state(state().config, row),
        approved=bool(row.get("approved_at")),
        note=row.get("note") or "",
        error=request.args.get("error", "")[:300],
        scheme=scheme if scheme in SCHEMES else "light",
        llm=state().config.summary.engine == "llm",
        notice=request.args.get("done", "")[:100],
    )


def _signin_for_review(edition: str, number: int) -> Response:
    """The review link without a session: the sign-in form (the address filled in), which
    comes back here; anything but a valid review token for this issue is a 404."""
    address = review_address(edition, number, request.args.get("review", ""))
    if address is None:
        abort(404)
    query = urlencode({"next": f"/desk/issues/{edition}/{number}", "email": address})
    return redirect(f"/desk/signin?{query}", code=303)


def review_address(edition: str, number: int, token: str) -> str | None:
    """The editor a review token names, when it is valid, for this issue, and the address is
    still one of ``[publication] editors``; else None."""
    if not token:
        return None
    try:
        issue_id, address = verify_review_token(state().secret, token)
    except InvalidToken:
        return None
    try:
        row = get_issue(get_db(), f"{edition}/{number}")
    except NotFound:
        return None
    editors = {e.strip().lower() for e in state().config.publication.editors}
    return address if row["id"] == issue_id and address.lower() in editors else None


def issue_stories(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's stories as the page lists them: the lead, then the cards in the email's
    order, then the dropped ones (which the snapshot leaves out), with the editor's values."""
    snapshot = issue_snapshot(row)
    cards = [
        {**a, "dropped": False, "lead": bool(a.get("lead"))}
        for c in snapshot.get("categories", [])
        for a in c["articles"]
    ]
    dropped = [
        {**a, "summary": "", "dropped": True, "lead": False} for a in dropped_stories(get_db(), row["id"])
    ]
    cards.sort(key=lambda card: not card["lead"])  # stable: the rest keep their order
    return cards + dropped


def email(edition: str, number: int) -> Response:
    """The issue's email as readers will see it (all categories, neutral reader fields)."""
    require_editor()
    row = find_issue(edition, number)
    html = issue_html(get_db(), state(), row["id"], published=False)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
