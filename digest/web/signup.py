"""``/subscribe``: the sign-up form (GET) and the request for a confirmation email (POST).

The POST answers the same page whatever the address's state, so the page reveals
nothing about who is on the list (see :func:`digest.signup.request_signup` for
what is mailed): a bad field is refused before the address is looked up, every
POST counts toward the per-client limit, every answer takes at least
:data:`ANSWER_FLOOR`, and the email leaves after the answer (:mod:`digest.web.mailer`).
A form posted from another site works: embedding a sign-up form is normal, and
the worst a forged post can do is ask for one confirmation email, which the
per-address limits bound. A filled-in honeypot field gets the same
page and nothing else.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import random
import time
from typing import Any

import sqlite_utils
from flask import Flask, request

from digest.config import Config
from digest.errors import DigestError
from digest.i18n import primary, translations
from digest.ingest.categories import known_categories
from digest.signup import TooManyRequests, count_signup_post, request_signup
from digest.web.common import WebState, get_db, message, page, state, translate

log = logging.getLogger(__name__)

HONEYPOT = "website"
ANSWER_FLOOR = 0.05
"""Seconds a sign-up POST takes at least, whatever it did (a held-back one does the least work)."""
ANSWER_JITTER = 0.01
MAX_NAME_SENT = 201  # one past the longest name: a longer one is refused, not cut short


def register(app: Flask) -> None:
    """Add the sign-up route to ``app``."""
    app.add_url_rule("/subscribe", "subscribe", subscribe, methods=["GET", "POST"])


def signup_choices(config: Config, db: sqlite_utils.Database) -> dict[str, Any]:
    """The editions (key, title) and every category an issue can carry (the config's and the
    ones feeds and articles have, as the CLI knows them): a reader who unticks one box must
    not lose categories the form never showed."""

    return {
        "editions": [(key, edition.title or key) for key, edition in config.editions.items()],
        "categories": known_categories(db, config),
    }


def subscribe() -> tuple[str, int]:
    """GET: the form, everything chosen. POST: ask for a confirmation; the same page for every
    address, answered no sooner than :data:`ANSWER_FLOOR` (plus a little jitter) so that its time
    does not tell a held-back or refused request from one that queued an email."""
    web = state()
    choices = signup_choices(web.config, get_db())
    all_editions = [key for key, _ in choices["editions"]]
    if request.method != "POST":
        form = {"email": "", "name": "", "editions": all_editions, "categories": choices["categories"]}
        return page("subscribe.html", form=form, choices=choices)
    started = time.monotonic()
    try:
        return _post(web, choices, all_editions)
    finally:
        time.sleep(max(0.0, started + ANSWER_FLOOR + random.uniform(0, ANSWER_JITTER) - time.monotonic()))


def _post(web: WebState, choices: dict[str, Any], all_editions: list[str]) -> tuple[str, int]:
    """Count the POST, then ask for the email; the mail itself leaves after the answer."""
    email = (request.form.get("email") or "").strip()[:320]
    form = {
        "email": email,
        "name": (request.form.get("name") or "")[:MAX_NAME_SENT],
        "editions": request.form.getlist("edition"),
        "categories": request.form.getlist("category"),
    }
    try:
        if request.form.get(HONEYPOT):
            count_signup_post(get_db(), web.config, web.secret, client_address())
            return page("subscribed.html", email=email)
        row = request_signup(
            get_db(),
            web.config,
            web.secret,
            email=email,
            name=form["name"],
            editions=_chosen(form["editions"], all_editions),
            categories=_chosen(form["categories"], choices["categories"]),
            client=client_address(),
            send=False,
            known_categories=choices["categories"],
        )
    except TooManyRequests:
        return message(
            "Too many requests", "Too many sign-ups from your network just now. Try again later.", 429
        )
    except DigestError as exc:
        return page("subscribe.html", 400, form=form, choices=choices, error=_reason(exc))
    if row is not None:
        web.outbox.submit(web.config, [row])
    return page("subscribed.html", email=email)


def _chosen(values: list[str], offered: list[str]) -> list[str] | None:
    """None (all, including later ones) when every offered choice is ticked or none is offered."""
    picked = [v for v in dict.fromkeys(values) if v in offered]
    if not offered or not picked or set(picked) >= set(offered):
        return None
    return picked


def _reason(exc: DigestError) -> str:
    """The form's error line: the check's own words in English, else (and for a very long
    one) a line in the publication's language."""
    text = str(exc)
    generic = "That does not look like an email address; please check it."
    if len(text) >= 300 or primary(state().config.publication.language) != "en":
        return translate(generic)
    return text


def client_address() -> str:
    """The client's address: the peer, or, behind a local reverse proxy, the address it forwarded."""
    peer = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    if local and forwarded:
        return forwarded.split(",")[-1].strip()[:64]
    return peer


def embed_form(config: Config) -> str:
    """A minimal HTML form that posts to this site's ``/subscribe`` (for ``digest web embed``)."""
    action = html.escape(config.publication.base_url.rstrip("/") + "/subscribe", quote=True)
    words = translations(config.publication.language, config.base_dir)
    label = html.escape(
        words.gettext("Subscribe to {publication}").format(publication=config.publication.name)
    )
    return (
        f'<form method="post" action="{action}">\n'
        f'  <label for="digest-email">{label}</label>\n'
        '  <input id="digest-email" name="email" type="email" required autocomplete="email"'
        ' placeholder="you@example.org">\n'
        '  <input name="website" type="text" tabindex="-1" autocomplete="off" aria-hidden="true"'
        ' style="position:absolute;left:-10000px" value="">\n'
        f'  <button type="submit">{html.escape(words.gettext("Subscribe"))}</button>\n'
        "</form>"
    )
