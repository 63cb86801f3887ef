"""``/desk/stats``: the figures of ``digest stats --html`` for signed-in editors.

The same self-contained page (SVG charts drawn on our side, no script, nothing fetched),
with a link back to the desk; a 404 for anyone not signed in, like every desk page. Its
styles sit inline in the page, so it carries its own policy: inline styles, nothing else.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from digest.compose.issues import get_issue
from digest.stats.figures import issue_figures, list_figures, recent_issues
from digest.stats.page import stats_page
from digest.store.database import utcnow
from digest.web.common import get_db, state
from digest.web.desk.session import require_editor

STATS_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
DEFAULT_DAYS, MAX_DAYS = 30, 366


def register(desk: Blueprint) -> None:
    """Add ``/desk/stats`` to the desk's blueprint."""
    desk.add_url_rule("/stats", "stats", stats)


def stats() -> Response:
    """The last ``?days=`` (30) days: the list, each issue's rates and clicks."""
    require_editor()
    days = request.args.get("days", type=int) or DEFAULT_DAYS
    days = max(1, min(days, MAX_DAYS))
    db, now = get_db(), utcnow()
    issues = [issue_figures(db, get_issue(db, row["id"])) for row in recent_issues(db, days, now)]
    text = stats_page(
        state().config.publication.name, issues, list_figures(db, days, now), back=url_for("desk.home")
    )
    response = Response(text, mimetype="text/html")
    response.headers["Content-Security-Policy"] = STATS_CSP
    return response
