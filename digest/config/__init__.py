"""Configuration: ``digest.toml``, overridden by ``DIGEST_*`` variables and options.

The file is validated strictly: an unknown key or a value of the wrong type is a
:class:`ConfigError` naming the key and the file. Secrets (the SMTP password and
the signing key) never come from the file, only from the environment.

Entry points: :func:`load_config`, :func:`find_workspace`, :func:`find_config_path`, and
the :class:`Config` they return. Every name is imported from ``digest.config`` itself;
the modules behind it:

- ``sections``: the dataclass of each ``[section]``, :class:`Edition`, :class:`Config`,
  the secrets' variable names;
- ``load``: finding and reading the file, building the :class:`Config`;
- ``values``: a table's keys and types from the file, the ``DIGEST_*`` overrides;
- ``checks``: the checks across values (zones, editions, floors, brand, DKIM key);
- ``store_url``: the ``[storage] url`` of a PostgreSQL store, its checks, and a URL shown
  without its password (:func:`display_store`);
- ``duration``: ``30m``/``6h``/``1d``/``2w`` spans (:func:`parse_duration`).

Kernel package: imports only :mod:`digest.errors`, :mod:`digest.brand`,
:mod:`digest.dkim_keys` and (lazily, to check a schedule) :mod:`digest.cron`.
"""

from __future__ import annotations

from digest.config.duration import DURATION, parse_duration
from digest.config.load import find_config_path, find_workspace, load_config
from digest.config.sections import (
    CONFIG_NAME,
    CONFIG_SECTIONS,
    DEFAULT_SUMMARY_PROMPT,
    FILE_SPELLINGS,
    REPEAT_STORIES,
    SAFE_DIRECTORIES_ENV,
    SECRET_ENV,
    SMTP_PASSWORD_ENV,
    SUMMARY_ENGINES,
    Bounces,
    Compose,
    Config,
    Delivery,
    Dkim,
    Dmarc,
    Edition,
    Ingest,
    Publication,
    Render,
    Schedule,
    Storage,
    Subscribers,
    Summary,
    Web,
)
from digest.config.store_url import (
    DB_PASSWORD_ENV,
    STORE_SCHEMES,
    display_store,
    is_store_url,
    without_password,
)
from digest.config.values import ENV_SHORTCUTS

__all__ = [
    "CONFIG_NAME",
    "CONFIG_SECTIONS",
    "DB_PASSWORD_ENV",
    "DEFAULT_SUMMARY_PROMPT",
    "DURATION",
    "ENV_SHORTCUTS",
    "FILE_SPELLINGS",
    "REPEAT_STORIES",
    "SAFE_DIRECTORIES_ENV",
    "SECRET_ENV",
    "SMTP_PASSWORD_ENV",
    "STORE_SCHEMES",
    "SUMMARY_ENGINES",
    "Bounces",
    "Compose",
    "Config",
    "Delivery",
    "Dkim",
    "Dmarc",
    "Edition",
    "Ingest",
    "Publication",
    "Render",
    "Schedule",
    "Storage",
    "Subscribers",
    "Summary",
    "Web",
    "display_store",
    "find_config_path",
    "find_workspace",
    "is_store_url",
    "load_config",
    "parse_duration",
    "without_password",
]
