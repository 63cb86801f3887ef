"""``digest demo``: a complete, offline tour in one command.

It makes a workspace (default ``./digest-demo``) with its own config, copies
the demo feed the project ships (invented stories in four categories) into it
with the dates moved into today's period, adds a handful of subscribers with
different categories and time zones, ingests, builds today's daily issue,
delivers it into the maildir ``outbox/`` and writes an HTML preview.

Running it again is safe: what exists is kept, the issue for a period is
built once, and a subscriber never gets the same issue twice. On a later day
the feed gets that day's stories, so the next run builds the next issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from importlib import resources
from pathlib import Path
from typing import Any

from digest.atomic import create_new
from digest.compose.build import compose_issue
from digest.compose.issues import issue_article_count, issue_by_id, issue_categories
from digest.compose.periods import scheduled_time
from digest.config import CONFIG_NAME, Config, load_config
from digest.delivery import deliver_issue, delivery_counts
from digest.errors import DigestError
from digest.ingest.feeds import add_feed, find_feed
from digest.ingest.sources import ingest_sources
from digest.init import init_workspace
from digest.mail.preview import preview_issue
from digest.store.database import open_store, utcnow
from subscribers.model import encode_labels
from subscribers.store import add_subscriber, find_subscriber, list_subscribers

DEMO_MARKER = "# digest demo workspace"
DEMO_FEED = "demo-feed.xml"
EDITION = "daily"

DEMO_CONFIG = f"""{DEMO_MARKER} (made by `digest demo`; safe to delete)
# A full sample with every key explained: `digest init OTHER_FOLDER`.

[publication]
name = "The Lantern Gazette"
from = "The Lantern Gazette <digest@example.org>"
base_url = "http://localhost:8080"
postal_address = "Lantern Gazette (demo), 1 Example Street, 10115 Berlin, Germany"
timezone = "Europe/Berlin"

[storage]
db = "digest.db"

[delivery]
# Messages are written into this maildir instead of being sent: open them with any mail client.
transport = "maildir:outbox"

[editions.daily]
title = "Morning Lantern"
schedule = "0 7 * * *"
timezone = "Europe/Berlin"
window = "1d"
order = ["World", "Technology", "Science", "Culture"]
# "local" would send at send_at in each reader's own zone instead of all at once.
delivery = "edition"
send_at = "07:00"

[editions.weekly]
title = "Lantern Weekly"
schedule = "0 8 * * mon"
timezone = "Europe/Berlin"
window = "7d"
order = ["World", "Technology", "Science", "Culture"]

[compose]
# The demo replays the same invented stories every day: do not hold them back as sent before.
repeat_stories = "allow"
"""

# Invented readers: different category choices and time zones.
DEMO_SUBSCRIBERS: list[dict[str, Any]] = [
    {"email": "ada@example.org", "name": "Ada Moreau", "timezone": "Europe/Berlin", "categories": None},
    {
        "email": "bilal@example.org",
        "name": "Bilal Nurlanov",
        "timezone": "Asia/Almaty",
        "categories": ["Technology", "Science"],
    },
    {
        "email": "carmen@example.org",
        "name": "Carmen Ruiz",
        "timezone": "America/New_York",
        "categories": ["World"],
    },
    {
        "email": "dai@example.org",
        "name": "Dai Sato",
        "timezone": "Asia/Tokyo",
        "categories": ["Culture", "Science"],
    },
    {
        "email": "elif@example.org",
        "name": "Elif Kaya",
        "timezone": None,
        "categories": None,
        "editions": ["daily"],
    },
]

_PUBDATE = re.compile(r"<pubDate>([^<]+)</pubDate>")
_GUID = re.compile(r'(<guid isPermaLink="false">)([^<]+)(</guid>)')
_ITEM_LINK = re.compile(r"<link>https://demo\.example\.org/(?=[a-z])")


@dataclass
class DemoResult:
    """What :func:`run_demo` did, for the CLI to print."""

    directory: Path
    config_path: Path
    workspace_created: bool
    feed_path: Path
    ingested_new: int
    subscribers_added: list[str]
    subscribers: list[dict[str, Any]]
    issue: dict[str, Any]
    issue_created: bool
    articles: int
    categories: list[str]
    sent: int
    already_sent: int
    outbox: Path
    preview_path: Path
    next_commands: list[str] = field(default_factory=list)


def demo_feed_text() -> str:
    """The demo feed shipped with digest."""
    return resources.files("digest").joinpath("data", DEMO_FEED).read_text(encoding="utf-8")


def shifted_feed(text: str, newest: datetime, tag: str) -> str:
    """The feed with its dates moved so the newest item is at ``newest`` (spacing kept), and
    each guid and link made unique to ``tag`` (a date), so each day's demo brings new articles."""
    dates = [parsedate_to_datetime(m.group(1)) for m in _PUBDATE.finditer(text)]
    if not dates:
        raise DigestError("the shipped demo feed has no <pubDate> elements; reinstall digest")
    shift = newest - max(dates)

    def move(m: re.Match[str]) -> str:
        when = (parsedate_to_datetime(m.group(1)) + shift).astimezone(UTC)
        return f"<pubDate>{format_datetime(when)}</pubDate>"

    text = _PUBDATE.sub(move, text)
    text = _ITEM_LINK.sub(f"<link>https://demo.example.org/{tag.replace('-', '/')}/", text)
    return _GUID.sub(lambda m: f"{m.group(1)}{m.group(2)}-{tag}{m.group(3)}", text)


def _prepare_directory(directory: Path) -> bool:
    """Write the demo config unless the folder already holds one; refuse a non-demo workspace."""
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        head = config_path.read_text(encoding="utf-8", errors="replace")[: len(DEMO_MARKER)]
        if head != DEMO_MARKER:
            raise DigestError(
                f"{config_path} belongs to a workspace that is not a demo; "
                "choose another folder with --dir (the demo adds subscribers and sends an issue)"
            )
        return False
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DigestError(f"{directory}: cannot create folder ({exc.strerror})") from None
    create_new(config_path, DEMO_CONFIG)  # 0600, as `digest init` makes it
    return True


def run_demo(directory: str | Path = "digest-demo", *, now: datetime | None = None) -> DemoResult:
    """Set up (or refresh) the demo workspace in ``directory`` and send today's daily issue there."""

    now = (now or utcnow()).astimezone(UTC).replace(microsecond=0)
    directory = Path(directory)
    created = _prepare_directory(directory)
    init = init_workspace(directory)
    # The demo's own file only: DIGEST_DB or DIGEST_TRANSPORT from the shell must not send
    # the demo to a real list or a real server.
    config = load_config(init.config_path, environ={})
    edition = config.edition(EDITION)
    outbox = (directory / "outbox").resolve()
    db = open_store(config.store)
    try:
        today = now.astimezone(edition.zone).date()
        period_end = scheduled_time(edition, today)
        feed_path, results = _ingest_demo_feed(db, config, directory, period_end, today, now)
        added = _add_demo_subscribers(db, now)
        composed = compose_issue(db, config, EDITION, period_end=period_end)
        if composed.issue is None:
            raise DigestError(f"demo: {composed.message}")
        issue = composed.issue
        before = _sent_count(db, issue["id"])
        if issue["status"] != "sent":
            deliver_issue(db, config, issue["id"], transport_url=f"maildir:{outbox}", now=now)
        after = _sent_count(db, issue["id"])
        issue = issue_by_id(db, issue["id"])

        preview = preview_issue(db, config, issue["id"], fmt="html")
        preview_path = directory / "preview.html"
        preview_path.write_bytes(preview.content)
        articles = issue_article_count(db, issue["id"])
        return DemoResult(
            directory=directory,
            config_path=init.config_path,
            workspace_created=created,
            feed_path=feed_path,
            ingested_new=sum(r.new for r in results),
            subscribers_added=added,
            subscribers=_listed_subscribers(db),
            issue=issue,
            issue_created=composed.created,
            articles=articles,
            categories=issue_categories(db, issue["id"]),
            sent=after - before,
            already_sent=before,
            outbox=outbox,
            preview_path=preview_path,
            next_commands=_next_commands(directory),
        )
    finally:
        db.close()


def _ingest_demo_feed(
    db: Any, config: Config, directory: Path, period_end: datetime, today: date, now: datetime
) -> tuple[Path, list[Any]]:
    """Write the demo feed with its stories just before today's issue (or before now, when
    the issue is still to come), and ingest it."""
    newest = min(now, period_end) - timedelta(minutes=10)
    feed_path = directory / DEMO_FEED
    feed_path.write_text(shifted_feed(demo_feed_text(), newest, today.isoformat()), encoding="utf-8")
    if find_feed(db, str(feed_path)) is None:
        add_feed(db, str(feed_path), name="The Lantern Gazette (demo)", now=now)
    results = ingest_sources(db, config, [str(feed_path)], now=now)
    errors = [r.error for r in results if r.error]
    if errors:
        raise DigestError(f"demo feed could not be read: {errors[0]}")
    return feed_path, results


def _add_demo_subscribers(db: Any, now: datetime) -> list[str]:
    """Add the demo's readers that are not on the list yet; their addresses."""
    added = []
    for person in DEMO_SUBSCRIBERS:
        if find_subscriber(db, person["email"]) is None:
            add_subscriber(
                db,
                person["email"],
                name=person["name"],
                timezone=person["timezone"],
                categories=person["categories"],
                editions=person.get("editions"),
                status="active",
                source="cli",
                now=now,
            )
            added.append(person["email"])
    return added


def _listed_subscribers(db: Any) -> list[dict[str, Any]]:
    return [
        {
            "email": s["email"],
            "name": s["name"],
            "timezone": s["timezone"],
            "categories": encode_labels(s["categories"]),
        }
        for s in list_subscribers(db)
    ]


def _next_commands(directory: Path) -> list[str]:
    return [
        f"cd {directory}",
        "digest issues list",
        "digest deliveries latest",
        "digest preview latest --subscriber carmen@example.org --format text",
        "digest schedule list",
        "digest run --dry-run",
        "digest web serve    # then open http://localhost:8080/archive",
    ]


def _sent_count(db: Any, issue_id: int) -> int:
    return delivery_counts(db, issue_id)["sent"]
