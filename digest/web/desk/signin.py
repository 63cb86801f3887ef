"""Signing in to the desk: ``/desk/signin`` (ask for a link), ``/desk/signin/<token>`` (use it),
``/desk/signout``.

Opening a link changes nothing (mail scanners fetch every link): it shows a **Sign in**
button, and only its POST uses the link up (:func:`digest.editors.redeem_signin`) and sets
the session cookie. The form answers the same page for every address, so it does not tell
who is an editor; the link leaves after the answer (:mod:`digest.web.mailer`).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, redirect, request

from digest.editors import InvalidSignin, TooManySignins, redeem_signin, request_signin, safe_next
from digest.web.common import get_db, message, page, state
from digest.web.desk.session import check_form, end_session, start_session
from digest.web.signup import client_address

MAX_EMAIL = 320
ANSWER_FLOOR = 0.05
"""Seconds a sign-in request takes at least (a stranger's request does the least work)."""


def register(desk: Blueprint) -> None:
    """Add the sign-in routes to the desk's blueprint."""
    desk.add_url_rule("/signin", "signin", signin, methods=["GET", "POST"])
    desk.add_url_rule("/signin/<token>", "signin_link", signin_link, methods=["GET", "POST"])
    desk.add_url_rule("/signout", "signout", signout, methods=["POST"])


def _next() -> str:
    wanted = request.values.get("next", "")
    return wanted if safe_next(wanted) else "/desk"


def signin() -> tuple[str, int]:
    """GET: the form. POST: mail a link if the address is an editor's; the same page either way,
    answered no sooner than :data:`ANSWER_FLOOR`, so its time does not tell an editor either."""
    if request.method != "POST":
        return page("desk/signin.html", next=_next(), email=(request.args.get("email") or "")[:MAX_EMAIL])
    started = time.monotonic()
    try:
        return _ask_for_link()
    finally:
        time.sleep(max(0.0, started + ANSWER_FLOOR - time.monotonic()))


def _ask_for_link() -> tuple[str, int]:
    web = state()
    email = (request.form.get("email") or "").strip()[:MAX_EMAIL]
    try:
        row = request_signin(
            get_db(), web.config, web.secret, email, client=client_address(), next_path=_next()
        )
    except TooManySignins:
        return message("Too many requests", "Too many sign-in requests just now. Try again later.", 429)
    if row is not None:
        web.outbox.submit(web.config, [row])
    return page("desk/signin_sent.html", email=email)


def signin_link(token: str) -> Response | tuple[str, int]:
    """GET: a **Sign in** button (nothing is used up). POST: use the link, start the session."""
    if request.method != "POST":
        return page("desk/signin_link.html", token=token, next=_next())
    try:
        editor = redeem_signin(get_db(), state().secret, token)
    except InvalidSignin as exc:
        return page("desk/signin.html", 400, next=_next(), error=f"{exc}.")
    return start_session(redirect(_next(), code=303), editor["id"])


def signout() -> Response:
    """End the session (a desk form, so it carries the CSRF token)."""
    check_form()
    return end_session(redirect("/desk/signin", code=303))
