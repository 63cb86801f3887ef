"""Reading one source: fetch it, sniff what it is, parse and normalise its articles.

:func:`read_source` does it all without touching the database (it runs in a worker
thread); :class:`SourceResult` is the outcome per source that ingest reports.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from digest.config import Config
from digest.errors import DigestError
from digest.ingest.article_files import article_from_record, csv_delimiter, read_article_file
from digest.ingest.articles import ArticleInput, prepare_article
from digest.ingest.feed_entries import XML_BOMS, parse_feed
from digest.ingest.feeds import normalize_source
from digest.ingest.fetch import Fetched, fetch
from digest.ingest.image_sizes import measure_images
from digest.ingest.images import is_unsized

# An article's summary or body past this many characters is cut before sanitising.
FIELD_MAX_CHARS = 200_000
# Feed dates further ahead than this are treated as missing.
FUTURE_SLACK = timedelta(days=2)


@dataclass
class SourceResult:
    """The outcome for one source: counts, or the error that stopped it, plus warnings.

    ``error`` and each warning are complete one-line messages that already name the
    source (``articles.jsonl line 7: missing "url"``); print them as they are.
    """

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    not_modified: bool = False  # the server answered 304: nothing was read or stored
    kind: str = ""  # "feed" or "articles" once sniffed

    @property
    def ok(self) -> bool:
        """True when the source was read (or was unchanged) without an error."""
        return self.error is None


@dataclass
class ParsedSource:
    """A source fetched and parsed, ready to store."""

    fetched: Fetched
    rows: list[dict[str, Any]]
    feed_name: str | None = None


def read_source(
    config: Config,
    source: str,
    feed: dict[str, Any] | None,
    result: SourceResult,
    skip_invalid: bool,
    now: datetime,
) -> ParsedSource:
    """Fetch, parse and normalise one source (no database access: runs in a worker)."""
    if not source.strip():
        raise DigestError("empty source name; give a feed URL, a feed file or an article file")
    started = time.monotonic()
    fetched = fetch(
        source,
        timeout=config.ingest.timeout,
        max_bytes=config.ingest.max_bytes,
        user_agent=config.ingest.user_agent,
        etag=feed["etag"] if feed else None,
        modified=feed["modified"] if feed else None,
    )
    if fetched.not_modified:
        result.not_modified = True
        return ParsedSource(fetched, [])
    content = fetched.content or b""
    try:
        kind = sniff(content)
    except ValueError as exc:
        raise DigestError(f"{source}: {exc}") from None
    result.kind = "feed" if kind == "feed" else "articles"
    scope = feed["url"] if feed else normalize_source(source)
    feed_name = None
    if kind == "feed":
        rows, feed_name = _feed_rows(config, source, fetched, feed, result, scope, now, started)
    else:
        rows = _file_rows(config, source, content, kind, result, scope, skip_invalid, now)
    return ParsedSource(fetched, rows, feed_name)


def _size_images(config: Config, items: list[ArticleInput], started: float) -> None:
    """Pictures the feed gives no size for: measured from their first bytes within what is
    left of the source's ``ingest.timeout`` when ``render.images`` is on (nothing is fetched
    from image servers otherwise), else dropped."""
    if config.render.images:
        measure_images(
            items,
            deadline=started + config.ingest.timeout,
            max_bytes=config.ingest.max_bytes,
            user_agent=config.ingest.user_agent,
        )
        return
    for item in items:
        if is_unsized(item.image):
            item.image = None


def _feed_rows(
    config: Config,
    source: str,
    fetched: Fetched,
    feed: dict[str, Any] | None,
    result: SourceResult,
    scope: str,
    now: datetime,
    started: float,
) -> tuple[list[dict[str, Any]], str | None]:
    """A feed's entries with a link, as article rows (future dates dropped); the feed's title.
    ``started``: when the fetch began (measuring images shares the source's deadline)."""
    items, feed_name = parse_feed(config, source, fetched, feed, result.warnings)
    linked = [item for item in items if item.url]
    future = [i for i in linked if i.published and i.published > now + FUTURE_SLACK]
    for item in future:
        item.published = None  # a wrong clock or a typo; it would sit unseen until then
    if future:
        result.warnings.append(
            f"{source}: {len(future)} entr{'y' if len(future) == 1 else 'ies'} dated in the "
            "future; dated at ingest time instead"
        )
    if len(linked) < len(items):
        skipped = len(items) - len(linked)
        result.warnings.append(
            f"{source}: skipped {skipped} entr{'y' if skipped == 1 else 'ies'} without a link"
        )
    feed_id = feed["id"] if feed else None
    _size_images(config, linked, started)
    _cap_fields(source, linked, result.warnings)
    rows = [prepare_article(config, item, now=now, scope=scope, feed_id=feed_id) for item in linked]
    return rows, feed_name


def _file_rows(
    config: Config,
    source: str,
    content: bytes,
    kind: str,
    result: SourceResult,
    scope: str,
    skip_invalid: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """An article file's records as article rows; a bad row stops it unless ``skip_invalid``."""
    text = _decode_text(source, content)
    records, bad_rows, unknown = read_article_file(text, kind, source)
    items: list[ArticleInput] = []
    for line, record in records:
        try:
            items.append(article_from_record(config, record))
        except ValueError as exc:
            bad_rows.append((line, str(exc)))
    problems = [f"{source} line {line}: {message}" for line, message in sorted(bad_rows)]
    if unknown:
        result.warnings.append(f"{source}: ignored unknown field(s): {', '.join(sorted(unknown))}")
    if problems and not skip_invalid:
        result.warnings.extend(problems[1:])
        result.warnings.append(f"{source}: nothing stored; fix the rows above or use --skip-invalid")
        raise DigestError(problems[0])
    result.warnings.extend(f"{p} (skipped)" for p in problems)
    if not items and not problems:
        raise DigestError(f"{source}: no articles in the file")
    _cap_fields(source, items, result.warnings)
    rows = [prepare_article(config, item, now=now, scope=scope) for item in items]
    return rows


def _cap_fields(source: str, items: list[ArticleInput], warnings: list[str]) -> None:
    """Cut HTML fields past :data:`FIELD_MAX_CHARS` (the sanitiser's cost grows faster than
    the size of one huge text run); a summary needs its lead only. Warns once per source."""
    cut = 0
    for item in items:
        for name in ("summary_html", "content_html"):
            value = getattr(item, name)
            if value and len(value) > FIELD_MAX_CHARS:
                setattr(item, name, value[:FIELD_MAX_CHARS])
                cut += 1
    if cut:
        warnings.append(
            f"{source}: {cut} summar{'y' if cut == 1 else 'ies'} or bod{'y' if cut == 1 else 'ies'} "
            f"longer than {FIELD_MAX_CHARS:,} characters; cut to that length"
        )


# --- sniffing ---------------------------------------------------------------------------


def sniff(content: bytes) -> str:
    """What the bytes are: ``"feed"`` (XML), ``"json"``, ``"jsonl"`` or ``"csv"``; raises
    ValueError saying what it is not. Decided from the content, never the file name."""
    if content.startswith(XML_BOMS):
        return "feed"
    head = content[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise ValueError("empty")
    if head.startswith(b"<") or head[:1] == b"\x00":
        return "feed"
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        try:
            json.loads(content.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            return "jsonl"
        return "json"
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    try:
        header = next(csv.reader([first], delimiter=csv_delimiter(first)))
    except csv.Error:
        header = []
    names = {h.strip().lower() for h in header}
    if len(names) >= 2 and names & {"title", "url"}:
        return "csv"  # a missing column is reported with the header's line
    raise ValueError(
        "not a feed (RSS/Atom/RDF) nor an article file (a JSON array, JSON Lines, "
        'or CSV with "title" and "url" columns)'
    )


def _decode_text(source: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise DigestError(f"{source} line {line}: not UTF-8 text; save the file as UTF-8") from None
