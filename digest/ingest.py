"""Ingest: read sources (feeds and article files) into the ``articles`` table.

One call, :func:`ingest_sources`, handles any mix of stored feeds, feed URLs/paths and
article files (``.json`` array, JSON Lines, CSV). The format is sniffed from the
content, never from the file name. Each source is its own transaction: a source that
fails stores nothing and does not stop the others.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import feedparser
import sqlite_utils

from digest.articles import (
    UNIX_TIME,
    ArticleInput,
    canonical_url,
    configured_spelling,
    map_category,
    parse_date,
    prepare_article,
    upsert_article,
)
from digest.config import Config
from digest.errors import DigestError
from digest.feeds import find_feed, list_feeds, normalize_source, record_fetch
from digest.fetch import Fetched, fetch, is_http
from digest.images import entry_image
from digest.sanitize import is_web_url, one_line, plain_text, resolve_url, text_to_html
from digest.store import transaction, utcnow

log = logging.getLogger(__name__)

ARTICLE_FIELDS = ("title", "url", "summary", "category", "source", "author", "published", "body", "guid")
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


def ingest_sources(
    db: sqlite_utils.Database,
    config: Config,
    sources: list[str] | None,
    *,
    skip_invalid: bool = False,
    now: datetime | None = None,
    on_result: Callable[[SourceResult], None] | None = None,
) -> list[SourceResult]:
    """Ingest each source (None = every stored feed) and report per source, in order.

    Sources are fetched and parsed concurrently, ``ingest.concurrency`` at a time; each
    is stored (in this thread: the database connection is not shared) as soon as it is
    read, and ``on_result`` is called with its result then, so a caller can print each
    source's line as it finishes. ``ingest.timeout`` bounds each source's whole fetch.

    A source that names a stored feed (by URL or path) uses that feed's category and its
    ETag/Last-Modified for a conditional GET. Article files with an invalid row store
    nothing unless ``skip_invalid``, which stores the valid rows and lists the rest as
    warnings.
    """
    now = now or utcnow()
    targets: list[tuple[str, dict[str, Any] | None]]
    if sources is None:
        targets = [(feed["url"], feed) for feed in list_feeds(db)]
    else:
        targets = [(source, find_feed(db, source) if source.strip() else None) for source in sources]
    results = [SourceResult(source=source) for source, _ in targets]
    if not targets:
        return results
    if config.ingest.concurrency < 1:
        raise DigestError(f"{config.source}: 'ingest.concurrency' must be at least 1")
    workers = min(config.ingest.concurrency, len(targets))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        futures = {
            pool.submit(_guarded, result, _read_source, config, source, feed, result, skip_invalid, now): i
            for i, ((source, feed), result) in enumerate(zip(targets, results, strict=True))
        }
        for future in as_completed(futures):
            index = futures[future]
            _source, feed = targets[index]
            result = results[index]
            read = future.result()
            if read is not None:
                _guarded(result, _store_source, db, feed, result, read, now)
            if result.error:
                result.new = result.updated = result.unchanged = 0
                if feed is not None:
                    record_fetch(db, feed["id"], status="error", error=result.error, now=now)
            if on_result is not None:
                on_result(result)
    return results


_T = TypeVar("_T")


def _guarded(result: SourceResult, step: Callable[..., _T], *args: Any) -> _T | None:
    """Run one step for one source; its failure becomes ``result.error`` (one line)."""
    try:
        return step(*args)
    except DigestError as exc:
        result.error = one_line(str(exc))
    except sqlite3.OperationalError:
        raise  # the database is locked or broken: every other source would fail the same way
    except Exception as exc:  # one hostile source must never stop the others (logged)
        log.debug("ingest of %s failed", result.source, exc_info=True)
        result.error = one_line(
            f"{result.source}: unexpected {type(exc).__name__} ({exc}); please report this source"
        )
    return None


@dataclass
class _Read:
    """A source fetched and parsed, ready to store."""

    fetched: Fetched
    rows: list[dict[str, Any]]
    feed_name: str | None = None


def _read_source(
    config: Config,
    source: str,
    feed: dict[str, Any] | None,
    result: SourceResult,
    skip_invalid: bool,
    now: datetime,
) -> _Read:
    """Fetch, parse and normalise one source (no database access: runs in a worker)."""
    if not source.strip():
        raise DigestError("empty source name; give a feed URL, a feed file or an article file")
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
        return _Read(fetched, [])
    content = fetched.content or b""
    try:
        kind = sniff(content)
    except ValueError as exc:
        raise DigestError(f"{source}: {exc}") from None
    result.kind = "feed" if kind == "feed" else "articles"
    scope = feed["url"] if feed else normalize_source(source)
    feed_name = None
    if kind == "feed":
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
        _cap_fields(source, linked, result.warnings)
        rows = [prepare_article(config, item, now=now, scope=scope, feed_id=feed_id) for item in linked]
    else:
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
    return _Read(fetched, rows, feed_name)


def _store_source(
    db: sqlite_utils.Database,
    feed: dict[str, Any] | None,
    result: SourceResult,
    read: _Read,
    now: datetime,
) -> None:
    """Store one source's rows and its fetch record in one transaction."""
    fetched = read.fetched
    if fetched.not_modified:
        if feed is not None:
            record_fetch(
                db, feed["id"], status="not modified", etag=fetched.etag, modified=fetched.modified, now=now
            )
        return
    with transaction(db):
        for row in read.rows:
            status = upsert_article(db, row, now=now)
            setattr(result, status, getattr(result, status) + 1)
        if feed is not None:
            status = f"{result.new} new, {result.updated} updated, {result.unchanged} unchanged"
            record_fetch(
                db,
                feed["id"],
                status=status,
                etag=fetched.etag,
                modified=fetched.modified,
                name=read.feed_name,
                now=now,
            )


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

_BOMS_XML = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")


def sniff(content: bytes) -> str:
    """What the bytes are: ``"feed"`` (XML), ``"json"``, ``"jsonl"`` or ``"csv"``; raises
    ValueError saying what it is not. Decided from the content, never the file name."""
    if content.startswith(_BOMS_XML):
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
        header = next(csv.reader([first], delimiter=_csv_delimiter(first)))
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


# --- feeds ------------------------------------------------------------------------------


def parse_feed(
    config: Config,
    source: str,
    fetched: Fetched,
    feed: dict[str, Any] | None,
    warnings: list[str],
) -> tuple[list[ArticleInput], str | None]:
    """Parse feed bytes into article inputs; return them and the feed's title. An entry
    without any usable link gets ``url=""`` (the caller skips it: a digest item must link
    somewhere). Raises DigestError when nothing in it is a feed entry."""
    headers = {}
    if is_http(fetched.url):
        headers["content-location"] = fetched.url
        if fetched.content_type:
            headers["content-type"] = fetched.content_type
    parsed = feedparser.parse(
        scrub_feed_bytes(fetched.content or b""),
        sanitize_html=False,  # nh3 does it, linearly, with our allow-list
        resolve_relative_uris=False,  # done while sanitising, against a safe base
        response_headers=headers,
    )
    entries = parsed.get("entries") or []
    problem = _bozo_text(parsed)
    if not entries:
        head = (fetched.content or b"")[:2048].lower()
        if b"<html" in head or b"<!doctype html" in head:
            raise DigestError(f"{source}: a web page, not a feed; give the feed's own URL")
        if problem or not parsed.get("version"):
            raise DigestError(f"{source}: no feed entries found ({problem or 'not a feed'})")
        warnings.append(f"{source}: the feed has no entries")
        return [], None
    if problem:
        warnings.append(f"{source}: parsed with warnings ({problem})")
    meta = parsed.get("feed", {})
    feed_title = plain_text(_detail_text(meta, "title")) or None
    feed_base = _feed_base(fetched, meta)
    feed_category = (feed or {}).get("category")
    if feed_category:
        feed_category = configured_spelling(feed_category, config)
    source_name = (
        (feed or {}).get("name") or feed_title or (urlsplit(feed_base).hostname if feed_base else None)
    )
    items: list[ArticleInput] = []
    seen: dict[str, tuple[str, str]] = {}
    kept_apart = 0
    for entry in entries:
        link = resolve_url(entry.get("link"), feed_base)
        guid = (entry.get("id") or "").strip() or None
        if link is None and guid and is_web_url(guid):
            link = guid
        title = _entry_title(entry)
        if guid:
            fingerprint = (canonical_url(link) if link else "", title)
            previous = seen.get(guid)
            if previous is None:
                seen[guid] = fingerprint
            elif previous == fingerprint:
                continue  # the same item listed twice
            else:
                # Feeds reuse guids by mistake; two different items must stay two articles.
                digest = hashlib.sha256("\n".join(fingerprint).encode()).hexdigest()[:12]
                guid = f"{guid}#{digest}"
                kept_apart += 1
        summary, content = _entry_html(entry)
        items.append(
            ArticleInput(
                title=title,
                url=link or "",
                guid=guid,
                summary_html=summary.get("value") if summary else None,
                content_html=content.get("value") if content else None,
                category=feed_category or map_category(_first_category(entry), config),
                source=source_name,
                author=entry.get("author"),
                published=entry_date(entry),
                base_url=_base_for(summary or content, feed_base, link or ""),
                image=entry_image(entry),
            )
        )
    if kept_apart:
        what = "entry reuses" if kept_apart == 1 else "entries reuse"
        warnings.append(f"{source}: {kept_apart} {what} an earlier entry's guid; kept as separate articles")
    return items, feed_title


# A character reference, decimal or hex (digits capped: longer ones are out of range anyway).
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
# Raw C0 controls other than tab, LF and CR: never valid XML, and never part of a multi-byte
# character in an ASCII-compatible encoding.
_RAW_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]+")


def _forbidden(code: int) -> bool:
    return (
        code > 0x10FFFF
        or 0xD800 <= code <= 0xDFFF
        or code in (0xFFFE, 0xFFFF)
        or (code < 0x20 and code not in (0x09, 0x0A, 0x0D))
        or 0x7F <= code <= 0x9F
    )


def _charref(m: re.Match[bytes]) -> bytes:
    hexa, dec = m.group(1), m.group(2)
    code = int(hexa, 16) if hexa else int(dec)
    return b"" if _forbidden(code) else m.group(0)


def scrub_feed_bytes(content: bytes) -> bytes:
    """Feed bytes without what no XML may hold: raw C0 controls and character references to
    controls, surrogates, U+FFFE/U+FFFF or past U+10FFFF (a ``&#xD800;`` crashes
    feedparser's fallback parser; a ``&#x1b;`` forces that fallback). UTF-16/32 feeds are
    left as they are (their bytes are not ASCII-compatible). Linear."""
    head = content[:4]
    if head.startswith(_BOMS_XML) or b"\x00" in head:
        return content
    content = _RAW_CONTROLS.sub(b"", content)
    if b"&#" in content:
        content = _CHARREF.sub(_charref, content)
    return content


def _bozo_text(parsed: Any) -> str:
    if not parsed.get("bozo"):
        return ""
    exc = parsed.get("bozo_exception")
    text = str(exc) if exc else "malformed"
    text = one_line(text) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _feed_base(fetched: Fetched, meta: Any) -> str | None:
    candidates = [fetched.url if is_http(fetched.url) else None]
    for link in meta.get("links") or []:
        if link.get("rel") == "self":
            candidates.append(link.get("href"))
    candidates.append(meta.get("link"))
    for candidate in candidates:
        if is_web_url(candidate):
            return candidate
    return None


def _base_for(detail: Any, feed_base: str | None, link: str) -> str:
    base = (detail or {}).get("base")
    if is_web_url(base):
        return base
    return feed_base or link


def _detail_text(obj: Any, key: str) -> str:
    detail = obj.get(f"{key}_detail") or {}
    value = obj.get(key) or ""
    kind = (detail.get("type") or "").lower()
    if "html" in kind:
        return plain_text(value)
    return one_line(value)


def _entry_title(entry: Any) -> str:
    # Empty when the entry has none: prepare_article names it by its first words.
    return _detail_text(entry, "title")


def _entry_html(entry: Any) -> tuple[Any, Any]:
    summary = entry.get("summary_detail") if entry.get("summary") else None
    contents = [c for c in entry.get("content") or [] if c.get("value")]
    content = None
    if contents:
        htmlish = [c for c in contents if "html" in (c.get("type") or "")]
        content = max(htmlish or contents, key=lambda c: len(c.get("value") or ""))
    return _as_html(summary), _as_html(content)


# Markup in a field declared as plain text: a tag or an entity. Feeds mislabel often.
_LOOKS_HTML = re.compile(r"<[a-zA-Z/!]|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});")


def _as_html(detail: Any) -> Any:
    if detail is None or "html" in (detail.get("type") or "html"):
        return detail
    value = detail.get("value") or ""
    if _LOOKS_HTML.search(value):
        return detail
    return {**detail, "value": text_to_html(value)}


def _first_category(entry: Any) -> str | None:
    for tag in entry.get("tags") or []:
        label = (tag.get("label") or "").strip()
        term = (tag.get("term") or "").strip()
        if label:
            return label
        if term and not is_web_url(term):
            return term
    return None


def entry_date(entry: Any) -> datetime | None:
    """The entry's own date, aware UTC: published, else updated, else created; None if it
    has none that parses. Unix timestamps are read as such (feedparser misreads them)."""
    for key in ("published", "updated", "created"):
        # dict.get: FeedParserDict.get("published") falls back to "updated" with a warning.
        raw = dict.get(entry, key)
        if isinstance(raw, str) and UNIX_TIME.match(raw):
            try:
                return parse_date(raw)
            except ValueError:
                pass  # out of range: feedparser's own reading (below) may still have one
        parsed = dict.get(entry, f"{key}_parsed")
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=UTC)
            except (TypeError, ValueError, OverflowError):
                pass
        if isinstance(raw, str) and raw.strip():
            try:
                return parse_date(raw)
            except ValueError:
                continue
    return None


# --- article files ----------------------------------------------------------------------

Record = tuple[int, dict[str, Any]]


def read_article_file(
    text: str, kind: str, name: str
) -> tuple[list[Record], list[tuple[int, str]], set[str]]:
    """Split an article file into ``(line, record)`` pairs, ``(line, problem)`` pairs for
    rows that are not records, and the unknown field names seen. A file that cannot be
    read as a whole (broken JSON array, CSV without a url column) raises DigestError
    naming ``name`` and the line."""
    if kind == "json":
        pairs = list(_json_records(text, name))
    elif kind == "jsonl":
        pairs = list(_jsonl_records(text, name))
    elif kind == "csv":
        pairs = list(_csv_records(text, name))
    else:
        raise DigestError(f"{name}: unknown article file kind {kind!r}")
    records: list[Record] = []
    problems: list[tuple[int, str]] = []
    unknown: set[str] = set()
    for line, value in pairs:
        if isinstance(value, str):
            problems.append((line, value))
            continue
        unknown.update(k for k in value if k not in ARTICLE_FIELDS)
        records.append((line, value))
    return records, problems, unknown


def _json_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    line_at = _LineCounter(text)

    def broken(at: int, msg: str) -> DigestError:
        return DigestError(f"{name} line {line_at(at)}: invalid JSON ({msg})")

    if text.startswith("{", pos):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise broken(exc.pos, exc.msg) from None
        if _skip_ws(text, end) != len(text):
            raise broken(_skip_ws(text, end), "extra data after the object")
        yield line_at(pos), value if isinstance(value, dict) else "expected an object"
        return
    if not text.startswith("[", pos):
        raise broken(pos, "expected a JSON array of article objects")
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            start = pos
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise broken(exc.pos, exc.msg) from None
            yield line_at(start), value if isinstance(value, dict) else "expected an object {...}"
            pos = _skip_ws(text, pos)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise broken(pos, "expected ',' or ']'")
    if _skip_ws(text, pos) != len(text):
        raise broken(_skip_ws(text, pos), "extra data after the array")


class _LineCounter:
    """Line numbers for increasing offsets in one pass (not a count from 0 each time)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def __call__(self, offset: int) -> int:
        if offset < self.pos:
            return self.text.count("\n", 0, offset) + 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _jsonl_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON ({exc.msg} at column {exc.colno})"
            continue
        yield number, value if isinstance(value, dict) else "expected an object {...}"


def _csv_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_csv_delimiter(first))
    try:
        header = next(reader)
    except StopIteration:
        raise DigestError(f"{name}: empty CSV file") from None
    except csv.Error as exc:
        raise DigestError(f"{name} line 1: invalid CSV ({exc})") from None
    columns = [h.strip().lower().removeprefix("\ufeff") for h in header]
    for required in ("title", "url"):
        if required not in columns:
            raise DigestError(f'{name} line 1: the CSV header has no "{required}" column')
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DigestError(f"{name} line {reader.line_num}: invalid CSV ({exc})") from None
        previous_end = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            yield start, f"{len(cells)} cells but the header has {len(columns)} columns"
            continue
        yield start, {col: cell for col, cell in zip(columns, cells, strict=False) if col}


def _csv_delimiter(header: str) -> str:
    """Comma, or semicolon/tab when the header uses those (spreadsheet exports do)."""
    return max((",", ";", "\t"), key=header.count)


def article_from_record(config: Config, record: dict[str, Any]) -> ArticleInput:
    """Validate one article-file record; raises ValueError with the problem (no line)."""
    values: dict[str, str | None] = {}
    for key in ARTICLE_FIELDS:
        value = record.get(key)
        if value is None:
            values[key] = None
        elif isinstance(value, str):
            values[key] = value.strip() or None
        elif key in ("guid", "published") and isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = str(value)
        else:
            raise ValueError(f'"{key}" must be text, not {type(value).__name__}')
    if not values["title"]:
        raise ValueError('missing "title"')
    if not values["url"]:
        raise ValueError('missing "url"')
    if not is_web_url(values["url"]):
        raise ValueError(f'"url" is not an http(s) URL: {_short(values["url"])!r}')
    published = None
    if values["published"]:
        raw = record["published"]
        try:
            published = parse_date(raw)
        except ValueError:
            raise ValueError(
                f'bad date in "published": {_short(str(raw))!r} (use ISO 8601, e.g. 2026-01-05T07:30:00Z)'
            ) from None
    return ArticleInput(
        title=values["title"],
        url=values["url"] or "",
        guid=values["guid"],
        summary_html=values["summary"],
        content_html=_body_html(values["body"]),
        category=map_category(values["category"], config),
        source=values["source"],
        author=values["author"],
        published=published,
    )


def _body_html(body: str | None) -> str | None:
    if not body:
        return None
    if "<" in body:
        return body
    return text_to_html(body)


def _short(text: str | None, limit: int = 60) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
