"""The public side: ``/issues/<id>`` (view in browser), ``/archive`` and ``/feed.atom``."""

from __future__ import annotations

import zoneinfo
from typing import Any

import sqlite_utils
from flask import Flask, Response

from digest.compose import get_issue
from digest.config import Config
from digest.errors import NotFound
from digest.render import RECIPIENT_FIELDS, current_variant, personalise
from digest.store import from_iso
from digest.web.app import WebState, get_db, message, page, state

PUBLIC_STATUSES = ("sending", "sent")
# An issue is email HTML: inline styles and a <style> block, remote images allowed, still no scripts.
ISSUE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def register(app: Flask) -> None:
    """Add the archive routes to ``app``."""
    app.add_url_rule("/issues/<int:issue_id>", "issue", issue)
    app.add_url_rule("/archive", "archive", archive)


def issue(issue_id: int) -> Response | tuple[str, int]:
    """View in browser: the issue's HTML for all categories, with neutral reader fields."""
    db = get_db()
    try:
        row = get_issue(db, issue_id)
    except NotFound:
        row = None
    if row is None or row.get("status") not in PUBLIC_STATUSES:
        # Drafts are not public: same answer as a missing issue, so ids reveal nothing.
        return message("Issue not found", "There is no published issue at this address.", 404)
    response = Response(issue_html(db, state(), issue_id), mimetype="text/html")
    response.headers["Content-Security-Policy"] = ISSUE_CSP
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def archive() -> tuple[str, int]:
    """The list of sent issues, per edition, newest first."""
    web = state()
    return page("archive.html", editions=archive_listing(get_db(), web.config))


def neutral_fields(base_url: str) -> dict[str, str]:
    """Values for the per-reader placeholders when an issue is shown on the web.

    The personal links become pages that explain where to find your own link; the
    greeting uses the renderer's fallback name.
    """
    return {
        "name": "",
        "email": "you",
        "unsubscribe_url": f"{base_url}/unsubscribe",
        "preferences_url": f"{base_url}/preferences",
    }


def issue_html(db: sqlite_utils.Database, state: WebState, issue_id: int) -> str:
    """The published issue's all-categories HTML with neutral reader fields.

    This is the "web version" that a trimmed email points to for the articles it
    left out, so when the frozen email rendering was trimmed to fit the size budget
    the issue is rendered again without that budget (from the same frozen snapshot;
    cached, as a published issue never changes).
    """
    # Never stored_variant: a page view must not freeze a rendering (the bytes a later send
    # would use) nor write to the database.
    rendered = current_variant(db, state.config, issue_id, "*")
    if rendered.trimmed:
        rendered = state.full_rendering(db, issue_id)
    fields = neutral_fields(state.base_url)
    return personalise(rendered.html, {f: fields.get(f, "") for f in RECIPIENT_FIELDS}, html=True)


def archive_listing(db: sqlite_utils.Database, config: Config) -> list[dict[str, Any]]:
    """Sent issues grouped by edition (configured order first), newest first, with local dates."""
    rows = db.execute(
        "SELECT id, edition, number, subject, period_end, sent_at FROM issues "
        "WHERE status = 'sent' ORDER BY edition, number DESC"
    ).fetchall()
    groups: dict[str, dict[str, Any]] = {}
    for key, edition in config.editions.items():
        groups[key] = {"key": key, "title": edition.title or key, "issues": []}
    for issue_id, edition_key, number, subject, period_end, sent_at in rows:
        group = groups.setdefault(edition_key, {"key": edition_key, "title": edition_key, "issues": []})
        edition = config.editions.get(edition_key)
        zone = edition.zone if edition else zoneinfo.ZoneInfo(config.publication.timezone)
        when = from_iso(sent_at or period_end).astimezone(zone)
        group["issues"].append(
            {
                "id": issue_id,
                "number": number,
                "subject": subject,
                "date": when.date().isoformat(),
            }
        )
    return [group for group in groups.values() if group["issues"]]
