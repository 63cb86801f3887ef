"""The public side: ``/issues/<id>`` (view in browser), ``/archive`` and ``/feed.atom``."""

from __future__ import annotations

import sqlite_utils
from flask import Flask, Response, request, url_for

from digest.brand import accent_colors
from digest.compose.issues import get_issue
from digest.errors import DigestError, NotFound
from digest.render.archive import (
    Links,
    archive_page,
    check_issue_test_token,
    feed_xml,
    issue_nav_html,
    with_nav,
)
from digest.render.personalise import RECIPIENT_FIELDS, config_greeting, personalise
from digest.render.public import feed_content, public_page
from digest.render.variants import NothingFits, current_variant
from digest.store.database import MAX_ID
from digest.web.common import WebState, get_db, message, page, state

PUBLIC_STATUSES = ("sending", "sent")
# An issue is email HTML: inline styles and a <style> block, remote images allowed, still no
# scripts; its one form is the sign-up form, posting here.
ISSUE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def register(app: Flask) -> None:
    """Add the archive routes to ``app``."""
    # max: SQLite's largest row id (2**63 - 1); a larger id is a 404, not an overflow.
    app.add_url_rule(f"/issues/<int(max={MAX_ID}):issue_id>", "issue", issue)
    app.add_url_rule(f"/issues/<int(max={MAX_ID}):issue_id>/test/<token>", "issue_test", issue_test)
    app.add_url_rule("/archive", "archive", archive)
    app.add_url_rule("/feed.atom", "feed", feed)


def web_links(*, absolute: bool = False) -> Links:
    """Links for pages served by the app (absolute ones, from ``publication.base_url``, for the feed)."""
    base = state().base_url if absolute else ""
    return Links(
        archive=lambda n: base + (url_for("archive") if n == 1 else url_for("archive", page=n)),
        issue=lambda i: base + url_for("issue", issue_id=i),
        feed=lambda: base + url_for("feed"),
        stylesheet=lambda: base + url_for("stylesheet"),
        subscribe=lambda: base + url_for("subscribe"),
        asset=lambda path: base + url_for("index").rstrip("/") + path,
    )


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
    return _issue_response(db, issue_id, public=True)


def issue_test(issue_id: int, token: str) -> Response | tuple[str, int]:
    """A test send's web version: any issue, draft included, for a holder of its signed test link."""
    db = get_db()
    try:
        get_issue(db, issue_id)
    except NotFound:
        return message("Issue not found", "There is no published issue at this address.", 404)
    if not check_issue_test_token(state().secret, issue_id, token):
        return message("Issue not found", "There is no published issue at this address.", 404)
    return _issue_response(db, issue_id, public=False)


def _issue_response(db: sqlite_utils.Database, issue_id: int, *, public: bool) -> Response:
    page_html = issue_html(db, state(), issue_id, published=public)
    if public:  # a test send's page stays the email as the editor will send it
        page_html = public_page(page_html, state().config, url_for("subscribe"))
    render = state().config.render
    accent = accent_colors(render.accent_color, render.accent_color_dark)
    html = with_nav(page_html, issue_nav_html(db, issue_id, web_links(), state().config, accent))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = ISSUE_CSP
    if public:
        response.headers["Cache-Control"] = "public, max-age=300"
    else:
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def archive() -> tuple[str, int]:
    """The sent issues, newest first, per edition, a page at a time (``?page=N``)."""
    web = state()
    number = request.args.get("page", "1")
    try:
        data = archive_page(get_db(), web.config, int(number) if number.isdigit() else 0)
    except DigestError:
        return message("Page not found", "There is no archive page with that number.", 404)
    return page("archive.html", archive=data, links=web_links())


def feed() -> Response:
    """The Atom feed of sent issues (titles, dates, links, categories and each issue's HTML,
    sanitised; nothing personal)."""
    links = web_links(absolute=True)
    db, web = get_db(), state()
    xml = feed_xml(
        db, web.config, links, lambda i: web.feed_content(i, lambda: feed_content(issue_html(db, web, i)))
    )
    response = Response(xml, mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


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


def issue_html(db: sqlite_utils.Database, state: WebState, issue_id: int, *, published: bool = True) -> str:
    """The issue's all-categories HTML with neutral reader fields.

    This is the "web version" that a trimmed email points to for the articles it
    left out, so when the frozen email rendering was trimmed to fit the size budget
    the issue is rendered again without that budget (from the same frozen snapshot;
    cached when ``published``, as a published issue never changes; a draft shown through
    its test link is rendered afresh each time).
    """
    # Never stored_variant: a page view must not freeze a rendering (the bytes a later send
    # would use) nor write to the database.
    try:
        rendered = current_variant(db, state.config, issue_id, "*")
    except NothingFits:  # no email can carry it: the web version still can
        rendered = state.full_rendering(db, issue_id, published=published)
    if rendered.trimmed:
        rendered = state.full_rendering(db, issue_id, published=published)
    fields = neutral_fields(state.base_url)
    values = {f: fields.get(f, "") for f in RECIPIENT_FIELDS}
    return personalise(rendered.html, values, html=True, greeting_pair=config_greeting(state.config))
