"""The categories a workspace knows: what a subscriber may follow.

A reader who follows a category that no article and no edition has gets nothing, so
``digest subscribers add/set/import`` check their categories against this list.
"""

from __future__ import annotations

import sqlite_utils

from digest.config import Config
from digest.ingest.articles import article_categories
from digest.ingest.feeds import feed_categories


def known_categories(db: sqlite_utils.Database, config: Config) -> list[str]:
    """Every category the config names (editions' ``order``, the default category, the
    targets of ``category_aliases``) or a stored feed or article has; config spellings
    first, then the stored ones A-Z, each name once (compared case-insensitively)."""
    names: list[str] = []
    for edition in config.editions.values():
        names.extend(edition.order)
    names.append(config.ingest.default_category)
    names.extend(config.ingest.category_aliases.values())
    stored = sorted(
        {name for name in [*article_categories(db), *feed_categories(db)] if name}
    )  # UNION's order
    names.extend(sorted(stored, key=str.casefold))
    seen: dict[str, str] = {}
    for name in names:
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())
