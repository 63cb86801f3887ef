"""The ``[storage] url`` of a PostgreSQL store: its checks (scheme, host, database name, no
password in the file) and how a store is shown (a URL never with its password).

A store *target* is what :func:`digest.store.database.open_store` opens: a ``postgresql://``
URL (a ``str``) or the path of an SQLite file.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.errors import ConfigError

STORE_SCHEMES = ("postgresql", "postgres")
"""The URL schemes of a PostgreSQL store (libpq's two spellings)."""
DB_PASSWORD_ENV = "DIGEST_DB_PASSWORD"
"""Where the PostgreSQL password comes from (besides libpq's ~/.pgpass and PGPASSWORD)."""
_HIDDEN = "***"


def is_store_url(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a PostgreSQL store (``postgresql://…``) rather than an SQLite file."""
    return isinstance(target, str) and urlsplit(target).scheme.lower() in STORE_SCHEMES and "://" in target


def without_password(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` parameter) shown as ``***``,
    for messages and logs; a URL without one is returned as it is."""
    try:
        parts = urlsplit(url)
        has_user_password = parts.password is not None
    except ValueError:  # an unreadable port or netloc: show only the scheme
        return f"{url.partition(':')[0]}:{_HIDDEN}"
    netloc = parts.netloc
    if has_user_password:
        user = parts.netloc.rpartition("@")[0].partition(":")[0]
        netloc = f"{user}:{_HIDDEN}@{parts.netloc.rpartition('@')[2]}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        query = urlencode([(k, _HIDDEN if k == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def display_store(target: str | os.PathLike[str]) -> str:
    """How a store target is shown: an SQLite file's path, or a URL without its password."""
    return without_password(target) if isinstance(target, str) and "://" in target else str(target)


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password (``user:secret@`` or ``?password=``)."""
    try:
        parts = urlsplit(url)
        in_user = parts.password is not None
    except ValueError:
        return ":" in url.partition("://")[2].partition("@")[0] and "@" in url
    return in_user or any(key == "password" for key, _ in parse_qsl(parts.query, keep_blank_values=True))


def refuse_password(url: str, where: str) -> None:
    """A :class:`ConfigError` when ``url`` (from the file ``where``) carries a password."""
    if url and has_password(url):
        raise ConfigError(
            f"{where}: 'storage.url' has a password in it; remove it from the file and set "
            f"{DB_PASSWORD_ENV} in the environment (or put it in ~/.pgpass)"
        )


def check_store_url(url: str, where: str) -> None:
    """A :class:`ConfigError` unless ``url`` is empty (SQLite) or a ``postgresql://`` URL with
    a host (in the URL, or a ``?host=`` socket folder) and a database name. The message never
    shows a password."""
    if not url:
        return
    shown = without_password(url)
    example = "postgresql://user@host:5432/dbname"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(
            f"{where}: 'storage.url' {shown!r} is not a valid URL; give one like {example}"
        ) from None
    if parts.scheme.lower() not in STORE_SCHEMES or not url.lower().startswith(f"{parts.scheme.lower()}://"):
        raise ConfigError(
            f"{where}: 'storage.url' {shown!r} is not a PostgreSQL URL; give one like {example} "
            "(or leave it empty for the SQLite file in 'storage.db')"
        )
    if not parts.hostname and not dict(parse_qsl(parts.query)).get("host"):
        raise ConfigError(f"{where}: 'storage.url' {shown!r} names no host; give one like {example}")
    if not parts.path.strip("/"):
        raise ConfigError(f"{where}: 'storage.url' {shown!r} names no database; give one like {example}")
