"""The desk's guard: who is signed in, the session cookie, CSRF, and the headers of every desk page.

:func:`editor` is the signed-in editor (or None); :func:`require_editor` answers 404 to anyone
else (the desk is not advertised: the answer is the same as for an address that does not
exist); :func:`check_form` refuses a POST without this session's CSRF token, or from another
origin; :func:`start_session` and :func:`end_session` set and clear the cookie; :func:`desk_headers`
marks every ``/desk`` answer ``noindex``, ``no-referrer`` and ``no-store``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, abort, g, request

from digest.editors import SESSION_TTL, csrf_ok, csrf_token, session_cookie, session_editor
from digest.web.common import get_db, state

COOKIE = "digest_desk"
# Desk pages: the stylesheet from here, the email preview framed from here, nothing else.
DESK_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def editor() -> dict[str, Any] | None:
    """The editor this request's session cookie names (None: nobody is signed in)."""
    if "desk_editor" not in g:
        web = state()
        g.desk_editor = session_editor(get_db(), web.secret, request.cookies.get(COOKIE))
    return g.desk_editor


def require_editor() -> dict[str, Any]:
    """The signed-in editor; a 404 (as for any unknown address) for everyone else."""
    found = editor()
    if found is None:
        abort(404)
    return found


def csrf() -> str:
    """This session's CSRF token, for the hidden field of every desk form."""
    return csrf_token(state().secret, request.cookies.get(COOKIE, ""))


def check_form() -> dict[str, Any]:
    """A desk POST's editor, after its CSRF token and origin are checked (404 / 403 otherwise)."""
    found = require_editor()
    cookie = request.cookies.get(COOKIE, "")
    if not same_origin() or not csrf_ok(state().secret, cookie, request.form.get("csrf")):
        abort(403)
    return found


def same_origin() -> bool:
    """False when the browser says the request came from another site: ``Sec-Fetch-Site``, or
    an ``Origin`` that is not ours. (Under ``Referrer-Policy: no-referrer`` a browser sends
    ``Origin: null`` for our own forms, so "null" proves nothing either way.)"""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    base = urlsplit(state().base_url)
    return origin in (f"{base.scheme}://{base.netloc}", request.host_url.rstrip("/"))


def start_session(response: Response, editor_id: int) -> Response:
    """Set a new session cookie for ``editor_id`` on ``response`` (HttpOnly, SameSite=Strict,
    Secure when the public address is https, 12 hours)."""
    web = state()
    response.set_cookie(
        COOKIE,
        session_cookie(web.secret, editor_id),
        max_age=int(SESSION_TTL.total_seconds()),
        path="/desk",
        httponly=True,
        secure=web.base_url.startswith("https://"),
        samesite="Strict",
    )
    return response


def end_session(response: Response) -> Response:
    """Clear the session cookie."""
    response.delete_cookie(COOKIE, path="/desk", httponly=True, samesite="Strict")
    return response


def desk_headers(response: Response) -> Response:
    """Every answer under ``/desk`` (404s included): not indexed, no referrer, never cached."""
    if request.path == "/desk" or request.path.startswith("/desk/"):
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy", DESK_CSP)
    return response
