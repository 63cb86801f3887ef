"""A workspace with a composed issue and a few subscribers, for the delivery tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from conftest import new_workspace

from digest.compose.build import compose_issue
from digest.config import Config

PERIOD_END = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
AFTER = PERIOD_END + timedelta(hours=1)
CATEGORIES = ("World", "Technology", "Science")

NAMES = ["Zoë Ünïcode", 'Bob "B" <Smith> & Co', "", "Ann Lee", "Émile Zola", "Kim"]


@dataclass
class Setup:
    """A workspace: its config file, config, database, the issue and the subscribers."""

    path: Path
    config: Config
    db: sqlite_utils.Database
    issue: dict[str, Any]
    subscribers: list[dict[str, Any]]

    @property
    def config_file(self) -> Path:
        return self.path / "digest.toml"

    def rows(self) -> dict[str, dict[str, Any]]:
        """The ledger rows of the issue, by email."""
        return {
            r["email"]: r
            for r in self.db.query("SELECT * FROM deliveries WHERE issue_id = ?", [self.issue["id"]])
        }

    def status_of(self, email: str) -> str:
        return self.db.execute("SELECT status FROM subscribers WHERE email = ?", [email]).fetchone()[0]


def make_setup(
    path: Path,
    *,
    subscribers: int = 6,
    local: bool = False,
    zones: list[str | None] | None = None,
) -> Setup:
    """`digest init` a workspace, add articles and subscribers, compose the daily issue."""
    replace = {'base_url = "http://localhost:8080"': 'base_url = "https://news.example.org"'}
    if local:
        replace['delivery = "edition"'] = 'delivery = "local"'
    articles = [
        {
            "title": f"Story {i}: harbour cranes & the café <opening>",
            "url": f"https://news.example.com/story/{i}",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "summary": f"<p>Something happened at the harbour, part {i}. Résumé follows.</p>",
            "published": PERIOD_END - timedelta(hours=i + 1),
            "now": PERIOD_END,
        }
        for i in range(9)
    ]
    readers = [
        {
            "email": f"reader{i}@example.net",
            "name": NAMES[i % len(NAMES)],
            "categories": None if i % 3 else ["Science"],
            "timezone": (zones[i % len(zones)] if zones else None),
        }
        for i in range(subscribers)
    ]
    ws = new_workspace(path, replace=replace, articles=articles, subscribers=readers)
    config = ws.config
    config.delivery.timeout = 5.0
    db = ws.db()
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    return Setup(path, config, db, issue, ws.subscribers)
