"""The personal links in every email: ``/confirm/<token>``, ``/unsubscribe/<token>``
(RFC 8058 one-click included) and ``/preferences/<token>``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from flask import Flask, Response, redirect, request, url_for

from digest.errors import DigestError
from digest.signup import queue_welcome
from digest.store.database import from_iso
from digest.web.common import (
    SOURCE,
    BadLink,
    WebState,
    bad_link,
    get_db,
    message,
    page,
    state,
    subscriber_for,
    translate,
)
from digest.web.signup import signup_choices
from subscribers.store import confirm as confirm_subscriber
from subscribers.store import resubscribe, set_preferences
from subscribers.store import unsubscribe as unsubscribe_subscriber
from subscribers.tokens import make_token

ONE_CLICK_BODY = ("List-Unsubscribe", "One-Click")
log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    """Add the token routes to ``app``."""
    app.add_url_rule("/confirm/<token>", "confirm", confirm, methods=["GET", "POST"])
    app.add_url_rule("/unsubscribe/<token>", "unsubscribe", unsubscribe, methods=["GET", "POST"])
    app.add_url_rule("/preferences/<token>", "preferences", preferences, methods=["GET", "POST"])
    app.add_url_rule("/unsubscribe", "unsubscribe_help", link_help)
    app.add_url_rule("/preferences", "preferences_help", link_help)


def confirm(token: str) -> tuple[str, int]:
    """Double opt-in. GET shows a button; POST confirms (scanners prefetch GETs), then sends the welcome.

    An address that left (unsubscribed or bounced) is confirmed again only by a link
    issued after it left: it asked again through the sign-up form. An older link does
    not re-add it.
    """
    try:
        subscriber = subscriber_for(token, "confirm")
    except BadLink as exc:
        return bad_link("confirm", str(exc))
    status = subscriber["status"]
    if status == "active":
        return message("Subscription confirmed", "Your subscription is already confirmed. Thank you!")
    rejoining = status in ("unsubscribed", "bounced") and _issued_after_leaving(token, subscriber)
    if status != "pending" and not rejoining:
        return message(
            "This link no longer applies",
            "This address is no longer subscribed, so there is nothing to confirm. "
            "Sign up again at {url} if you would like to receive the digest.",
            409,
            url=url_for("subscribe"),
        )
    if request.method != "POST":
        return page("confirm.html", subscriber=subscriber)
    db = get_db()
    if rejoining:
        changed = resubscribe(db, subscriber["id"], source=SOURCE, detail={"via": "confirmation link"})
    else:
        changed = confirm_subscriber(db, subscriber["id"], source=SOURCE)
    if changed:
        _welcome(subscriber["id"])
    return message(
        "Subscription confirmed", "Thank you! {email} will receive the next issue.", email=subscriber["email"]
    )


def _issued_after_leaving(token: str, subscriber: dict[str, Any]) -> bool:
    """True when this (verified) confirm token was made after the subscriber left the list."""
    left = subscriber.get("unsubscribed_at") or subscriber.get("updated_at")
    try:
        issued = datetime.fromtimestamp(int(token.split(".")[1]), tz=UTC)
    except (IndexError, ValueError):
        return False
    return bool(left) and issued > from_iso(left)


def _welcome(subscriber_id: int) -> None:
    """Queue the welcome email; the web app's sender mails it after the answer."""
    web = state()
    try:
        row = queue_welcome(get_db(), web.config, web.secret, subscriber_id)
    except Exception:
        # The confirmation stands; the welcome email is a courtesy. Say so in the log only.
        log.exception("could not queue the welcome email for subscriber %s", subscriber_id)
        return
    web.outbox.submit(web.config, [row])


def unsubscribe(token: str) -> tuple[str, int]:
    """GET: a page with a button. POST: unsubscribe at once (RFC 8058 one-click included).

    A POST never redirects and needs no cookie or form token: mail providers send
    ``List-Unsubscribe=One-Click`` from their servers and expect a quick 200.
    """
    try:
        subscriber = subscriber_for(token, "unsubscribe")
    except BadLink as exc:
        if exc.removed:
            # Erased on request: the reader's wish is already true, and one-click wants a 200.
            return message(
                "You are unsubscribed", "This address is not on the list; nothing more will be sent."
            )
        return bad_link("unsubscribe", str(exc))
    if request.method != "POST":  # GET and HEAD (Flask sends HEAD here too) never act
        return page(
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
    return page("unsubscribed.html", subscriber=subscriber)


def preferences(token: str) -> Response | tuple[str, int]:
    """GET: the form. POST: validate and save, then show the form again (303)."""
    try:
        subscriber = subscriber_for(token, "preferences")
    except BadLink as exc:
        return bad_link("preferences", str(exc))
    web = state()
    choices = _preference_choices(web, get_db(), subscriber)
    if request.method != "POST":
        return _preferences_page(web, token, subscriber, choices, saved=request.args.get("saved") == "1")
    edition_keys = [key for key, _ in choices["editions"]]
    try:
        values = parse_preferences(
            request.form,
            editions=edition_keys,
            categories=choices["categories"],
            timezones=set(_zone_choices(web.timezones, subscriber)),
        )
        save_preferences(get_db(), subscriber["id"], values, known_editions=edition_keys)
    except DigestError as exc:
        errors = exc.errors if isinstance(exc, PreferencesError) else {"form": str(exc)}
        form = {
            "editions": request.form.getlist("edition"),
            "categories": request.form.getlist("category"),
            "timezone": request.form.get("timezone", ""),
        }
        return _preferences_page(web, token, subscriber, choices, errors=errors, form=form, status=400)
    return redirect(url_for("preferences", token=token, saved="1"), code=303)


def link_help() -> tuple[str, int]:
    """Where the web version of an issue points its personal links: explains where to find yours."""
    return message(
        "Use the link in your email",
        "Each email carries personal links to unsubscribe or change your preferences "
        "at the bottom of the message. Open a recent email and use the link there.",
    )


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
            errors["editions"] = translate("Unknown edition: {names}").format(names=", ".join(unknown[:3]))
        elif not chosen_editions:
            errors["editions"] = translate("Choose at least one edition, or unsubscribe instead.")
    if categories:
        unknown = [c for c in chosen_categories if c not in categories]
        if unknown:
            errors["categories"] = translate("Unknown category: {names}").format(names=", ".join(unknown[:3]))
        elif not chosen_categories:
            errors["categories"] = translate("Choose at least one category.")
    if zone and zone not in timezones:
        errors["timezone"] = translate(
            "{zone} is not a time zone; pick one from the list (e.g. Europe/Berlin)."
        ).format(zone=repr(zone[:60]))
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
    """Editions (key, title) from the config; every category an issue can carry (the config's,
    then those feeds and articles have: :func:`digest.ingest.categories.known_categories`).

    The subscriber's own editions and categories are always offered too (e.g. a category set
    with the CLI that nothing has yet): a form that left them out would erase them on save.
    """
    choices = signup_choices(state.config, db)
    editions, categories = choices["editions"], choices["categories"]
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
    return page(
        "preferences.html",
        status,
        subscriber=subscriber,
        choices=choices,
        form=form,
        timezones=_zone_choices(state.timezones, subscriber),
        saved=saved,
        errors=errors or {},
        unsubscribe_url=url_for("unsubscribe", token=unsubscribe_token),
    )


def _zone_choices(offered: list[str], subscriber: dict[str, Any]) -> list[str]:
    """The zones offered to this reader: the geographic ones, plus the zone they already
    have if it is another (an old name set by an import), so saving the form keeps it."""
    current = subscriber.get("timezone")
    if not current or current in offered:
        return offered
    return sorted([*offered, current])
