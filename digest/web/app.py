"""The small web app behind the links every email carries: the app factory and its plumbing.

Routes, by area: :mod:`digest.web.links` (``/confirm``, ``/unsubscribe`` with RFC 8058
one-click, ``/preferences``), :mod:`digest.web.signup` (``/subscribe``), and
:mod:`digest.web.archive` (``/issues/<id>``, ``/archive``, ``/feed.atom``); here
``/healthz`` and ``/style.css``; :mod:`digest.web.desk` the editors' desk under ``/desk``
(signed-in editors only: its own session cookie and CSRF tokens);
:mod:`digest.web.clicks` (``/r/<issue>/<link>``, counted story links).
:mod:`digest.web.server` runs it under gunicorn.

Design notes:

- Nothing changes on GET. Mail scanners and link previewers fetch every URL in
  a message; a GET that unsubscribed (or confirmed) would act without the reader.
- No cookies and no sessions for readers (the desk's editors have both, under ``/desk``
  only: see :mod:`digest.web.desk`). The authority for a change is the signed,
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
from typing import Any

from flask import Flask, Response, current_app, g, redirect, request, url_for
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from digest.config import Config
from digest.i18n import direction, translations
from digest.store.database import open_store, ping
from digest.web import archive, assets, clicks, desk, links, signup
from digest.web.common import (
    WebState,
    get_db,
    message,
    page_brand,
    state,
    stylesheet_text,
    web_template_dirs,
)
from digest.web.logs import is_token_path, redact_path
from subscribers.tokens import load_secret

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024

# Pages are self-contained: one stylesheet from this origin, no scripts, no frames.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def create_app(config: Config) -> Flask:
    """Build the Flask app serving the links in every email.

    The database is migrated once here; each request then takes a connection to
    ``config.store`` (:class:`~digest.web.common.Connections`: opened per request on SQLite,
    taken from the worker's pool on PostgreSQL, kept open between requests) and gives it back
    when it ends.
    """
    open_store(config.store).conn.close()
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
    # The pages speak the publication's language (the workspace's labels/<lang>.po first).
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(config.publication.language, config.base_dir), newstyle=False
    )
    app.extensions["digest"] = WebState(config=config, secret=load_secret(config))

    @app.context_processor
    def _publication() -> dict[str, Any]:
        root = url_for("index").rstrip("/")
        return {
            "publication": config.publication,
            "dir": direction(config.publication.language),
            "brand": page_brand(config, lambda path: root + path),
        }

    app.before_request(_limit_streamed_body)
    app.teardown_appcontext(_close_db)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    _routes(app)
    return app


# ---------------------------------------------------------------- plumbing


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        current_app.extensions["digest"].connections.give_back(db)


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


# ---------------------------------------------------------------- routes


def _routes(app: Flask) -> None:
    app.add_url_rule("/", "index", lambda: redirect(url_for("archive")))
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/style.css", "stylesheet", stylesheet)
    links.register(app)
    signup.register(app)
    archive.register(app)
    desk.register(app)
    assets.register(app)
    clicks.register(app)


def healthz() -> Response:
    """Liveness and database check for a load balancer or monitor."""
    ping(get_db())
    return Response("ok\n", mimetype="text/plain")


def stylesheet() -> Response:
    """The one stylesheet every page uses (served from here: no external assets)."""
    text = stylesheet_text(state().config)
    if text is None:
        return Response("", mimetype="text/css")
    response = Response(text, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
