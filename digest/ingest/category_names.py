"""Category names as stored: cleaned, mapped through ``[ingest.category_aliases]``, spelled
as the configuration spells them. Shared by ingest (every new article) and
``digest ingest --recategorize``; :mod:`digest.ingest.categories` lists the names a
workspace knows.
"""

from __future__ import annotations

from digest.config import Config
from digest.ingest.sanitize import clean_text, one_line

CATEGORY_MAX = 60


def clean_category(value: str | None) -> str:
    """A category name as stored: one line without control characters, trimmed, at most
    60 characters."""
    return one_line(clean_text(value))[:CATEGORY_MAX].strip()


def map_category(value: str | None, config: Config) -> str:
    """Map an item category through ``ingest.category_aliases`` (case-insensitive keys);
    an empty one becomes ``ingest.default_category``. A name matching a configured category
    case-insensitively takes the configured spelling (:func:`configured_spelling`)."""
    name = clean_category(value)
    if not name:
        return config.ingest.default_category
    aliases = {k.strip().lower(): v for k, v in config.ingest.category_aliases.items()}
    name = clean_category(aliases.get(name.lower(), name)) or config.ingest.default_category
    return configured_spelling(name, config)


def configured_spelling(name: str, config: Config) -> str:
    """``name`` spelled as the configured category it matches case-insensitively (any
    edition's ``categories``, an alias target, or the default category), else unchanged.

    Subscribers store the config's spelling; a feed's ``technology`` must not become a
    category of its own that a ``Technology`` reader never matches."""
    folded = name.casefold()
    candidates = [c for edition in config.editions.values() for c in edition.categories]
    candidates += [*config.ingest.category_aliases.values(), config.ingest.default_category]
    for candidate in candidates:
        candidate = clean_category(candidate)
        if candidate and candidate.casefold() == folded:
            return candidate
    return name
