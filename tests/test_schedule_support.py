"""Helpers for the schedule, run and demo tests: a workspace, a feed that grows with the clock,
subscribers, and reading the maildir outbox. (No tests here.)"""

from __future__ import annotations

import email
import email.parser
import email.policy
import mailbox
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from conftest import new_workspace
from store_switch import store_at

from digest.config import Config, load_config
from digest.ingest.feeds import add_feed
from subscribers.store import add_subscriber

DIGEST = str(Path(sys.executable).with_name("digest"))
CATEGORIES = ("World", "Technology", "Science", "Culture")

DAILY = """
[editions.daily]
title = "Daily"
schedule = "{schedule}"
timezone = "{timezone}"
window = "1d"
delivery = "{delivery}"
send_at = "07:00"
"""

WEEKLY = """
[editions.weekly]
title = "Weekly"
schedule = "0 8 * * mon"
timezone = "Europe/Berlin"
window = "7d"
"""


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


@dataclass
class Workspace:
    """A config file, its database and its maildir outbox."""

    root: Path
    config_path: Path
    feed_path: Path

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def config(self) -> Config:
        return load_config(self.config_path)

    def db(self):
        return store_at(self.root / "digest.db")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        env["DIGEST_SECRET"] = "test-secret-not-for-production"
        env["DIGEST_CONFIG"] = str(self.config_path)
        return env


def make_workspace(
    root: Path,
    *,
    schedule: str = "0 7 * * *",
    timezone: str = "Europe/Berlin",
    delivery: str = "edition",
    weekly: bool = False,
    catch_up: str = "6h",
) -> Workspace:
    """A workspace with a daily edition (and optionally a weekly one) delivering into a maildir."""
    text = f"""
[publication]
name = "Schedule Test"
from = "Schedule Test <digest@example.org>"
base_url = "https://news.example.org"
postal_address = "1 Test Street, Testville"
timezone = "Europe/Berlin"

[delivery]
transport = "maildir:outbox"
concurrency = 2

[schedule]
catch_up = "{catch_up}"
"""
    text += DAILY.format(schedule=schedule, timezone=timezone, delivery=delivery)
    if weekly:
        text += WEEKLY
    config_path = new_workspace(root, config=text).config_file
    feed_path = root / "feed.xml"
    write_feed(feed_path, [])
    db = store_at(root / "digest.db")
    add_feed(db, str(feed_path))
    db.close()
    return Workspace(root=root, config_path=config_path, feed_path=feed_path)


def add_readers(ws: Workspace, readers: dict[str, str | None]) -> None:
    """Active subscribers: email → IANA zone (None: the edition's)."""
    db = ws.db()
    for address, zone in readers.items():
        add_subscriber(db, address, name=address.split("@")[0].title(), timezone=zone, status="active")
    db.close()


def article_times(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """Publication times from ``start`` (inclusive) to ``end`` (exclusive)."""
    times = []
    t = start
    while t < end:
        times.append(t)
        t += every
    return times


def write_feed(path: Path, published: list[datetime]) -> None:
    """An RSS file with one invented item per publication time."""
    items = []
    for i, when in enumerate(published):
        category = CATEGORIES[i % len(CATEGORIES)]
        stamp = when.strftime("%Y%m%dT%H%M")
        items.append(
            f"""<item><title>{escape(f"Item {stamp} about {category.lower()}")}</title>
<link>https://feed.example.org/{stamp}</link><guid isPermaLink="false">item-{stamp}</guid>
<category>{category}</category><pubDate>{format_datetime(when)}</pubDate>
<description>Something happened at {stamp} in the world of {category.lower()}.</description></item>"""
        )
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Test feed</title>'
        "<link>https://feed.example.org/</link><description>t</description>"
    )
    path.write_text(head + "".join(items) + "</channel></rss>", encoding="utf-8")


def grow_feed(ws: Workspace, published: list[datetime], at: datetime) -> None:
    """Rewrite the feed with the items published by ``at`` (a feed only shows the past)."""
    write_feed(ws.feed_path, [t for t in published if t <= at])


def messages(outbox: Path) -> list[email.message.EmailMessage]:
    """Every message in the maildir (headers only: the tests look at who got what)."""
    if not (outbox / "new").exists():
        return []
    box = mailbox.Maildir(str(outbox), create=False)
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    return [parser.parsebytes(box.get_bytes(key)) for key in box.iterkeys()]


def message_count(outbox: Path) -> int:
    """How many messages the maildir holds (cheap)."""
    new = outbox / "new"
    return len(os.listdir(new)) if new.exists() else 0


def recipients(msg: email.message.EmailMessage) -> str:
    """The bare address a message went to."""
    return msg["To"].addresses[0].addr_spec
