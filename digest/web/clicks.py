"""``/r/<issue>/<link>``: a counted story link, answered with a redirect to the story.

The link is signed (:mod:`digest.render.click_links`) and names a story of the issue,
never an address: the redirect goes to the article's URL in the issue's frozen snapshot,
so a forged or altered link is refused and the route cannot send anyone elsewhere. The
request's address and agent are used only in memory (:mod:`digest.stats.counter`); the
canary link marks its client as a scanner and answers with the issue's web version.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, Response, current_app, redirect, request

from digest.compose.issues import get_issue, issue_snapshot
from digest.errors import DigestError
from digest.render.click_links import CANARY, checked_link
from digest.stats.counter import SCANNER_SECONDS, ClickCounter, client_key, is_scanner_agent
from digest.store.database import from_iso
from digest.web.common import get_db, message, state
from digest.web.signup import client_address

ISSUE_SECONDS = 10  # how long a worker keeps an issue's links and delivery times


def register(app: Flask) -> None:
    """Add the counted-link route; its counter lives with the app."""
    config = app.extensions["digest"].config
    app.extensions["digest_clicks"] = ClickCounter(config.store, config.web.click_hold_seconds)
    app.extensions["digest_click_issues"] = _IssueCache()
    app.add_url_rule("/r/<int:issue_id>/<link>", "click", click, methods=["GET", "HEAD"])


class _IssueCache:
    """Per issue: its story URLs and its delivery window, read again after ISSUE_SECONDS."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, issue_id: int) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(issue_id)
        if kept is not None and now - kept[0] < ISSUE_SECONDS:
            return kept[1]
        info = _issue_info(issue_id)
        with self._lock:
            if len(self._kept) > 256:
                self._kept.clear()
            self._kept[issue_id] = (now, info) if info is not None else (now, {})
        return info


def _issue_info(issue_id: int) -> dict[str, Any] | None:
    try:
        issue = get_issue(get_db(), issue_id)
        snapshot = issue_snapshot(issue)
    except DigestError:
        return None
    urls = {
        str(article["id"]): str(article.get("url") or "")
        for section in snapshot.get("categories", [])
        for article in section.get("articles", [])
    }
    started = issue.get("frozen_at") or issue.get("sent_at")
    return {
        "urls": urls,
        "started": from_iso(started).timestamp() if started else None,
        "ended": from_iso(issue["sent_at"]).timestamp() if issue.get("sent_at") else None,
    }


def click(issue_id: int, link: str) -> Response | tuple[str, int]:
    """Count a click on a story (or the canary) and redirect to it."""
    name = checked_link(state().secret, issue_id, link)
    info = current_app.extensions["digest_click_issues"].get(issue_id) if name else None
    if not info or (name != CANARY and not info["urls"].get(name)):
        return message("Link not recognised", "This link is not one of ours, or it was changed.", 404)
    counter: ClickCounter = current_app.extensions["digest_clicks"]
    agent = request.headers.get("User-Agent", "")
    if name == CANARY:
        counter.canary(get_db(), issue_id, name, client_key(client_address(), agent))
        return redirect(f"/issues/{issue_id}", 302)
    if request.method == "HEAD" or (is_scanner_agent(agent) and _delivering(info)):
        counter.scanned(issue_id, name)
    else:
        counter.click(issue_id, name, client_key(client_address(), agent))
    response = redirect(info["urls"][name], 302)
    response.headers["Cache-Control"] = "no-store"
    return response


def _delivering(info: dict[str, Any]) -> bool:
    """Whether the issue is being delivered, or was within the last SCANNER_SECONDS."""
    now = time.time()
    started, ended = info["started"], info["ended"]
    if started is None or now < started:
        return False
    return ended is None or now <= ended + SCANNER_SECONDS
