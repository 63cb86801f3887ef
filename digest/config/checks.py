"""Checks on a loaded configuration beyond each value's type: time zones, editions'
windows, schedules and send times, the summary engine, number floors, the brand and the
DKIM key. Each refusal is a :class:`ConfigError` naming the key and the file."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.brand import check_brand
from digest.config.duration import parse_duration
from digest.config.sections import REPEAT_STORIES, SUMMARY_ENGINES, Config, Edition
from digest.config.store_url import check_store_url
from digest.dkim_keys import refuse_weak_key
from digest.errors import ConfigError

# The lowest value each number may take, and whether it may equal it ("at least") or must be
# above it ("more than"); a zero timeout or a negative rate would only fail later, obscurely.
_NUMBER_FLOORS: dict[str, tuple[float, bool]] = {
    "delivery.concurrency": (1, True),
    "delivery.rate": (0, True),
    "delivery.max_per_connection": (1, True),
    "delivery.timeout": (0, False),
    "delivery.retries": (0, True),
    "delivery.throttle_patience": (0, False),
    "delivery.lease_seconds": (0, False),
    "ingest.summary_words": (1, True),
    "ingest.timeout": (0, False),
    "ingest.max_bytes": (1, True),
    "ingest.concurrency": (1, True),
    "render.max_html_bytes": (10_000, True),
    "bounces.hard_limit": (1, True),
    "bounces.soft_limit": (1, True),
    "bounces.deadline": (0, False),
    "bounces.complaint_rate": (0, False),
    "bounces.bounce_rate": (0, False),
    "bounces.min_sample": (1, True),
    "subscribers.pending_days": (1, True),
    "web.signup_posts_per_hour": (1, True),
}


def validate(config: Config, source: str) -> None:
    """Checks on the finished configuration, after the ``DIGEST_*`` overrides: a value is
    refused the same way whether it came from the file or the environment."""
    where = f"{source} (or its DIGEST_* override)"
    check_store_url(config.storage.url, where)
    _check_zone(config.publication.timezone, "publication.timezone", where)
    _check_summary_and_compose(config, where)
    for address in config.publication.editors:
        if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+", address):
            raise ConfigError(f"{where}: 'publication.editors' has {address!r}; give plain addresses")
    r = config.render
    check_brand(
        where=where,
        base_dir=config.base_dir,
        logo=r.logo,
        accent_color=r.accent_color,
        accent_color_dark=r.accent_color_dark,
        font=r.font,
        greeting=r.greeting,
        greeting_anonymous=r.greeting_anonymous,
    )
    if config.dkim.enabled:  # a key too small to be accepted anywhere: refused before any send
        refuse_weak_key(config.path(config.dkim.key_file), f"{where}: dkim.key_file")
    for dotted, (floor, inclusive) in _NUMBER_FLOORS.items():
        section, _, key = dotted.partition(".")
        value = getattr(getattr(config, section), key)
        if value < floor or (not inclusive and value == floor):
            bound = f"at least {floor:g}" if inclusive else f"more than {floor:g}"
            raise ConfigError(f"{where}: '{dotted}' = {value!r} must be {bound}")


def _check_summary_and_compose(config: Config, source: str) -> None:
    summary = config.summary
    if summary.engine not in SUMMARY_ENGINES:
        raise ConfigError(
            f'{source}: \'summary.engine\' = {summary.engine!r} must be "feed", "lead" or "llm"'
        )
    if summary.engine == "llm" and not summary.model.strip():
        raise ConfigError(
            f"{source}: 'summary.model' is empty; with engine = \"llm\" name a model id "
            'that `llm models` lists (e.g. "gpt-4o-mini")'
        )
    for key in ("max_words", "concurrency"):
        if getattr(summary, key) < 1:
            raise ConfigError(f"{source}: 'summary.{key}' must be at least 1")
    if summary.timeout <= 0:
        raise ConfigError(f"{source}: 'summary.timeout' must be more than 0 seconds")
    if not 0 < config.compose.merge_threshold <= 1:
        raise ConfigError(f"{source}: 'compose.merge_threshold' must be above 0 and at most 1, like 0.66")
    if config.compose.repeat_stories not in REPEAT_STORIES:
        raise ConfigError(
            f"{source}: 'compose.repeat_stories' = {config.compose.repeat_stories!r} must be "
            '"drop", "update" or "allow"'
        )


def _check_zone(name: str, dotted: str, source: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: '{dotted}' = {name!r} is not an IANA time zone (e.g. Europe/Berlin)"
        ) from None


def check_edition(edition: Edition, source: str) -> None:
    where = f"editions.{edition.key}"
    _check_zone(edition.timezone, f"{where}.timezone", source)
    try:
        window = parse_duration(edition.window)
    except ConfigError as exc:
        raise ConfigError(f"{source}: '{where}.window': {exc}") from None
    if window <= timedelta(0):
        raise ConfigError(
            f"{source}: '{where}.window' = {edition.window!r} must be longer than zero, like 1d or 12h"
        )
    if len(edition.schedule.split()) not in (5, 6):
        raise ConfigError(
            f"{source}: '{where}.schedule' = {edition.schedule!r} is not a cron expression "
            "(five fields: minute hour day month weekday, e.g. '0 7 * * *')"
        )
    # The scheduler's own parser (APScheduler's CronTrigger), so the file is rejected at load,
    # not at the first build or scheduled run. Imported here: importing the config should not
    # pull in APScheduler.
    from digest.cron import cron_trigger  # lazy: start-up

    try:
        cron_trigger(edition.schedule, edition.zone)
    except ValueError as exc:
        raise ConfigError(
            f"{source}: '{where}.schedule' = {edition.schedule!r} is not a valid cron expression ({exc}); "
            "use minute hour day month weekday, e.g. '0 7 * * *'"
        ) from None
    if edition.delivery not in ("edition", "local"):
        raise ConfigError(f'{source}: \'{where}.delivery\' must be "edition" or "local"')
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", edition.send_at):
        raise ConfigError(f"{source}: '{where}.send_at' must be HH:MM (24-hour), like \"07:00\"")
    if edition.max_articles < 1:
        raise ConfigError(f"{source}: '{where}.max_articles' must be at least 1")
    _check_approval(edition, where, source)


def _check_approval(edition: Edition, where: str, source: str) -> None:
    if edition.approval not in ("none", "required"):
        raise ConfigError(f'{source}: \'{where}.approval\' must be "none" or "required"')
    if edition.on_timeout not in ("hold", "send"):
        raise ConfigError(f'{source}: \'{where}.on_timeout\' must be "hold" or "send"')
    try:
        parse_duration(edition.review_before)
    except ConfigError as exc:
        raise ConfigError(f"{source}: '{where}.review_before': {exc}") from None
