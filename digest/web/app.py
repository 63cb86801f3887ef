"""The small web app behind the links every email carries: the app factory and its plumbing.

Routes, by area: :mod:`digest.web.links` (``/confirm``, ``/unsubscribe`` with RFC 8058
one-click, ``/preferences``), :mod:`digest.web.signup` (``/subscribe``), and
:mod:`digest.web.archive` (``/issues/<id>``, ``/archive``, ``/feed.atom``); here
``/healthz`` and ``/style.css``. :mod:`digest.web.server` runs it under gunicorn.

Design notes:

- Nothing changes on GET. Mail scanners and link previewers fetch every URL in
  a message; a GET that unsubscribed (or confirmed) would act without the reader.
- No cookies and no sessions. The authority for a change is the signed,
  purpose-bound token in the URL, which a cross-site page cannot know, so a
  forged cross-site POST has nothing to ride on (no CSRF token needed), and a
  one-click POST from a mail provider works without any state. The sign-up form
  needs no token either: a post from another site is an embedded form, and all
  it can do is ask for a confirmation email.
- Every status or preference change goes through ``subscribers.store`` with
  source ``"web"``, so it lands in the ``events`` consent record.
- One database connection per request (SQLite connections are not shared
  across threads); the schema is migrated once, when the app is created.
- No redirect is built from the request's ``Host``: merging slashes (which
  werkzeug answers with an absolute 308) is off, and our own redirects are relative.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlite_utils
from flask import Flask, Response, current_app, g, redirect, render_template, request, url_for
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from digest.config import Config
from digest.errors import NotFound
from digest.render.templating import template_dirs
from digest.render.variants import RenderedVariant, render_issue
from digest.store.database import open_store
from digest.web.logs import is_token_path, redact_path
from subscribers.model import available_zones
from subscribers.store import get_subscriber
from subscribers.tokens import InvalidToken, load_secret, verify_token

log = logging.getLogger(__name__)

SOURCE = "web"
MAX_REQUEST_BYTES = 64 * 1024
UNLIMITED_BYTES = 1 << 40
FULL_RENDERINGS_KEPT = 16

# Pages are self-contained: one stylesheet from this origin, no scripts, no frames.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def web_template_dirs(config: Config) -> list[Path]:
    """Folders searched for web templates, first match wins: ``web/`` inside the configured
    override folder (``[render] templates``), then the bundled ``templates/web`` (inside the
    package when installed from a wheel, else the top-level folder of the source tree)."""
    return [d / "web" for d in template_dirs(config) if (d / "web").is_dir()]


# The areas of the IANA tz database's geographic zone names (Area/Location).
GEOGRAPHIC_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)


@dataclass
class WebState:
    """What every request needs: the configuration, the signing secret, a small rendering cache."""

    config: Config
    secret: bytes
    _full: OrderedDict[int, RenderedVariant] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        """The public address, without a trailing slash."""
        return self.config.publication.base_url.rstrip("/")

    def full_rendering(
        self, db: sqlite_utils.Database, issue_id: int, *, published: bool = True
    ) -> RenderedVariant:
        """The untrimmed all-categories rendering of an issue; a few of the published ones are
        kept in memory (a published issue never changes; a draft's note still can)."""
        with self._lock:
            if published and issue_id in self._full:
                self._full.move_to_end(issue_id)
                return self._full[issue_id]
        unlimited = replace(self.config, render=replace(self.config.render, max_html_bytes=UNLIMITED_BYTES))
        rendered = render_issue(db, unlimited, issue_id, "*")
        if not published:
            return rendered
        with self._lock:
            self._full[issue_id] = rendered
            while len(self._full) > FULL_RENDERINGS_KEPT:
                self._full.popitem(last=False)
        return rendered

    @cached_property
    def timezones(self) -> list[str]:
        """The zones a reader can pick, sorted (read once: it scans tzdata): the IANA
        ``Area/Location`` zones of the geographic areas, plus UTC. Links kept for old
        names (``US/Eastern``, ``Japan``), POSIX-style rules (``EST5EDT``), ``Etc/*``
        and tzdata's leftovers (``Factory``, ``localtime``, ``posixrules``) are left out."""
        return [zone for zone in available_zones() if zone == "UTC" or zone.split("/")[0] in GEOGRAPHIC_AREAS]


def create_app(config: Config) -> Flask:
    """Build the Flask app serving the links in every email.

    The database is migrated once here; each request then opens its own
    connection to ``config.db_path`` and closes it when the request ends.
    """
    open_store(config.db_path).conn.close()
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        MAX_FORM_PARTS=200,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    # werkzeug would answer "//x" with a 308 to an absolute URL built from the Host header.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    loaders: list[BaseLoader] = [FileSystemLoader(str(d)) for d in web_template_dirs(config)]
    app.jinja_loader = ChoiceLoader(loaders)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.extensions["digest"] = WebState(config=config, secret=load_secret(config))

    @app.context_processor
    def _publication() -> dict[str, Any]:
        return {"publication": config.publication}

    app.before_request(_limit_streamed_body)
    app.teardown_appcontext(_close_db)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    _routes(app)
    return app


# ---------------------------------------------------------------- plumbing


def state() -> WebState:
    return current_app.extensions["digest"]


def get_db() -> sqlite_utils.Database:
    """This request's database connection (opened on first use)."""
    if "db" not in g:
        g.db = open_store(state().config.db_path, migrate=False)
    return g.db


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def _limit_streamed_body() -> None:
    """Read a body without Content-Length (chunked) now, so one past the limit is a 413.

    The server hands a chunked body over as a stream; werkzeug caps what it reads at
    ``MAX_CONTENT_LENGTH`` but would otherwise parse the first 64 KB as if that were all.
    """
    streamed = request.content_length is None and request.method in ("POST", "PUT", "PATCH")
    if streamed and len(request.get_data(cache=True)) >= MAX_REQUEST_BYTES:
        raise RequestEntityTooLarge()


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    # Tokens sit in the path: never send them on to another site.
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "interest-cohort=(), browsing-topics=()")
    if is_token_path(request.path):
        # Personal pages: not cached by browsers or proxies, not indexed.
        headers["Cache-Control"] = "no-store"
        headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def message(title: str, text: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return page("message.html", status, title=title, text=text, **context)


def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
    code = exc.code or 500
    if code == 404:
        return message("Page not found", "There is nothing at this address.", 404)
    if code == 405:
        response = exc.get_response()
        body, _ = message("Not allowed", "This address does not accept that kind of request.", 405)
        response.set_data(body)
        response.mimetype = "text/html"
        return response
    if code == 413:
        return message("Request too large", "That request was larger than this site accepts.", 413)
    return message(exc.name or "Error", "The request could not be handled.", code)


def _unexpected_error(exc: Exception) -> tuple[str, int]:
    log.exception("error while handling %s %s", request.method, redact_path(request.path))
    return message(
        "Something went wrong", "Please try again in a moment. Nothing was changed by this error.", 500
    )


def bad_link(purpose: str, reason: str) -> tuple[str, int]:
    hints = {
        "confirm": "Confirmation links expire after a week: sign up again to get a new one.",
        "unsubscribe": "Use the unsubscribe link from a recent email, unchanged.",
        "preferences": "Use the preferences link from a recent email, unchanged.",
    }
    return message("This link does not work", f"{reason[:1].upper()}{reason[1:]}. {hints[purpose]}", 400)


class BadLink(Exception):
    """A token that does not verify (``removed`` False), or names a subscriber since removed."""

    def __init__(self, reason: str, *, removed: bool = False) -> None:
        super().__init__(reason)
        self.removed = removed


def subscriber_for(token: str, purpose: str) -> dict[str, Any]:
    """The subscriber a token names; raises :class:`BadLink` with a reason a reader can act on."""
    try:
        subscriber_id = verify_token(state().secret, token, purpose)
    except InvalidToken as exc:
        raise BadLink(str(exc).rstrip(".")) from None
    try:
        return get_subscriber(get_db(), subscriber_id)
    except NotFound:
        raise BadLink("this address is no longer on the list", removed=True) from None


# ---------------------------------------------------------------- routes


def _routes(app: Flask) -> None:
    from digest.web import archive, links, signup

    app.add_url_rule("/", "index", lambda: redirect(url_for("archive")))
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/style.css", "stylesheet", stylesheet)
    links.register(app)
    signup.register(app)
    archive.register(app)


def healthz() -> Response:
    """Liveness and database check for a load balancer or monitor."""
    get_db().execute("SELECT 1").fetchone()
    return Response("ok\n", mimetype="text/plain")


def stylesheet_text(config: Config) -> str | None:
    """The first ``style.css`` in the web template folders (None when there is none)."""
    for folder in web_template_dirs(config):
        path = folder / "style.css"
        if path.is_file():
            return path.read_text("utf-8")
    return None


def stylesheet() -> Response:
    """The one stylesheet every page uses (served from here: no external assets)."""
    text = stylesheet_text(state().config)
    if text is None:
        return Response("", mimetype="text/css")
    response = Response(text, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
