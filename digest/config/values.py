"""Typed values into the configuration's tables: a ``[section]`` of the file
(:func:`fill`, strict about unknown keys, types and secrets) and the ``DIGEST_*``
environment variables (:func:`apply_environment`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, get_args, get_origin, get_type_hints

from digest.config.sections import CONFIG_SECTIONS, KEY_ALIASES, SECRET_ENV, SMTP_PASSWORD_ENV, Config
from digest.errors import ConfigError

# Keys that people are tempted to put into the file; they get a pointed error.
_SECRET_KEYS = {"password", "smtp_password", "secret", "signing_key"}
# Short environment names users expect, besides DIGEST_<SECTION>_<KEY> (digest.config_reference lists them).
ENV_SHORTCUTS = {
    "DIGEST_DB": ("storage", "db"),
    "DIGEST_DB_URL": ("storage", "url"),
    "DIGEST_TRANSPORT": ("delivery", "transport"),
    "DIGEST_BASE_URL": ("publication", "base_url"),
    "DIGEST_TEMPLATES": ("render", "templates"),
}


def fill(obj: Any, values: dict[str, Any], where: str, source: str) -> Any:
    hints = get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)} - {"key"}
    for raw_key, value in values.items():
        key = KEY_ALIASES.get(raw_key, raw_key)
        dotted = f"{where}.{raw_key}"
        if raw_key in _SECRET_KEYS:
            raise ConfigError(
                f"{source}: '{dotted}' is a secret and is read only from the environment "
                f"({SMTP_PASSWORD_ENV} or {SECRET_ENV}); remove it from the file"
            )
        if key not in names:
            known = ", ".join(sorted(n if n != "from_address" else "from" for n in names))
            raise ConfigError(f"{source}: unknown key '{dotted}'; known keys in [{where}]: {known}")
        setattr(obj, key, _check_type(value, hints[key], dotted, source))
    return obj


def _check_type(value: Any, hint: Any, dotted: str, source: str) -> Any:
    origin = get_origin(hint)
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise ConfigError(f"{source}: '{dotted}' must be a list of {item.__name__}s")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{source}: '{dotted}' must be a table of strings")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{source}: '{dotted}' must be an integer, not {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{source}: '{dotted}' must be {_type_name(hint)}, not {value!r}")
    return value


def _type_name(hint: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(hint, str(hint))


def apply_environment(config: Config, environ: Mapping[str, str]) -> None:
    targets: dict[str, tuple[str, str]] = dict(ENV_SHORTCUTS)
    for section, section_type in CONFIG_SECTIONS.items():
        for f in dataclasses.fields(section_type):
            targets[f"DIGEST_{section}_{f.name}".upper()] = (section, f.name)
    for var, (section, name) in targets.items():
        if var not in environ:
            continue
        obj = getattr(config, section)
        hint = get_type_hints(type(obj))[name]
        setattr(obj, name, _from_env(environ[var], hint, var))


def _from_env(text: str, hint: Any, var: str) -> Any:
    try:
        if hint is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        if hint in (int, float, str):
            return hint(text)
    except ValueError:
        raise ConfigError(f"environment variable {var}={text!r} must be {_type_name(hint)}") from None
    raise ConfigError(f"environment variable {var} cannot override a {hint} setting")
