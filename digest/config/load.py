"""Finding and loading ``digest.toml``: the file (found like git finds a repository),
then the ``DIGEST_*`` variables over it, then the checks (:mod:`digest.config.checks`)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from digest.config.checks import check_edition, validate
from digest.config.sections import CONFIG_NAME, CONFIG_SECTIONS, Config, Edition
from digest.config.store_url import refuse_password
from digest.config.values import apply_environment, fill
from digest.errors import ConfigError, NoWorkspace


def find_config_path(
    explicit: str | os.PathLike[str] | None = None, *, start: str | os.PathLike[str] | None = None
) -> Path | None:
    """The config file to use, found like git finds a repository.

    ``explicit`` (``--config``), else ``$DIGEST_CONFIG``, else the first ``digest.toml`` in
    ``start`` (default: the current folder) or one of its parents; None when there is none.
    """
    if explicit:
        return Path(explicit)
    env = os.environ.get("DIGEST_CONFIG")
    if env:
        return Path(env)
    here = Path(start) if start is not None else Path.cwd()
    for folder in (here, *here.resolve().parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def find_workspace(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The workspace's config file (see :func:`find_config_path`); a :class:`ConfigError`
    when there is none, so a command run outside a workspace creates nothing."""
    path = find_config_path(explicit)
    if path is None:
        raise NoWorkspace(
            f"no {CONFIG_NAME} here or above; run `digest init` (or pass --config FILE / set DIGEST_CONFIG)"
        )
    return path


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    db: str | None = None,
) -> Config:
    """Load and validate the configuration.

    ``path`` (or $DIGEST_CONFIG, or the nearest digest.toml here or above) is read if
    there is one, else the defaults apply (the CLI insists on a file: :func:`find_workspace`);
    ``DIGEST_*`` variables override it and ``db`` (an SQLite file) overrides both, the
    ``[storage] url`` included. A password in the file's ``[storage] url`` is refused.
    """
    environ = os.environ if environ is None else environ
    config_path = find_config_path(path)
    data: dict[str, Any] = {}
    source = "(defaults)"
    base_dir = Path.cwd()
    if config_path is not None:
        source = str(config_path)
        data = _read_toml(config_path)
        base_dir = config_path.resolve().parent
    config = _build(data, source)
    refuse_password(config.storage.url, source)  # the file's; DIGEST_DB_URL may carry one
    config.base_dir = base_dir
    apply_environment(config, environ)
    validate(config, source)
    if db:  # --db FILE: this SQLite file, whatever [storage] url says
        config.storage.db = str(Path(db).expanduser().resolve())
        config.storage.url = ""
    return config


def _read_toml(config_path: Path) -> dict[str, Any]:
    """The file's tables; a missing, unreadable, non-UTF-8 or invalid file is one clear line."""
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: config file not found; run `digest init` to create one") from None
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read config file ({exc.strerror})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{config_path}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: invalid TOML: {exc}") from None


def _build(data: dict[str, Any], source: str) -> Config:
    config = Config(source=source)
    for key, value in data.items():
        if key == "editions":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: 'editions' must be a table of [editions.KEY] tables")
            for ed_key, ed_value in value.items():
                where = f"editions.{ed_key}"
                if not isinstance(ed_value, dict):
                    raise ConfigError(f"{source}: '{where}' must be a table")
                edition = fill(Edition(), _renamed_order(ed_value, where, source), where, source)
                edition.key = ed_key
                edition.title = edition.title or ed_key.replace("_", " ").title()
                config.editions[ed_key] = edition
            continue
        section_type = CONFIG_SECTIONS.get(key)
        if section_type is None:
            known = ", ".join([*CONFIG_SECTIONS, "editions"])
            raise ConfigError(f"{source}: unknown section or key '{key}'; known: {known}")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table ([{key}])")
        setattr(config, key, fill(section_type(), value, key, source))
    for edition in config.editions.values():
        if not edition.timezone:
            edition.timezone = config.publication.timezone
        check_edition(edition, source)
    return config


def _renamed_order(values: dict[str, Any], where: str, source: str) -> dict[str, Any]:
    """An edition's ``categories`` key is the old name of ``order``: it orders the sections
    and never filtered (every category still appears), so it is read as ``order``."""
    if "categories" not in values:
        return values
    if "order" in values:
        raise ConfigError(
            f"{source}: '{where}' has both 'order' and its old name 'categories'; keep only 'order'"
        )
    return {("order" if k == "categories" else k): v for k, v in values.items()}
