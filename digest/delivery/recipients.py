"""Who gets an issue: :func:`recipients` streams the eligible readers with their variant and due time.

The send's snapshot (:func:`digest.delivery.ledger.freeze`) and a trial run
(:mod:`digest.delivery.trial`) both ask it, so they agree on who gets what.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlite_utils

from digest.compose.issues import issue_categories
from digest.config import Config
from digest.localtime import due_at
from digest.render.variants import variant_key
from subscribers.store import eligible_subscribers


def recipients(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], str, datetime | None]]:
    """Who gets ``issue`` now: (subscriber, variant, due time or None), streamed.

    Eligible subscribers whose categories intersect the issue's; ``due`` is set only for
    local-time editions.
    """

    categories = issue_categories(db, int(issue["id"]))
    edition = config.editions.get(issue["edition"])
    local = edition is not None and edition.delivery == "local"
    for subscriber in eligible_subscribers(db, issue["edition"], categories):
        variant = variant_key(subscriber["categories"], categories)
        if variant != "[]":
            yield subscriber, variant, due_at(config, edition, issue, subscriber) if local else None
