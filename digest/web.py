"""The small web app behind the links every email carries.

Routes: ``/confirm/<token>`` (double opt-in), ``/unsubscribe/<token>`` (a page with
a button on GET; the unsubscribe itself, RFC 8058 one-click included, on POST),
``/preferences/<token>`` (form and save), ``/issues/<id>`` (view in browser),
``/archive`` and ``/healthz``.

Design notes:

- Nothing changes on GET. Mail scanners and link previewers fetch every URL in
  a message; a GET that unsubscribed (or confirmed) would act without the reader.
- No cookies and no sessions. The authority for a change is the signed,
  purpose-bound token in the URL, which a cross-site page cannot know, so a
  forged cross-site POST has nothing to ride on (no CSRF token needed), and a
  one-click POST from a mail provider works without any state.
- Every status or preference change goes through ``subscribers.store`` with
  source ``"web"``, so it lands in the ``events`` consent record.
- One database connection per request (SQLite connections are not shared
  across threads); the schema is migrated once, when the app is created.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import zoneinfo
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlite_utils
from flask import Flask, Response, current_app, g, redirect, render_template, request, url_for
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException
from werkzeug.serving import (
    BaseWSGIServer,
    WSGIRequestHandler,
    get_sockaddr,
    make_server,
    select_address_family,
)

from digest.compose import get_issue
from digest.config import Config
from digest.errors import DigestError, NotFound
from digest.render import (
    RECIPIENT_FIELDS,
    RenderedVariant,
    current_variant,
    personalise,
    render_issue,
    template_dirs,
)
from digest.store import from_iso, open_store
from subscribers.model import available_zones
from subscribers.store import confirm as confirm_subscriber
from subscribers.store import get_subscriber, set_preferences
from subscribers.store import unsubscribe as unsubscribe_subscriber
from subscribers.tokens import InvalidToken, load_secret, make_token, verify_token

log = logging.getLogger(__name__)

SOURCE = "web"
PUBLIC_STATUSES = ("sending", "sent")
ONE_CLICK_BODY = ("List-Unsubscribe", "One-Click")
MAX_REQUEST_BYTES = 64 * 1024
UNLIMITED_BYTES = 1 << 40
FULL_RENDERINGS_KEPT = 16

# Pages are self-contained: one stylesheet from this origin, no scripts, no frames.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# An issue is email HTML: inline styles and a <style> block, remote images allowed, still no scripts.
ISSUE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_TOKEN_IN_PATH = re.compile(r"(/(?:confirm|unsubscribe|preferences)/)[^/?#\s]+")


def web_template_dirs(config: Config) -> list[Path]:
    """Folders searched for web templates, first match wins: ``web/`` inside the configured
    override folder (``[render] templates``), then the bundled ``templates/web`` (inside the
    package when installed from a wheel, else the top-level folder of the source tree)."""
    return [d / "web" for d in template_dirs(config) if (d / "web").is_dir()]


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

    def full_rendering(self, db: sqlite_utils.Database, issue_id: int) -> RenderedVariant:
        """The untrimmed all-categories rendering of a published issue (a few kept in memory)."""
        with self._lock:
            if issue_id in self._full:
                self._full.move_to_end(issue_id)
                return self._full[issue_id]
        unlimited = replace(self.config, render=replace(self.config.render, max_html_bytes=UNLIMITED_BYTES))
        rendered = render_issue(db, unlimited, issue_id, "*")
        with self._lock:
            self._full[issue_id] = rendered
            while len(self._full) > FULL_RENDERINGS_KEPT:
                self._full.popitem(last=False)
        return rendered

    @cached_property
    def timezones(self) -> list[str]:
        """Every IANA zone name this machine knows, sorted (read once: it scans tzdata)."""
        return available_zones()


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
    loaders: list[BaseLoader] = [FileSystemLoader(str(d)) for d in web_template_dirs(config)]
    app.jinja_loader = ChoiceLoader(loaders)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.extensions["digest"] = WebState(config=config, secret=load_secret(config))

    @app.context_processor
    def _publication() -> dict[str, Any]:
        return {"publication": config.publication}

    app.teardown_appcontext(_close_db)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    _routes(app)
    return app


# ---------------------------------------------------------------- plumbing


def _state() -> WebState:
    return current_app.extensions["digest"]


def get_db() -> sqlite_utils.Database:
    """This request's database connection (opened on first use)."""
    if "db" not in g:
        g.db = open_store(_state().config.db_path, migrate=False)
    return g.db


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


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
    if _is_token_path(request.path):
        # Personal pages: not cached by browsers or proxies, not indexed.
        headers["Cache-Control"] = "no-store"
        headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _is_token_path(path: str) -> bool:
    return bool(_TOKEN_IN_PATH.match(path))


def redact_path(path: str) -> str:
    """``/unsubscribe/<token>`` → ``/unsubscribe/…``: tokens stay out of access logs."""
    return _TOKEN_IN_PATH.sub(r"\1…", path)


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def _message(title: str, text: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return _page("message.html", status, title=title, text=text, **context)


def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
    code = exc.code or 500
    if code == 404:
        return _message("Page not found", "There is nothing at this address.", 404)
    if code == 405:
        response = exc.get_response()
        body, _ = _message("Not allowed", "This address does not accept that kind of request.", 405)
        response.set_data(body)
        response.mimetype = "text/html"
        return response
    if code == 413:
        return _message("Request too large", "That request was larger than this site accepts.", 413)
    return _message(exc.name or "Error", "The request could not be handled.", code)


def _unexpected_error(exc: Exception) -> tuple[str, int]:
    log.exception("error while handling %s %s", request.method, redact_path(request.path))
    return _message(
        "Something went wrong", "Please try again in a moment. Nothing was changed by this error.", 500
    )


def _bad_link(purpose: str, reason: str) -> tuple[str, int]:
    hints = {
        "confirm": "Confirmation links expire after a week: sign up again to get a new one.",
        "unsubscribe": "Use the unsubscribe link from a recent email, unchanged.",
        "preferences": "Use the preferences link from a recent email, unchanged.",
    }
    return _message("This link does not work", f"{reason[:1].upper()}{reason[1:]}. {hints[purpose]}", 400)


class _BadLink(Exception):
    """A token that does not verify (``removed`` False), or names a subscriber since removed."""

    def __init__(self, reason: str, *, removed: bool = False) -> None:
        super().__init__(reason)
        self.removed = removed


def _subscriber(token: str, purpose: str) -> dict[str, Any]:
    """The subscriber a token names; raises :class:`_BadLink` with a reason a reader can act on."""
    try:
        subscriber_id = verify_token(_state().secret, token, purpose)
    except InvalidToken as exc:
        raise _BadLink(str(exc).rstrip(".")) from None
    try:
        return get_subscriber(get_db(), subscriber_id)
    except NotFound:
        raise _BadLink("this address is no longer on the list", removed=True) from None


# ---------------------------------------------------------------- routes


def _routes(app: Flask) -> None:
    app.add_url_rule("/", "index", lambda: redirect(url_for("archive")))
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/style.css", "stylesheet", stylesheet)
    app.add_url_rule("/confirm/<token>", "confirm", confirm, methods=["GET", "POST"])
    app.add_url_rule("/unsubscribe/<token>", "unsubscribe", unsubscribe, methods=["GET", "POST"])
    app.add_url_rule("/preferences/<token>", "preferences", preferences, methods=["GET", "POST"])
    app.add_url_rule("/unsubscribe", "unsubscribe_help", link_help)
    app.add_url_rule("/preferences", "preferences_help", link_help)
    # max: SQLite's largest row id (2**63 - 1); a larger id is a 404, not an overflow.
    app.add_url_rule("/issues/<int(max=9223372036854775807):issue_id>", "issue", issue)
    app.add_url_rule("/archive", "archive", archive)


def healthz() -> Response:
    """Liveness and database check for a load balancer or monitor."""
    get_db().execute("SELECT 1").fetchone()
    return Response("ok\n", mimetype="text/plain")


def stylesheet() -> Response:
    """The one stylesheet every page uses (served from here: no external assets)."""
    for folder in web_template_dirs(_state().config):
        path = folder / "style.css"
        if path.is_file():
            response = Response(path.read_text("utf-8"), mimetype="text/css")
            response.headers["Cache-Control"] = "public, max-age=3600"
            return response
    return Response("", mimetype="text/css")


def confirm(token: str) -> tuple[str, int]:
    """Double opt-in. GET shows a button; POST confirms (scanners prefetch GETs)."""
    try:
        subscriber = _subscriber(token, "confirm")
    except _BadLink as exc:
        return _bad_link("confirm", str(exc))
    status = subscriber["status"]
    if status == "active":
        return _message("Subscription confirmed", "Your subscription is already confirmed. Thank you!")
    if status != "pending":
        # An address that left (or bounced) is not re-added by an old confirmation email.
        return _message(
            "This link no longer applies",
            "This address is no longer subscribed, so there is nothing to confirm. "
            "Sign up again if you would like to receive the digest.",
            409,
        )
    if request.method != "POST":
        return _page("confirm.html", subscriber=subscriber)
    confirm_subscriber(get_db(), subscriber["id"], source=SOURCE)
    return _message(
        "Subscription confirmed", f"Thank you! {subscriber['email']} will receive the next issue."
    )


def unsubscribe(token: str) -> tuple[str, int]:
    """GET: a page with a button. POST: unsubscribe at once (RFC 8058 one-click included).

    A POST never redirects and needs no cookie or form token: mail providers send
    ``List-Unsubscribe=One-Click`` from their servers and expect a quick 200.
    """
    try:
        subscriber = _subscriber(token, "unsubscribe")
    except _BadLink as exc:
        if exc.removed:
            # Erased on request: the reader's wish is already true, and one-click wants a 200.
            return _message(
                "You are unsubscribed", "This address is not on the list; nothing more will be sent."
            )
        return _bad_link("unsubscribe", str(exc))
    if request.method != "POST":  # GET and HEAD (Flask sends HEAD here too) never act
        return _page(
            "unsubscribe.html",
            subscriber=subscriber,
            already=subscriber["status"] == "unsubscribed",
        )
    one_click = request.form.get(ONE_CLICK_BODY[0]) == ONE_CLICK_BODY[1]
    if subscriber["status"] not in ("unsubscribed",):
        unsubscribe_subscriber(
            get_db(),
            subscriber["id"],
            source=SOURCE,
            detail={"method": "one-click" if one_click else "form"},
        )
    return _page("unsubscribed.html", subscriber=subscriber)


def preferences(token: str) -> Response | tuple[str, int]:
    """GET: the form. POST: validate and save, then show the form again (303)."""
    try:
        subscriber = _subscriber(token, "preferences")
    except _BadLink as exc:
        return _bad_link("preferences", str(exc))
    state = _state()
    choices = _preference_choices(state, get_db(), subscriber)
    if request.method != "POST":
        return _preferences_page(state, token, subscriber, choices, saved=request.args.get("saved") == "1")
    edition_keys = [key for key, _ in choices["editions"]]
    try:
        values = parse_preferences(
            request.form,
            editions=edition_keys,
            categories=choices["categories"],
            timezones=set(state.timezones),
        )
        save_preferences(get_db(), subscriber["id"], values, known_editions=edition_keys)
    except DigestError as exc:
        errors = exc.errors if isinstance(exc, PreferencesError) else {"form": str(exc)}
        form = {
            "editions": request.form.getlist("edition"),
            "categories": request.form.getlist("category"),
            "timezone": request.form.get("timezone", ""),
        }
        return _preferences_page(state, token, subscriber, choices, errors=errors, form=form, status=400)
    return redirect(url_for("preferences", token=token, saved="1"), code=303)


def link_help() -> tuple[str, int]:
    """Where the web version of an issue points its personal links: explains where to find yours."""
    return _message(
        "Use the link in your email",
        "Each email carries personal links to unsubscribe or change your preferences "
        "at the bottom of the message. Open a recent email and use the link there.",
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
        return _message("Issue not found", "There is no published issue at this address.", 404)
    response = Response(issue_html(db, _state(), issue_id), mimetype="text/html")
    response.headers["Content-Security-Policy"] = ISSUE_CSP
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def archive() -> tuple[str, int]:
    """The list of sent issues, per edition, newest first."""
    state = _state()
    return _page("archive.html", editions=archive_listing(get_db(), state.config))


# ---------------------------------------------------------------- the work behind the routes


class PreferencesError(DigestError):
    """A preferences form with invalid values; ``errors`` maps field → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def parse_preferences(
    form: Any,
    *,
    editions: list[str],
    categories: list[str],
    timezones: set[str],
) -> dict[str, Any]:
    """Validate a submitted preferences form.

    Returns ``editions`` / ``categories`` (None when every offered choice is
    ticked, which means "all, including ones added later") and ``timezone``
    (None for the edition's own zone). Raises :class:`PreferencesError`.
    """
    errors: dict[str, str] = {}
    chosen_editions = _unique(form.getlist("edition"))
    chosen_categories = _unique(form.getlist("category"))
    zone = (form.get("timezone") or "").strip()
    if editions:
        unknown = [e for e in chosen_editions if e not in editions]
        if unknown:
            errors["editions"] = "Unknown edition: " + ", ".join(unknown[:3])
        elif not chosen_editions:
            errors["editions"] = "Choose at least one edition, or unsubscribe instead."
    if categories:
        unknown = [c for c in chosen_categories if c not in categories]
        if unknown:
            errors["categories"] = "Unknown category: " + ", ".join(unknown[:3])
        elif not chosen_categories:
            errors["categories"] = "Choose at least one category."
    if zone and zone not in timezones:
        errors["timezone"] = f"{zone[:60]!r} is not a time zone; pick one from the list (e.g. Europe/Berlin)."
    if errors:
        raise PreferencesError(errors)
    return {
        "editions": None if set(chosen_editions) >= set(editions) else chosen_editions,
        "categories": None if set(chosen_categories) >= set(categories) else chosen_categories,
        "timezone": zone or None,
    }


def save_preferences(
    db: sqlite_utils.Database, subscriber_id: int, values: dict[str, Any], *, known_editions: list[str]
) -> None:
    """Store validated preferences through ``subscribers.store`` (recorded with source web).
    ``known_editions`` are the editions the form offered (the configured ones and those the
    subscriber already has)."""
    set_preferences(
        db,
        subscriber_id,
        editions=values["editions"],
        categories=values["categories"],
        timezone=values["timezone"],
        source=SOURCE,
        known_editions=known_editions,
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def _preference_choices(
    state: WebState, db: sqlite_utils.Database, subscriber: dict[str, Any]
) -> dict[str, Any]:
    """Editions (key, title) from the config; categories in the editions' order, else those in use.

    The subscriber's own editions and categories are always offered too (e.g. a category set
    with the CLI that no edition lists): a form that left them out would erase them on save.
    """
    config = state.config
    editions = [(key, edition.title or key) for key, edition in config.editions.items()]
    categories: list[str] = []
    for edition in config.editions.values():
        categories.extend(c for c in edition.categories if c not in categories)
    if not categories:
        categories = [r[0] for r in db.execute("SELECT DISTINCT category FROM articles ORDER BY category")]
    known = {key.casefold() for key, _ in editions}
    for key in subscriber.get("editions") or []:
        if key.casefold() not in known:
            known.add(key.casefold())
            editions.append((key, key))
    known = {c.casefold() for c in categories}
    for category in subscriber.get("categories") or []:
        if category.casefold() not in known:
            known.add(category.casefold())
            categories.append(category)
    return {"editions": editions, "categories": categories}


def _in_choice_spelling(values: list[str], choices: list[str]) -> list[str]:
    """``values`` spelled as the matching choice (choices and stored labels match case-insensitively)."""
    spelling = {c.casefold(): c for c in choices}
    return [spelling.get(v.casefold(), v) for v in values]


def _preferences_page(
    state: WebState,
    token: str,
    subscriber: dict[str, Any],
    choices: dict[str, Any],
    *,
    saved: bool = False,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    if form is None:
        form = {
            "editions": _in_choice_spelling(
                subscriber.get("editions") or [key for key, _ in choices["editions"]],
                [key for key, _ in choices["editions"]],
            ),
            "categories": _in_choice_spelling(
                subscriber.get("categories") or list(choices["categories"]), choices["categories"]
            ),
            "timezone": subscriber.get("timezone") or "",
        }
    unsubscribe_token = make_token(state.secret, subscriber["id"], "unsubscribe")
    return _page(
        "preferences.html",
        status,
        subscriber=subscriber,
        choices=choices,
        form=form,
        timezones=state.timezones,
        saved=saved,
        errors=errors or {},
        unsubscribe_url=url_for("unsubscribe", token=unsubscribe_token),
    )


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


# ---------------------------------------------------------------- serving


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with tokens cut out of the access log lines."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log ``METHOD /path VERSION code size`` with any token replaced by …."""
        command = getattr(self, "command", None)
        if command:
            line = f"{command} {redact_path(self.path)} {self.request_version}"
        else:  # a malformed request line: log it cut short, it may still hold a token
            line = redact_path(getattr(self, "requestline", "")[:80])
        self.log("info", '"%s" %s %s', line.translate(self._control_char_table), code, size)


def make_web_server(config: Config, host: str = "127.0.0.1", port: int = 8080) -> BaseWSGIServer:
    """A threaded werkzeug server for the app (call ``serve_forever()`` on it).

    Good for small deployments behind a reverse proxy that terminates TLS.
    """
    app = create_app(config)
    # Bind here rather than in werkzeug, which prints and exits on a busy port: we want one Error line.
    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise DigestError(
            f"cannot listen on {host}:{port} ({reason}); choose another --host or --port"
        ) from None
    try:
        return make_server(
            host, port, app, threaded=True, request_handler=RedactingRequestHandler, fd=sock.fileno()
        )
    finally:
        sock.close()  # the server holds its own duplicate of the socket
