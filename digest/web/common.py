"""What every route module of the web app shares: its state, the request's database, pages.

:class:`WebState` (the configuration, the signing secret, a rendering cache) lives on the app;
:func:`state` and :func:`get_db` give a request its state and database connection;
:func:`page`, :func:`message` and :func:`bad_link` answer; :func:`subscriber_for` reads a
token. Imported by :mod:`digest.web.app`, :mod:`~digest.web.links`, :mod:`~digest.web.signup`,
:mod:`~digest.web.archive` and :mod:`~digest.web.static`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils
from flask import current_app, g, render_template

from digest.config import Config, is_store_url
from digest.errors import ConfigError, NotFound
from digest.i18n import translations
from digest.render.context import brand_context, cached_logo
from digest.render.templating import template_dirs
from digest.render.variants import RenderedVariant, render_issue
from digest.store.database import open_store
from digest.web.mailer import OutboxSender
from subscribers.model import available_zones
from subscribers.store import get_subscriber
from subscribers.tokens import InvalidToken, verify_token

if TYPE_CHECKING:
    from digest.store.pg_pool import PgPool

SOURCE = "web"
UNLIMITED_BYTES = 1 << 40
FULL_RENDERINGS_KEPT = 16
FEED_CONTENTS_KEPT = 64
POOL_SIZE = 4
"""PostgreSQL connections a web worker holds at most, busy or kept open between requests (each
server-side process costs memory: instances × workers × this is what a web tier can hold)."""

T = TypeVar("T")


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


class Connections:
    """The database connections of one web worker process: SQLite's file is opened per request
    (it costs microseconds); a PostgreSQL connection costs a handshake (about 10 ms), so those
    come from psycopg's pool (:class:`~digest.store.pg_pool.PgPool`): up to
    :data:`POOL_SIZE` kept open between requests, each checked when handed out (a connection
    the server dropped meanwhile is replaced, not handed out)."""

    def __init__(self, store: str | Path) -> None:
        self.store = store
        self.pool: PgPool | None = None
        if is_store_url(store):
            from digest.store.pg_pool import PgPool  # lazy: start-up (psycopg only for PostgreSQL)

            self.pool = PgPool(str(store), POOL_SIZE, "digest web")

    def take(self) -> sqlite_utils.Database:
        """A connection for one request (give it back with :meth:`give_back`)."""
        if self.pool is None:
            return open_store(self.store, migrate=False)
        return self.pool.take()  # type: ignore[return-value]  # PgDatabase: the same surface

    def give_back(self, db: sqlite_utils.Database) -> None:
        """Close an SQLite connection; a PostgreSQL one goes back to the pool."""
        db.conn.close()


@dataclass
class WebState:
    """What every request needs: the configuration, the signing secret, the background sender of
    transactional mail, a small rendering cache."""

    config: Config
    secret: bytes
    outbox: OutboxSender = field(default_factory=OutboxSender)
    _full: OrderedDict[int, RenderedVariant] = field(default_factory=OrderedDict)
    _feed: OrderedDict[int, str] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    connections: Connections = field(init=False)

    def __post_init__(self) -> None:
        self.connections = Connections(self.config.store)

    @property
    def base_url(self) -> str:
        """The public address, without a trailing slash."""
        return self.config.publication.base_url.rstrip("/")

    def full_rendering(
        self, db: sqlite_utils.Database, issue_id: int, *, published: bool = True
    ) -> RenderedVariant:
        """The untrimmed all-categories rendering of an issue; a few of the published ones are
        kept in memory (a published issue never changes; a draft's note still can)."""
        unlimited = replace(self.config, render=replace(self.config.render, max_html_bytes=UNLIMITED_BYTES))
        if not published:
            return render_issue(db, unlimited, issue_id, "*")
        return self._kept(
            self._full, issue_id, lambda: render_issue(db, unlimited, issue_id, "*"), FULL_RENDERINGS_KEPT
        )

    def feed_content(self, issue_id: int, make: Callable[[], str]) -> str:
        """A sent issue's feed entry HTML, made by ``make()`` once and kept (a sent issue never
        changes; the newest :data:`FEED_CONTENTS_KEPT` are kept)."""
        return self._kept(self._feed, issue_id, make, FEED_CONTENTS_KEPT)

    def _kept(self, cache: OrderedDict[int, T], key: int, make: Callable[[], T], limit: int) -> T:
        """``cache[key]``, made by ``make()`` (outside the lock) when missing; the ``limit``
        most recently used are kept."""
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        made = make()
        with self._lock:
            cache[key] = made
            while len(cache) > limit:
                cache.popitem(last=False)
        return made

    @cached_property
    def timezones(self) -> list[str]:
        """The zones a reader can pick, sorted (read once: it scans tzdata): the IANA
        ``Area/Location`` zones of the geographic areas, plus UTC. Links kept for old
        names (``US/Eastern``, ``Japan``), POSIX-style rules (``EST5EDT``), ``Etc/*``
        and tzdata's leftovers (``Factory``, ``localtime``, ``posixrules``) are left out."""
        return [zone for zone in available_zones() if zone == "UTC" or zone.split("/")[0] in GEOGRAPHIC_AREAS]


def state() -> WebState:
    return current_app.extensions["digest"]


def get_db() -> sqlite_utils.Database:
    """This request's database connection (opened on first use)."""
    if "db" not in g:
        g.db = state().connections.take()
    return g.db


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def translate(text: str) -> str:
    """``text`` (an English msgid) in the publication's language."""
    config = state().config
    return translations(config.publication.language, config.base_dir).gettext(text)


def message(title: str, text: str, status: int = 200, **fields: Any) -> tuple[str, int]:
    """A page with a heading and a line, both translated; ``{field}``s in ``text`` are filled
    after translation."""
    return page("message.html", status, title=translate(title), text=translate(text).format(**fields))


def bad_link(purpose: str, reason: str) -> tuple[str, int]:
    hints = {
        "confirm": "Confirmation links expire after a week: sign up again to get a new one.",
        "unsubscribe": "Use the unsubscribe link from a recent email, unchanged.",
        "preferences": "Use the preferences link from a recent email, unchanged.",
    }
    reason = translate(f"{reason[:1].upper()}{reason[1:]}.")
    return message("This link does not work", "{reason} " + hints[purpose], 400, reason=reason)


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


def stylesheet_text(config: Config) -> str | None:
    """The first ``style.css`` in the web template folders (None when there is none), after
    the brand's custom properties (``--brand-accent``, ``--brand-accent-dark``, ``--brand-font``)
    it may use."""
    for folder in web_template_dirs(config):
        path = folder / "style.css"
        if path.is_file():
            brand = brand_context(config)
            head = (
                f":root {{ --brand-accent: {brand['accent']}; --brand-accent-dark: {brand['accent_dark']}; "
                f"--brand-font: {brand['font']}; }}\n"
            )
            return head + path.read_text("utf-8")
    return None


def page_brand(config: Config, asset: Callable[[str], str]) -> dict[str, Any]:
    """The brand as the web pages see it (:func:`digest.render.context.brand_context`), the
    logo's ``url`` given by ``asset("/assets/logo.<ext>")`` (this site's address of it)."""
    try:
        brand = brand_context(config)
    except ConfigError:  # the logo file went away since the config was loaded: no logo, not a 500
        brand = brand_context(replace(config, render=replace(config.render, logo="")))
    if brand["logo"]:
        path = cached_logo(config.path(config.render.logo)).url_path
        brand["logo"] = {**brand["logo"], "url": asset(path)}
    return brand
