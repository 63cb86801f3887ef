"""Import subscribers from a CSV file, streaming, in one all-or-nothing transaction.

Columns (first line, any order, case-insensitive): ``email`` (required),
``name``, ``editions``, ``categories`` (``;``-separated), ``timezone``,
``status``; other tools' spellings (``Email Address``, ``E-mail``, ``First
Name`` + ``Last Name``) are read as these. Any other column is a subscriber
attribute, stored in the ``attributes`` JSON under its name in lower case with
``_`` for other characters. A column that is present is authoritative for
existing subscribers (an empty ``editions`` cell means "all editions", an empty
attribute cell removes that attribute); an absent column leaves the stored value
alone. An empty ``status`` means active for a new address and "keep" for a known
one.

Rules: the same address twice in the file (any case) counts once, the rest are
``duplicates``; an address that left (unsubscribed, bounced, or removed and so
on the suppression list) is never made active again unless ``resubscribe`` is
set, it counts as ``suppressed``; without ``skip_invalid`` one invalid row
aborts the import and nothing is written.

A row goes through five stages, each a module of :mod:`subscribers.importing`:
**read** (bytes → rows of cells; refuses what is not CSV UTF-8), **check**
(cells → valid rows ``(email, name, profile[, attributes])``, invalid lines
reported, duplicates in a chunk dropped; ``profiles`` numbers the repeating
cells), **hold back** (a bulk load only: rows the address filter may have seen
wait until the address index is rebuilt), **filter** (the suppression list), and
**write** (INSERT … SELECT over a chunk's JSON; known addresses become updates,
see ``update``). Read, check and hold back run in a background thread a couple
of chunks ahead of filter and write, which hold the database (``pipeline``).
Memory stays flat: only the current chunk, the two read ahead, the fixed-size
filter and a bounded number of held-back rows are held.

The write lock is held for the whole import (about 9 s per million rows on a
small machine); other writers wait for it up to the store's busy timeout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path

import sqlite_utils

from digest.errors import DigestError
from digest.store.database import iso, transaction, utcnow
from subscribers.importing.check import RowChecker
from subscribers.importing.holdback import HoldBack
from subscribers.importing.pipeline import ReadAhead, tuned_for_a_pipeline
from subscribers.importing.profiles import Profiles
from subscribers.importing.read import COLUMNS, Header, guard_cell, open_csv
from subscribers.importing.report import ImportReport, invalid_message
from subscribers.importing.write import Batch, Writer, pack
from subscribers.model import normalize_status
from subscribers.store import count_subscribers

__all__ = ["CHUNK", "COLUMNS", "ImportReport", "guard_cell", "import_csv"]

CHUNK = 10_000
# A bulk load (see subscribers.importing.holdback) pays from this many rows, into a list no
# bigger than the file. The rows are guessed from the file size: an address, a name, a few cells.
_BULK_MIN_ROWS = 50_000
_BYTES_PER_ROW = 64


class _Rollback(Exception):
    """Raised inside the transaction to undo a dry run or a failed import."""


def import_csv(
    db: sqlite_utils.Database,
    path: str | os.PathLike[str],
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    resubscribe: bool = False,
    known_editions: Iterable[str] | None = None,
    known_categories: Iterable[str] | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK,
    bulk: bool | None = None,
    status: str | None = None,
) -> ImportReport:
    """Import subscribers from a CSV file (see the module docstring); returns the report.

    ``progress`` is called with the number of bytes read since the last call.
    ``bulk`` chooses the bulk load (see :mod:`subscribers.importing.holdback`); None
    decides from the file's size and the list's. ``status`` is every row's status for a
    file that has no status column (a file that has one, or is Mailchimp's unsubscribed or
    cleaned export, is refused with it).
    Raises DigestError for an unusable file, or when a row is invalid and
    ``skip_invalid`` is false (nothing is written then).
    """
    path = Path(path)
    report = ImportReport(file=str(path), dry_run=dry_run)
    with open_csv(path, report.file) as source:
        header = source.header
        report.ignored_columns = header.ignored
        report.attribute_columns = [key for _position, key in header.attributes]
        report.consent_columns = [key for _position, key in header.consent]
        profiles = _profiles(header, report.file, status, known_editions, known_categories)
        checker = RowChecker(header, report, profiles)
        writer = Writer(
            db, report, header, resubscribe=resubscribe, at=iso(now or utcnow()), chunk_size=chunk_size
        )
        expected_rows = path.stat().st_size // _BYTES_PER_ROW
        counter, seen_bytes = source.counter, 0
        try:
            with transaction(db):
                seen = writer.start(bulk=_bulk_load(db, bulk, expected_rows), expected_rows=expected_rows)
                holdback = HoldBack(seen, profiles, chunk_size) if seen is not None else None
                del seen  # the filter is freed when the bulk load ends, before the index is rebuilt
                chunks = _batches(source.rows, checker, profiles, holdback, chunk_size, skip_invalid)
                with tuned_for_a_pipeline(), ReadAhead(chunks) as batches:
                    for batch in batches:
                        writer.write(batch)
                        if progress is not None:
                            progress(counter.count - seen_bytes)
                            seen_bytes = counter.count
                rollback = dry_run or (report.invalid and not skip_invalid)
                writer.finish(keep=not rollback)
                if rollback:
                    raise _Rollback
        except _Rollback:
            pass
    if report.invalid and not skip_invalid:
        raise DigestError(invalid_message(report))
    return report


def _profiles(
    header: Header,
    label: str,
    status: str | None,
    known_editions: Iterable[str] | None,
    known_categories: Iterable[str] | None,
) -> Profiles:
    """The parse caches and profile numbering for a file with ``header``."""
    return Profiles(
        tuple(header.columns.index(k) if k in header.columns else None for k in COLUMNS[2:]),
        known_editions=list(known_editions) if known_editions is not None else None,
        known_categories=list(known_categories) if known_categories is not None else None,
        status_kinds=tuple(kind for _p, kind in header.status_parts) or ("status",),
        status_names=header.status_names,
        default_status=_file_status(header, status, label),
    )


def _file_status(header: Header, status: str | None, label: str) -> str | None:
    """Every row's status when the file has no status column: ``status`` (--status), or the one
    Mailchimp's unsubscribed/cleaned export implies; None otherwise (rows are then active)."""
    if status is None:
        return header.file_status
    status = normalize_status(status)
    if header.status_names or header.file_status:
        export = "cleaned" if header.file_status == "bounced" else header.file_status
        given = ", ".join(header.status_names) or f"it is Mailchimp's {export} export"
        raise DigestError(
            f"{label}: the file says each row's status ({given}); --status is only for a file without one"
        )
    return status


def _bulk_load(db: sqlite_utils.Database, bulk: bool | None, expected_rows: int) -> bool:
    """``bulk`` when given; else True for a file of at least _BULK_MIN_ROWS (guessed) rows that is
    no smaller than the list (a small file never counts the list)."""
    if bulk is not None:
        return bulk
    return expected_rows >= _BULK_MIN_ROWS and expected_rows >= count_subscribers(db)


def _batches(
    reader: Iterator[list[str]],
    checker: RowChecker,
    profiles: Profiles,
    holdback: HoldBack | None,
    chunk_size: int,
    skip_invalid: bool,
) -> Iterator[Batch]:
    """The reader thread: read a chunk, check it, hold back what the bulk load must, pack it.

    It alone touches the parse caches, the profile numbering and the report's
    rows/invalid/duplicates. After an invalid row (without skip_invalid) nothing
    more is yielded, but the rest of the file is still checked so that every bad
    line is reported.
    """
    report = checker.report
    line = reader.line_num
    writing = True
    while rows := list(islice(reader, chunk_size)):
        profiles.bound()
        first_line, line = line + 1, reader.line_num
        parsed = checker.check(rows, first_line)
        report.count_statuses(parsed, profiles.values)
        if report.invalid and not skip_invalid:
            writing = False
        if not writing:
            continue
        if holdback is not None:
            parsed = holdback.hold(parsed)
        if parsed:
            yield pack(parsed, profiles)
        if holdback is not None and holdback.full:
            yield from _released(holdback, profiles)
            holdback = None
    if writing and holdback is not None:
        yield from _released(holdback, profiles)


def _released(holdback: HoldBack, profiles: Profiles) -> Iterator[Batch]:
    """The held-back rows as batches; the first tells the writer to rebuild the index."""
    for rows, end_bulk in holdback.release():
        yield pack(rows, profiles, end_bulk=end_bulk)
