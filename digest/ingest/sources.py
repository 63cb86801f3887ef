"""Ingest: read sources (feeds and article files) into the ``articles`` table.

One call, :func:`ingest_sources`, handles any mix of stored feeds, feed URLs/paths and
article files (``.json`` array, JSON Lines, CSV). The format is sniffed from the
content, never from the file name. Each source is its own transaction: a source that
fails stores nothing and does not stop the others. Reading a source (fetch, sniff,
parse) is :mod:`digest.ingest.source_read`, with :mod:`digest.ingest.feed_entries` for feeds and
:mod:`digest.ingest.article_files` for article files; this module stores what was read.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from typing import Any, TypeVar

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError
from digest.ingest.articles import upsert_article
from digest.ingest.feeds import find_feed, list_feeds, record_fetch
from digest.ingest.sanitize import one_line
from digest.ingest.source_read import ParsedSource, SourceResult, read_source
from digest.store.database import transaction, utcnow

log = logging.getLogger(__name__)


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
    workers = min(config.ingest.concurrency, len(targets))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        futures = {
            pool.submit(_guarded, result, read_source, config, source, feed, result, skip_invalid, now): i
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


def _store_source(
    db: sqlite_utils.Database,
    feed: dict[str, Any] | None,
    result: SourceResult,
    read: ParsedSource,
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
