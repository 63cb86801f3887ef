"""Import subscribers from a CSV file, streaming, in one all-or-nothing transaction.

Columns (first line, any order, case-insensitive): ``email`` (required),
``name``, ``editions``, ``categories`` (``;``-separated), ``timezone``,
``status``. A column that is present is authoritative for existing subscribers
(an empty ``editions`` cell means "all editions"); an absent column leaves the
stored value alone. An empty ``status`` means active for a new address and
"keep" for a known one.

Rules: the same address twice in the file (any case) counts once, the rest are
``duplicates``; an address that left (unsubscribed, bounced, or removed and so
on the suppression list) is never made active again unless ``resubscribe`` is
set, it counts as ``suppressed``; without ``skip_invalid`` one invalid row
aborts the import and nothing is written.

The hot path is tuned for large files (see bench/import.py). The file is read
in chunks; a chunk with nothing unusual is checked column by column: one
possessive regex pass over its joined addresses finds the few that are not
plain ASCII (those go to email-validator, one validation per distinct domain),
repeating cells are parsed once and their combinations numbered ("profiles"),
and duplicates are found with sets. A chunk with anything odd (a blank line, a
bad value) is redone row by row, which also gives the line numbers. Reading and
checking run in a background thread, a couple of chunks ahead of the writer
(the calling thread), which holds the database: a chunk reaches it as one JSON
object ({email: profile number + name}) and is written by one
INSERT OR IGNORE … SELECT over json_each, so SQLite works without the GIL while
the next chunk is parsed. Rows ignored because the address is already stored
become updates or duplicates; the consent events for the added rows are one
INSERT … SELECT. A file at least as large as the list is a bulk load: the
address index is dropped and built once at the end, a filter in the reader
standing in for it (see _Import). Memory stays flat: only the current chunk,
the two read ahead, the fixed-size filter and a bounded number of held-back
rows are held.

The write lock is held for the whole import (about 9 s per million rows on a
small machine); other writers wait for it up to the store's busy timeout.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import json
import os
import queue
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import compress, islice, repeat, starmap
from operator import add, itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from digest.errors import DigestError
from digest.store import iso, transaction, utcnow
from subscribers.model import (
    MAX_NAME,
    SPECIAL_TLDS,
    InvalidValue,
    attribute_key,
    email_hash,
    encode_labels,
    normalize_attribute,
    normalize_email,
    normalize_labels,
    normalize_name,
    normalize_status,
    normalize_timezone,
    simple_address,
    split_labels,
)
from subscribers.seen import SeenFilter
from subscribers.store import next_subscriber_id

COLUMNS = ("email", "name", "editions", "categories", "timezone", "status")
CHUNK = 10_000
MAX_REPORTED = 50  # invalid rows listed individually; the rest are counted
_SNIFF_BYTES = 65536
_SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx/ods (zip), xls
_GUARDED_START = "=+-@\t\r'"  # formula starts, and the apostrophe the guard itself adds
_CACHE_LIMIT = 10_000
_ACTIVE_STATES = ("active", "pending")
_STATUS_EVENT = {"unsubscribed": "unsubscribe", "bounced": "bounce", "pending": "status"}
# New rows are inserted OR IGNORE: one whose address is already stored is then handled as an
# update. The time is a literal (iso() output, checked), so a row carries only its six values.
_COLUMNS_SQL = (
    "email, name, editions, categories, timezone, status, source, attributes, created_at, updated_at,"
    " unsubscribed_at"
)
_VALUES_SQL = "coalesce(ST, 'active'), 'import', '{}', 'AT', 'AT', iif(ST = 'unsubscribed', 'AT', NULL)"
# A chunk reaches SQLite as one JSON object, {email: "PPPPPPname"}, written by one INSERT …
# SELECT over json_each: json.dumps runs in the reader thread and SQLite unpacks it without the
# GIL, so parsing the next chunk overlaps writing this one (executemany takes the GIL back for
# every row). The address is the key and the value a plain string (a fixed-width profile
# number, then the name), because taking rows apart with ->> costs the writer, which sets the
# pace, more than the reader pays to build the object. json_each's rowid counts the entries
# from 0, so row k of the chunk gets id base + k. The editions/categories/timezone/status of a
# row are one of few combinations ("profiles", a temp table).
_PROFILE_DIGITS = 6
_PROFILE_PREFIX = f"{{:0{_PROFILE_DIGITS}d}}".format
_ENTRY = f'{{0}}":"{{2:0{_PROFILE_DIGITS}d}}{{1}}'.format  # (email, name, profile) → email":"PPPPPPname
_PROFILE_SQL = "INSERT INTO temp.subscriber_import_profiles VALUES (?, ?, ?, ?, ?)"
_INSERT_CHUNK_SQL = (
    f"INSERT OR IGNORE INTO subscribers (id, {_COLUMNS_SQL})"
    f" SELECT ?1 + r.rowid, r.key, substr(r.value, {_PROFILE_DIGITS + 1}), p.ed, p.cat, p.tz,"
    f" {_VALUES_SQL.replace('ST', 'p.st')} FROM json_each(?2) AS r"
    " JOIN temp.subscriber_import_profiles AS p"
    f" ON p.id = CAST(substr(r.value, 1, {_PROFILE_DIGITS}) AS INTEGER)"
)
# With attribute columns, an entry's value is [PPPPPPname, attributes as a JSON text] (see _payload).
_INSERT_ATTRIBUTES_SQL = _INSERT_CHUNK_SQL.replace("r.value", "json_extract(r.value, '$[0]')").replace(
    "'import', '{}'", "'import', json_extract(r.value, '$[1]')"
)
# A bulk load (see _Import) pays from this many rows, into a list no bigger than the file. The
# rows are guessed from the file size: a line is an address, a name and a few short cells.
_BULK_MIN_ROWS = 50_000
_BYTES_PER_ROW = 64
_BULK_INDEXES = ("subscribers_email",)  # dropped, then rebuilt once (status grows in id order: cheap)
_DEFER_LIMIT = 100_000  # rows held for the index; beyond, the bulk load ends there (flat memory)
_PROFILE_LIMIT = 50_000  # distinct combinations kept; beyond, the table starts over (flat memory)
# The consent record of every added row, written by SQLite from the rows themselves.
_EVENTS_SQL = (
    "INSERT INTO events (subscriber_id, kind, source, detail, at)"
    " SELECT id, 'subscribe', 'import',"
    " CASE status WHEN 'active' THEN ?1 ELSE json_set(?2, '$.status', status) END, ?3"
    " FROM subscribers WHERE id > ?4"
)
_ISO = re.compile(r"[0-9T:+-]+")
# In names joined by line breaks: a control character or whitespace other than a plain space
# means normalize_name has work to do (or an error to raise).
# A block of lower-cased addresses, one per line: stops at the first line that is not a
# dot-atom of [a-z0-9_+-] @ LDH labels . alphabetic TLD (not a special-use one). Possessive,
# so it never backtracks. Length limits and hyphen rules are checked apart (_unusual_lines).
_PLAIN_LINES = re.compile(
    r"(?:[a-z0-9_+-]++(?:\.[a-z0-9_+-]++)*+@(?:[a-z0-9-]{1,63}+\.)++"
    rf"(?!(?:{'|'.join(SPECIAL_TLDS)})\n)[a-z]{{2,63}}+\n)*+"
)
_SUSPECT = ("--", ".-", "-.", "@-")  # a label starting or ending with "-", or IDNA-like "--"
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ODD_NAME_CHARS = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


@dataclass
class ImportReport:
    """What an import did (or, with dry_run, would do)."""

    file: str
    dry_run: bool = False
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid: int = 0
    invalid_rows: list[tuple[int, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    attribute_columns: list[str] = field(default_factory=list)  # kept as subscriber attributes

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        rows = [{"line": line, "error": error} for line, error in self.invalid_rows]
        return {**asdict(self), "invalid_rows": rows}


class _Rollback(Exception):
    """Raised inside the transaction to undo a dry run or a failed import."""


class _Batch(NamedTuple):
    """A chunk of parsed rows as the writer gets it."""

    rows: list[tuple]  # (email, name, profile)
    payload: str  # the rows as JSON for json_each (see _payload)
    new_profiles: list[tuple]  # (id, editions, categories, timezone, status) not yet stored
    forget_profiles: bool  # the profile numbering started over before this chunk
    end_bulk: bool = False  # rebuild the dropped indexes before writing these rows (see _Import)


class _ReadAhead:
    """Run a generator in a background thread, a couple of items ahead of its consumer.

    Parsing and checking a chunk is Python work; writing one is mostly SQLite's,
    which runs without the GIL. So the next chunks are parsed while the current
    one is written. At most ``depth`` items wait (memory stays flat). An
    exception in the generator is raised in the consumer; leaving the ``with``
    block early stops the thread.
    """

    _DONE = object()

    def __init__(self, items: Iterator[Any], depth: int = 2) -> None:
        self.items = items
        self.queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="subscriber-import-reader", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self.thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(entry, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _run(self) -> None:
        try:
            for item in self.items:
                if not self._put((True, item)):
                    return
            self._put((True, self._DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((False, exc))
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()

    def _consume(self) -> Iterator[Any]:
        while True:
            ok, item = self.queue.get()
            if not ok:
                raise item
            if item is self._DONE:
                return
            yield item


@contextlib.contextmanager
def _tuned_for_a_pipeline() -> Iterator[None]:
    """While the reader thread and the writer run: a 0.5 ms thread switch interval, no cyclic GC.

    The writer gives up the GIL on every SQLite call and needs it back to go on;
    with the default 5 ms interval it waited each time for the busy reader to be
    interrupted (measured against a Python thread that never blocks: 11.5 s for
    writes that take 5.4 s alone; at 0.5 ms, 5.6 s). The rows of a chunk are lists
    and tuples of strings, freed by reference counting; the cyclic collector only
    walked them (~3,700 collections, ~0.9 s of a 1M-row import). Both are
    process-wide settings: the first import to start saves them and the last to
    end puts them back.
    """
    global _tuning_users, _tuning_saved
    with _TUNING_LOCK:
        if _tuning_users == 0:
            _tuning_saved = (sys.getswitchinterval(), gc.isenabled())
            sys.setswitchinterval(min(_tuning_saved[0], 0.0005))
            gc.disable()
        _tuning_users += 1
    try:
        yield
    finally:
        with _TUNING_LOCK:
            _tuning_users -= 1
            if _tuning_users == 0:
                interval, collecting = _tuning_saved
                if collecting:
                    gc.enable()
                sys.setswitchinterval(interval)


_TUNING_LOCK = threading.Lock()
_tuning_users = 0
_tuning_saved = (0.005, True)


class _CountingReader(io.RawIOBase):
    """A raw reader that counts bytes, so progress follows the file without tell()."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n


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
) -> ImportReport:
    """Import subscribers from a CSV file (see the module docstring); returns the report.

    ``progress`` is called with the number of bytes read since the last call.
    ``bulk`` chooses the bulk load (see :class:`_Import`); None decides from the file's
    size and the list's.
    Raises DigestError for an unusable file, or when a row is invalid and
    ``skip_invalid`` is false (nothing is written then).
    """
    path = Path(path)
    label = str(path)
    report = ImportReport(file=label, dry_run=dry_run)
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise DigestError(f"{label}: cannot open ({exc.strerror})") from None
    with binary:
        _sniff(binary, label)
        counter = _CountingReader(binary)
        text = io.TextIOWrapper(io.BufferedReader(counter, 1 << 16), encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            header = _header(reader, label)
            report.ignored_columns = header.ignored
            report.attribute_columns = [key for _position, key in header.attributes]
            if header.name_parts is not None:
                reader = _JoinedNames(reader, header.name_parts, len(header.columns) - 1)
            job = _Import(
                db,
                report,
                header,
                skip_invalid=skip_invalid,
                resubscribe=resubscribe,
                known_editions=list(known_editions) if known_editions is not None else None,
                known_categories=list(known_categories) if known_categories is not None else None,
                at=iso(now or utcnow()),
                chunk_size=chunk_size,
            )
            expected_rows = path.stat().st_size // _BYTES_PER_ROW
            seen_bytes = 0
            try:
                with transaction(db):
                    job.start(bulk=bulk, expected_rows=expected_rows)
                    with _tuned_for_a_pipeline(), _ReadAhead(job.parse(reader)) as batches:
                        for batch in batches:
                            job.flush(batch)
                            if progress is not None:
                                progress(counter.count - seen_bytes)
                                seen_bytes = counter.count
                    rollback = dry_run or (report.invalid and not skip_invalid)
                    job.finish(keep=not rollback)
                    if rollback:
                        raise _Rollback
            except _Rollback:
                pass
        except UnicodeDecodeError as exc:
            line = getattr(reader, "line_num", 0) + 1
            raise DigestError(
                f"{label}: line {line}: not UTF-8 text ({exc.reason}); save the file as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            raise DigestError(f"{label}: line {reader.line_num}: not valid CSV ({exc})") from None
    if report.invalid and not skip_invalid:
        raise DigestError(_invalid_message(report))
    return report


def _invalid_message(report: ImportReport) -> str:
    shown = "; ".join(f"line {line}: {error}" for line, error in report.invalid_rows[:5])
    more = f"; and {report.invalid - 5} more" if report.invalid > 5 else ""
    rows = "row" if report.invalid == 1 else "rows"
    return (
        f"{report.file}: {report.invalid} invalid {rows}, nothing imported: {shown}{more}. "
        "Fix them, or rerun with --skip-invalid to import the rest"
    )


def _sniff(binary: io.BufferedReader, label: str) -> None:
    """Refuse binary files (spreadsheets, archives) and non-UTF-8 text with one clear line."""
    head = binary.read(_SNIFF_BYTES)
    binary.seek(0)
    if not head.strip():
        raise DigestError(
            f"{label}: the file is empty; the first line must name the columns, e.g. email,name"
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DigestError(f"{label}: the file is UTF-16; save it as CSV UTF-8")
    if head.startswith(_SPREADSHEET_MAGIC):
        raise DigestError(f"{label}: not a CSV text file (looks like a spreadsheet: export it as CSV UTF-8)")
    nuls = head.count(b"\x00")
    if nuls > 2 and nuls > len(head) // 100:  # a stray NUL is a bad row; many mean binary data
        raise DigestError(f"{label}: not a CSV text file (it contains binary data)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        raise DigestError(
            f"{label}: line {line}: not UTF-8 text (byte 0x{head[exc.start]:02x}); save the file as CSV UTF-8"
        ) from None


# Header spellings of other tools (after lower-casing and turning "-", "_" and spaces into one
# space) and the column each one means.
_HEADER_ALIASES = {
    "e mail": "email",
    "email address": "email",
    "e mail address": "email",
    "mail": "email",
    "full name": "name",
    "first name": "first name",
    "firstname": "first name",
    "given name": "first name",
    "last name": "last name",
    "lastname": "last name",
    "surname": "last name",
    "family name": "last name",
    "time zone": "timezone",
}
_HEADER_SPACES = re.compile(r"[\s_-]+")


class _Header(NamedTuple):
    """The first line, read: canonical column names by position, and what else it holds."""

    columns: list[str]  # COLUMNS names where known; "attribute:KEY" or "" (ignored) elsewhere
    attributes: list[tuple[int, str]]  # (position, key) of the columns kept as attributes
    name_parts: tuple[int | None, int | None] | None  # first/last name positions, joined into "name"
    ignored: list[str]  # columns neither known nor usable as attributes


def _header(reader: Any, label: str) -> _Header:
    """Read the first line: known columns (any case, other tools' spellings), attributes, the rest."""
    try:
        first = next(reader)
    except StopIteration:
        first = []
    spelled = [_HEADER_SPACES.sub(" ", cell.strip().lower()) for cell in first]
    canonical = [_HEADER_ALIASES.get(c, c) for c in spelled]
    if "email" not in canonical:
        found = ", ".join(repr(c[:30]) for c in first[:6]) or "nothing"
        hint = ""
        if len(first) == 1 and any(sep in first[0] for sep in ";\t"):
            hint = " (separate columns with commas)"
        raise DigestError(
            f"{label}: no 'email' column in the first line (found {found}){hint}; "
            f"the first line must name the columns, e.g. {','.join(COLUMNS)}"
        )
    duplicated = sorted({c for c in canonical if c and canonical.count(c) > 1})
    if duplicated:
        raise DigestError(f"{label}: column {duplicated[0]!r} appears twice in the first line")
    parts = ("first name", "last name")
    name_parts = None
    if "name" not in canonical and any(p in canonical for p in parts):
        name_parts = tuple(canonical.index(p) if p in canonical else None for p in parts)
    columns: list[str] = []
    attributes: list[tuple[int, str]] = []
    ignored: list[str] = []
    keys: dict[str, str] = {}
    for position, (cell, name) in enumerate(zip(first, canonical, strict=True)):
        if name in COLUMNS or (name_parts is not None and name in parts):
            columns.append(name)
            continue
        key = attribute_key(cell)
        if not key:
            columns.append("")
            ignored.append(cell)
            continue
        if key in keys:
            raise DigestError(
                f"{label}: columns {keys[key]!r} and {cell!r} are both the attribute {key!r}; rename one"
            )
        keys[key] = cell
        columns.append(f"attribute:{key}")
        attributes.append((position, key))
    if name_parts is not None:
        columns.append("name")  # made by _JoinedNames at the end of every row
    return _Header(columns, attributes, name_parts, ignored)


class _JoinedNames:
    """Rows with "First Name" and "Last Name" cells joined into a name cell at the end.

    A row with the wrong number of fields is passed on as it is (the checks report it).
    """

    def __init__(self, reader: Any, parts: tuple[int | None, int | None], width: int) -> None:
        self.reader = reader
        self.parts = [p for p in parts if p is not None]
        self.width = width

    @property
    def line_num(self) -> int:
        """The reader's line number (a quoted cell may span lines)."""
        return self.reader.line_num

    def __iter__(self) -> _JoinedNames:
        return self

    def __next__(self) -> list[str]:
        row = next(self.reader)
        if len(row) == self.width:
            row.append(" ".join(part for p in self.parts if (part := row[p].strip())))
        return row


def guard_cell(cell: str) -> str:
    """For export: a cell that a spreadsheet would run as a formula gets a leading apostrophe.

    A cell that already starts with an apostrophe gets one too, so that
    :func:`_unescape` gives back exactly what was stored.
    """
    return "'" + cell if cell[:1] and cell[0] in _GUARDED_START else cell


def _unescape(cell: str) -> str:
    """Undo :func:`guard_cell` (the leading apostrophe before a formula character or another one)."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _GUARDED_START:
        return cell[1:]
    return cell


def _unusual_lines(joined: str, lowered: str, lines: list[str]) -> list[int]:
    """Indices of ``lines`` (``joined`` by line breaks; ``lowered``) that are not plain addresses.

    "Plain" is model.SIMPLE_ADDRESS, checked for the whole block at once: one
    possessive regex pass over the lower-cased text (restarted after each line
    it stops at), substring searches for what that pattern leaves out (hyphens
    at label edges, "--", over-long local parts) and a scan for non-ASCII.
    """
    low = lowered + "\n"
    end = len(low)
    positions: list[int] = []
    pos = 0
    while pos < end:
        stop = _PLAIN_LINES.match(low, pos).end()
        if stop >= end:
            break
        positions.append(stop)  # the start of a line the pattern stopped at
        pos = low.find("\n", stop) + 1
    for needle in _SUSPECT:
        start = low.find(needle)
        while start != -1:
            positions.append(start)
            start = low.find(needle, low.find("\n", start))
    unusual = set(_line_indices(low, sorted(positions)))
    if not joined.isascii():
        # Checked on the original text: lower() maps a few non-ASCII letters to ASCII ones.
        unusual.update(_line_indices(joined, [m.start() for m in _NON_ASCII.finditer(joined)]))
    if max(map(len, lines)) > 65:  # only then can a local part be over 64 characters
        unusual.update(i for i, line in enumerate(lines) if line.rfind("@") > 64)
    return sorted(unusual)


def _line_indices(text: str, positions: list[int]) -> Iterator[int]:
    """The line index of each (sorted) position in ``text``."""
    line = last = 0
    for position in positions:
        line += text.count("\n", last, position)
        last = position
        yield line


class _Import:
    """State of one import run: column positions, parse caches, counters.

    Bulk load: inserting a large file into a small list, most of the time goes to
    keeping the unique address index in order row by row. So (when ``start`` is
    told to) the subscribers' indexes are dropped inside the transaction and
    rebuilt once after the last row, and the reader thread keeps a SeenFilter of
    every address stored or read so far instead. A row the filter has never seen
    is new and is inserted at once; a "maybe" (an address already stored, a
    duplicate from an earlier chunk, or a rare false alarm) is held back and
    written after the rebuild by the ordinary path, where the index tells updates
    and duplicates apart as it always does. Held-back rows keep their file order,
    so the first occurrence of an address still wins; but a new address held back
    by a false alarm (about 3% of rows) gets a later id than the rows after it in
    the file, so ids follow the file only in the ordinary path. Past ``_DEFER_LIMIT`` held
    rows, the indexes are rebuilt there and the rest of the file goes the
    ordinary way. A rollback (dry run, invalid rows) puts the indexes back with
    everything else.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        report: ImportReport,
        header: _Header,
        *,
        skip_invalid: bool,
        resubscribe: bool,
        known_editions: list[str] | None,
        known_categories: list[str] | None,
        at: str,
        chunk_size: int,
    ) -> None:
        self.db = db
        self.report = report
        self.width = len(header.columns)
        self.file_width = self.width - (header.name_parts is not None)  # without the joined name
        self.pos = {name: header.columns.index(name) if name in header.columns else None for name in COLUMNS}
        # Columns kept as attributes: a row is then (email, name, profile, attributes JSON).
        self.attributes = header.attributes
        self.attribute_keys = {key for _position, key in header.attributes}
        self.label_positions = tuple(self.pos[k] for k in COLUMNS[2:])
        present = [p for p in self.label_positions if p is not None]
        self.label_getter = itemgetter(*present) if present else None
        self.skip_invalid = skip_invalid
        self.resubscribe = resubscribe
        self.known_editions = known_editions
        self.known_categories = known_categories
        self.at = at
        self.chunk_size = chunk_size
        if _PROFILE_LIMIT + chunk_size >= 10**_PROFILE_DIGITS:
            raise ValueError(f"chunk_size {chunk_size} is too large for {_PROFILE_DIGITS}-digit profiles")
        if not _ISO.fullmatch(at):
            raise ValueError(f"not an iso() time: {at!r}")
        insert_sql = _INSERT_ATTRIBUTES_SQL if self.attributes else _INSERT_CHUNK_SQL
        self.insert_sql = insert_sql.replace("'AT'", f"'{at}'")
        self.detail = json.dumps({"file": Path(report.file).name}, ensure_ascii=False)
        self.active_detail = json.dumps(
            {"file": Path(report.file).name, "status": "active"}, ensure_ascii=False
        )
        # Cells that repeat across rows (editions, categories, zone, status) are parsed once,
        # and each distinct combination of their values is a numbered profile.
        self.caches: dict[str, dict[str, Any]] = {k: {} for k in COLUMNS[2:]}
        self.bad: dict[str, set[str]] = {k: set() for k in COLUMNS[2:]}
        self.profile_by_cells: dict[str | tuple[str, ...], int] = {}
        self.profile_by_values: dict[tuple[Any, ...], int] = {}
        self.profiles: list[tuple[Any, ...]] = []  # profile id → (editions, categories, timezone, status)
        self.new_profiles = 0  # profiles[-new_profiles:] not handed to the writer yet
        self.forget_profiles = False
        # The writer's side (main thread): the profiles stored in the temp table, and the
        # duplicates it finds (rows of this file matching an address an earlier chunk wrote).
        self.stored_profiles: dict[int, tuple[Any, ...]] = {}
        self.later_duplicates = 0
        self.start_max = 0
        self.next_id = 1
        self.check_suppressions = False
        self.lifted: set[str] = set()  # addresses of this chunk whose suppression --resubscribe lifted
        # Bulk load: the reader's filter and held-back rows (email, name, profile values); the
        # writer's dropped index definitions, to rebuild.
        self.seen: SeenFilter | None = None
        self.deferred: list[tuple] = []  # (email, name, profile values[, attributes])
        self.dropped_indexes: list[str] = []

    # ------------------------------------------------------------ set-up
    def start(self, *, bulk: bool | None = None, expected_rows: int = 0) -> None:
        """Prepare the writer (inside the transaction, before the reader starts).

        ``bulk`` True/False forces the bulk load on or off; None chooses it for a file of
        at least ``_BULK_MIN_ROWS`` (``expected_rows``, guessed) that is no smaller than
        the list.
        """
        db = self.db
        # Row k of a chunk gets id base + json_each's rowid: that must count entries from 0.
        probe = db.execute("""SELECT group_concat(rowid, ',') FROM json_each('{"a":"","b":"","c":""}')""")
        if probe.fetchone()[0] != "0,1,2":
            raise DigestError(
                f"{self.report.file}: this SQLite ({sqlite3.sqlite_version}) numbers json_each rows"
                " differently; nothing was imported. Please report it"
            )
        self.start_max = int(db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0])
        self.next_id = next_subscriber_id(db)
        self.check_suppressions = db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone() is not None
        # Known subscribers already matched by an earlier row of this file (later ones are duplicates).
        db.execute("CREATE TEMP TABLE IF NOT EXISTS subscriber_import_seen (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.subscriber_import_seen")
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS subscriber_import_profiles"
            " (id INTEGER PRIMARY KEY, ed, cat, tz, st)"
        )
        db.execute("DELETE FROM temp.subscriber_import_profiles")
        if bulk is None:  # (a small file never counts the list)
            bulk = expected_rows >= _BULK_MIN_ROWS and expected_rows >= int(
                db.execute("SELECT count(*) FROM subscribers").fetchone()[0]
            )
        if bulk:
            self._begin_bulk(expected_rows)

    def _begin_bulk(self, expected_rows: int) -> None:
        """Fill the filter with the stored addresses and drop the indexes (see the class docstring)."""
        db = self.db
        marks = ",".join("?" * len(_BULK_INDEXES))
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'subscribers'"
            f" AND name IN ({marks})",
            _BULK_INDEXES,
        ).fetchall()
        if "subscribers_email" not in {name for name, _sql in indexes}:
            return  # not the schema this was written for; the ordinary path is always right
        # Stored addresses are lower-cased (normalize_email); lower() again covers older rows. Equal
        # under the index's NOCASE means equal here, so the filter misses none of them.
        seen = SeenFilter(self.start_max + expected_rows)  # the highest id: at least the stored count
        cursor = db.execute("SELECT email FROM subscribers")
        while emails := cursor.fetchmany(CHUNK):
            seen.add(email.lower() for (email,) in emails)
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        self.dropped_indexes = [sql for _name, sql in indexes]
        self.seen = seen

    def _end_bulk(self) -> None:
        """Rebuild the dropped indexes (the writer, once every row the filter let through is in)."""
        sqls, self.dropped_indexes = self.dropped_indexes, []
        db = self.db
        threads = db.execute("PRAGMA threads").fetchone()[0]
        db.execute("PRAGMA threads = 2")  # the reader is done: its core helps SQLite sort
        try:
            for sql in sqls:
                db.execute(sql)
        except sqlite3.IntegrityError as exc:
            # Cannot happen unless the filter is wrong; the transaction is rolled back.
            raise DigestError(
                f"{self.report.file}: the address index could not be rebuilt ({exc}); nothing was"
                " imported. This is a bug in digest: please report it"
            ) from None
        finally:
            db.execute(f"PRAGMA threads = {int(threads)}")

    def finish(self, *, keep: bool = True) -> None:
        """End the writer's side; ``keep`` is false when the transaction is about to be rolled back."""
        if keep and self.dropped_indexes:
            # Not reached today (a bulk load always ends with an end_bulk batch), but whatever
            # changes, a commit must never go out without the address index.
            self._end_bulk()
        self.report.duplicates += self.later_duplicates
        self.later_duplicates = 0
        self.db.execute("DROP TABLE IF EXISTS temp.subscriber_import_seen")
        self.db.execute("DROP TABLE IF EXISTS temp.subscriber_import_profiles")

    # ------------------------------------------------------------ parsing
    def _cell(self, kind: str, raw: str) -> Any:
        """Parse a repeating cell (editions, categories, timezone, status) once; raises InvalidValue."""
        cache = self.caches[kind]
        try:
            value = cache[raw]
        except KeyError:
            value = self._remember(kind, raw)
        if raw in self.bad[kind]:
            raise InvalidValue(str(value))  # a fresh one: re-raising the cached one grows its traceback
        return value

    def _remember(self, kind: str, raw: str) -> Any:
        cache = self.caches[kind]
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()  # free text in a column: bound the memory
        try:
            value = self._parse_cell(kind, _unescape(raw))
        except InvalidValue as exc:
            # A copy without a traceback: the caught one refers to this frame, which refers to
            # it, a cycle only the cyclic GC frees, and that is off while the import runs.
            value = InvalidValue(str(exc))
            self.bad[kind].add(raw)
        cache[raw] = value
        return value

    def _parse_cell(self, kind: str, raw: str) -> Any:
        if kind == "editions":
            return encode_labels(
                normalize_labels(split_labels(raw), what="edition", known=self.known_editions)
            )
        if kind == "categories":
            return encode_labels(
                normalize_labels(split_labels(raw), what="category", known=self.known_categories)
            )
        if kind == "timezone":
            return normalize_timezone(raw)
        return normalize_status(raw) if raw.strip() else None

    def _profile(self, values: tuple[Any, ...]) -> int:
        """The number of a combination of parsed (editions, categories, timezone, status)."""
        number = self.profile_by_values.get(values)
        if number is None:
            number = self.profile_by_values[values] = len(self.profiles)
            self.profiles.append(values)
            self.new_profiles += 1
        return number

    def _profile_of_cells(self, key: str | tuple[str, ...]) -> int:
        """The profile of a row's label cells as ``label_getter`` gives them (raises InvalidValue)."""
        present = iter((key,) if isinstance(key, str) else key)
        values = tuple(
            None if p is None else self._cell(kind, next(present))
            for kind, p in zip(COLUMNS[2:], self.label_positions, strict=True)
        )
        number = self.profile_by_cells[key] = self._profile(values)
        return number

    def parse(self, reader: Any) -> Iterator[_Batch]:
        """Yield chunks of valid rows ``(email, name, profile)`` as batches for ``flush``.

        Runs in the reader thread (see _ReadAhead): it alone touches the parse
        caches, the profile numbering and the report's rows/invalid/duplicates.

        Absent columns give the value a new subscriber gets ('' / None); ``_update``
        knows from the header which columns were present. Status None = not given.
        After an invalid row (without skip_invalid) nothing more is yielded, but
        the rest of the file is still checked so that every bad line is reported.
        """
        line = reader.line_num
        writing = True
        while rows := list(islice(reader, self.chunk_size)):
            self._bound_profiles()
            first_line, line = line + 1, reader.line_num
            parsed = self._fast(rows)
            if parsed is None:
                parsed = self._slow(rows, first_line)
                if self.report.invalid and not self.skip_invalid:
                    writing = False
            if not writing:
                continue
            if self.seen is not None:
                parsed = self._hold_back(self.seen, parsed)
            if parsed:
                yield self._batch(parsed)
            if self.seen is not None and len(self.deferred) > _DEFER_LIMIT:
                yield from self._held_back_batches()
        if writing and self.seen is not None:
            yield from self._held_back_batches()

    def _bound_profiles(self) -> None:
        if len(self.profiles) > _PROFILE_LIMIT:  # free text in those columns: start over
            self.profile_by_cells.clear()
            self.profile_by_values.clear()
            self.profiles.clear()
            self.new_profiles = 0
            self.forget_profiles = True

    def _hold_back(self, seen: SeenFilter, parsed: list[tuple]) -> list[tuple]:
        """Bulk load: keep the rows whose address the filter may have seen for after the rebuild."""
        maybe = seen.check_add(list(map(itemgetter(0), parsed)))
        if not maybe:
            return parsed
        profiles = self.profiles
        self.deferred.extend(
            (email, name, profiles[p], *extra) for email, name, p, *extra in map(parsed.__getitem__, maybe)
        )
        keep = bytearray(b"\x01") * len(parsed)
        for i in maybe:
            keep[i] = 0
        return list(compress(parsed, keep))

    def _held_back_batches(self) -> Iterator[_Batch]:
        """End the bulk load: the first batch tells the writer to rebuild the indexes.

        Held-back rows come from many chunks, so one address can be there twice; like a chunk
        of the file, a batch holds each address once (a repeat starts the next batch).
        """
        self.seen = None
        held, self.deferred = self.deferred, []
        rows: list[tuple] = []
        emails: set[str] = set()
        end_bulk = True
        for email, name, values, *extra in held:
            if len(rows) >= self.chunk_size or email in emails:
                yield self._batch(rows, end_bulk=end_bulk)
                rows, emails, end_bulk = [], set(), False
            if not rows:
                self._bound_profiles()
            rows.append((email, name, self._profile(values), *extra))
            emails.add(email)
        if rows or end_bulk:
            yield self._batch(rows, end_bulk=end_bulk)

    def _batch(self, rows: list[tuple], *, end_bulk: bool = False) -> _Batch:
        """Package a chunk with the profiles it is the first to use (the writer stores them)."""
        start = len(self.profiles) - self.new_profiles
        new = [(start + i, *values) for i, values in enumerate(self.profiles[start:])]
        forget = self.forget_profiles
        self.new_profiles = 0
        self.forget_profiles = False
        return _Batch(rows, _payload(rows), new, forget, end_bulk)

    def _fast(self, rows: list[list[str]]) -> list[tuple] | None:
        """Column-wise checks for a chunk with nothing unusual; None sends it to ``_slow``.

        The addresses of the chunk are checked by one regex pass over their
        joined text; only the few that are not plain ASCII go to email-validator.
        """
        n = len(rows)
        if len(rows[0]) != self.width or len(set(map(len, rows))) != 1:
            return None  # a blank line or a row with the wrong number of fields
        raw_emails = list(map(itemgetter(self.pos["email"]), rows))
        joined = "\n".join(raw_emails)
        if joined.count("\n") != n - 1:
            return None  # a line break inside an address
        if max(map(len, raw_emails)) > 254:
            return None
        lowered = joined.lower()
        emails = lowered.split("\n")
        for i in _unusual_lines(joined, lowered, raw_emails):
            try:
                emails[i] = normalize_email(_unescape(raw_emails[i]))
            except InvalidValue:
                return None
        p_name = self.pos["name"]
        names: Iterable[str] = repeat("")
        if p_name is not None:
            names = list(map(itemgetter(p_name), rows))
            joined = "\n".join(names)
            if (
                joined.count("\n") != n - 1
                or _ODD_NAME_CHARS.search(joined)
                or "  " in joined
                or " \n" in joined
                or "\n " in joined
                or "\n'" in joined
                or joined[:1] in (" ", "'")
                or joined[-1:] == " "
                or max(map(len, names)) > MAX_NAME
            ):
                try:
                    names = [normalize_name(_unescape(name)) if name else "" for name in names]
                except InvalidValue:
                    return None
        # The present label cells of each row as one key (a str for one column, else a tuple).
        cells = list(map(self.label_getter, rows)) if self.label_getter else [""] * n
        try:
            profiles = list(map(self.profile_by_cells.__getitem__, cells))
        except KeyError:
            try:
                for key in set(cells).difference(self.profile_by_cells):
                    self._profile_of_cells(key)
            except InvalidValue:
                return None
            profiles = list(map(self.profile_by_cells.__getitem__, cells))
        if self.attributes:
            try:
                extras = list(map(self._attributes_of, rows))
            except InvalidValue:
                return None
            parsed = list(zip(emails, names, profiles, extras, strict=False))  # names may be repeat('')
        else:
            parsed = list(zip(emails, names, profiles, strict=False))
        self.report.rows += n
        if len(set(emails)) != n:
            parsed = self._dedupe(parsed)
        return parsed

    def _dedupe(self, parsed: list[tuple]) -> list[tuple]:
        """Keep the first row for each address; count the others as duplicates."""
        n = len(parsed)
        first = dict(zip(reversed([row[0] for row in parsed]), range(n - 1, -1, -1), strict=True))
        self.report.duplicates += n - len(first)
        return [parsed[i] for i in sorted(first.values())]

    def _slow(self, rows: list[list[str]], first_line: int) -> list[tuple]:
        """Row by row, with line numbers: blank lines, wrong field counts, invalid values."""
        report = self.report
        width = self.width
        p_email = self.pos["email"]
        p_name, p_ed, p_cat, p_tz, p_st = (self.pos[k] for k in COLUMNS[1:])
        cell = self._cell
        parsed: list[tuple] = []
        line = first_line
        for row in rows:
            row_line = line
            line += 1 + sum(value.count("\n") for value in row)  # a quoted cell may span lines
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            report.rows += 1
            try:
                if len(row) != width:
                    fields = "1 field" if len(row) == 1 else f"{len(row)} fields"
                    raise InvalidValue(f"{fields}, but the first line names {self.file_width} columns")
                raw = _unescape(row[p_email])
                email = simple_address(raw) or normalize_email(raw)
                name = "" if p_name is None else normalize_name(_unescape(row[p_name]))
                profile = self._profile(
                    (
                        None if p_ed is None else cell("editions", row[p_ed]),
                        None if p_cat is None else cell("categories", row[p_cat]),
                        None if p_tz is None else cell("timezone", row[p_tz]),
                        None if p_st is None else cell("status", row[p_st]),
                    )
                )
                extra = (self._attributes_of(row),) if self.attributes else ()
            except InvalidValue as exc:
                report.invalid += 1
                if len(report.invalid_rows) < MAX_REPORTED:
                    report.invalid_rows.append((row_line, str(exc)))
                continue
            parsed.append((email, name, profile, *extra))
        return self._dedupe(parsed)

    def _attributes_of(self, row: list[str]) -> str:
        """A row's attribute cells as a JSON object (empty cells left out); raises InvalidValue."""
        found = {}
        for position, key in self.attributes:
            cell = row[position]
            if cell and (value := normalize_attribute(_unescape(cell))):
                found[key] = value
        return json.dumps(found, ensure_ascii=False) if found else "{}"

    # ------------------------------------------------------------ writing
    def flush(self, batch: _Batch) -> None:
        """Insert the chunk's new addresses; rows that collide with known ones become updates.

        The common case (all new) is one INSERT OR IGNORE per chunk plus one
        INSERT … SELECT for the consent events; only when rows were ignored are
        they looked up to tell updates from duplicates.
        """
        db = self.db
        report = self.report
        if batch.end_bulk:
            self._end_bulk()
        if batch.forget_profiles:
            db.execute("DELETE FROM temp.subscriber_import_profiles")
            self.stored_profiles.clear()
        if batch.new_profiles:
            db.conn.executemany(_PROFILE_SQL, batch.new_profiles)
            self.stored_profiles.update((row[0], row[1:]) for row in batch.new_profiles)
        chunk, payload = batch.rows, batch.payload
        self.lifted = set()
        if not chunk:
            return
        if self.check_suppressions:
            kept = self._drop_suppressed(chunk)
            if not kept:
                return
            if kept is not chunk:
                chunk, payload = kept, _payload(kept)
        # Row k of the chunk (from 0) becomes id base + k: above every id ever given out (removed
        # subscribers' too), and an ignored row is simply the id that did not appear.
        base = self.next_id
        inserted = db.execute(self.insert_sql, [base, payload]).rowcount
        ignored: list[tuple] = []
        if inserted < len(chunk):
            # The address was stored already (before this import, or by an earlier chunk).
            # The ids that did not appear, counted in SQL (re-reading the JSON costs more).
            missing = db.execute(
                "WITH RECURSIVE k(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM k WHERE x < ?2 - 1)"
                " SELECT x FROM k WHERE NOT EXISTS (SELECT 1 FROM subscribers WHERE id = ?1 + x)",
                [base, len(chunk)],
            ).fetchall()
            ignored = [chunk[x] for (x,) in missing]
        if inserted:
            db.execute(_EVENTS_SQL, [self.active_detail, self.detail, self.at, base - 1])
            if self.lifted:
                # As add_subscriber records it: this consent overrode a suppression.
                marks = ",".join("?" * len(self.lifted))
                db.execute(
                    "UPDATE events SET detail = json_set(detail, '$.was_suppressed', json('true'))"
                    " WHERE kind = 'subscribe' AND subscriber_id IN"
                    f" (SELECT id FROM subscribers WHERE id >= ? AND email IN ({marks}))",
                    [base, *self.lifted],
                )
            report.added += inserted
            if inserted == len(chunk):  # all new: the last row got base + len - 1
                self.next_id = base + inserted
            else:
                self.next_id = db.execute("SELECT max(id) FROM subscribers").fetchone()[0] + 1
        if ignored:
            self._known_rows(ignored)

    def _drop_suppressed(self, chunk: list[tuple]) -> list[tuple]:
        """Leave out addresses on the suppression list (or, with resubscribe, lift their suppression)."""
        hashes = {email_hash(row[0]): row[0] for row in chunk}
        marks = ",".join("?" * len(hashes))
        found = [
            r[0]
            for r in self.db.execute(
                f"SELECT email_hash FROM suppressions WHERE email_hash IN ({marks})", list(hashes)
            )
        ]
        if not found:
            return chunk
        if self.resubscribe:
            self.db.conn.executemany("DELETE FROM suppressions WHERE email_hash = ?", [(h,) for h in found])
            self.lifted = {hashes[h] for h in found}
            return chunk
        self.report.suppressed += len(found)
        suppressed = {hashes[h] for h in found}
        return [row for row in chunk if row[0] not in suppressed]

    def _known_rows(self, rows: list[tuple]) -> None:
        """Rows whose address is already stored: an update of a known subscriber, or a duplicate."""
        db = self.db
        marks = ",".join("?" * len(rows))
        existing = {
            r[1].lower(): r
            for r in db.execute(
                "SELECT s.id, s.email, s.name, s.status, s.editions, s.categories, s.timezone,"
                " seen.id IS NOT NULL, s.attributes"
                " FROM subscribers AS s LEFT JOIN temp.subscriber_import_seen AS seen ON seen.id = s.id"
                f" WHERE s.email IN ({marks})",
                [row[0] for row in rows],
            )
        }
        seen_ids: list[tuple[int]] = []
        for email, name, profile, *extra in rows:
            current = existing.get(email)
            if current is None or current[0] > self.start_max or current[7]:
                self.later_duplicates += 1  # an earlier row of this file added or updated it
                continue
            seen_ids.append((current[0],))
            self._update(
                current,
                name,
                *self.stored_profiles[profile],
                attributes=extra[0] if extra else None,
                lifted=email in self.lifted,
            )
        if seen_ids:
            db.conn.executemany("INSERT INTO temp.subscriber_import_seen (id) VALUES (?)", seen_ids)

    def _update(
        self,
        current: tuple,
        name: Any,
        editions: Any,
        categories: Any,
        zone: Any,
        status: str | None,
        *,
        attributes: str | None = None,
        lifted: bool = False,
    ) -> None:
        """Apply a file row to a known subscriber and record what changed. ``lifted``: this
        import (--resubscribe) took the address off the suppression list, which the consent
        record must say even when nothing else changed."""
        report = self.report
        sid, _email, old_name, old_status, old_editions, old_categories, old_zone, _seen, old_attrs = current
        if status and status in _ACTIVE_STATES and old_status not in _ACTIVE_STATES and not self.resubscribe:
            report.suppressed += 1  # would bring back someone who left
            return
        present = self.pos
        changes: dict[str, Any] = {}
        if present["name"] is not None and name != old_name:
            changes["name"] = name
        if present["editions"] is not None and editions != old_editions:
            changes["editions"] = editions
        if present["categories"] is not None and categories != old_categories:
            changes["categories"] = categories
        if present["timezone"] is not None and zone != old_zone:
            changes["timezone"] = zone
        if attributes is not None:
            # The file's attribute columns are authoritative (an empty cell removes the key);
            # keys from other columns stay.
            old = json.loads(old_attrs or "{}")
            merged = {k: v for k, v in old.items() if k not in self.attribute_keys}
            merged.update(json.loads(attributes))
            if merged != old:
                changes["attributes"] = json.dumps(merged, ensure_ascii=False)
        new_status = status if status and status != old_status else None
        if not changes and new_status is None:
            report.unchanged += 1
            if lifted:
                self._write_events(
                    sid, [("suppression_lifted", {"status": old_status, "was_suppressed": True})]
                )
            return
        report.updated += 1
        at = self.at
        assignments = dict(changes)
        events: list[tuple[str, dict]] = []
        if new_status is not None:
            assignments["status"] = new_status
            if new_status == "unsubscribed":
                assignments["unsubscribed_at"] = at
            elif new_status == "active" and old_status == "pending":
                assignments["confirmed_at"] = at
            elif new_status == "active":
                assignments["unsubscribed_at"] = None
            if new_status == "active":
                kind = "confirm" if old_status == "pending" else "resubscribe"
            else:
                kind = _STATUS_EVENT[new_status]
            events.append((kind, {"from": old_status, **({"was_suppressed": True} if lifted else {})}))
        if changes:
            detail: dict[str, Any] = {}
            for key, old in (
                ("editions", old_editions),
                ("categories", old_categories),
                ("timezone", old_zone),
            ):
                if key in changes:
                    detail[key] = {"from": _decoded(key, old), "to": _decoded(key, changes[key])}
            for key in ("name", "attributes"):
                if key in changes:
                    detail[key] = "changed"
            events.append(("preferences", detail))
        if lifted and new_status is None:
            events.append(("suppression_lifted", {"status": old_status, "was_suppressed": True}))
        sets = ", ".join(f"{k} = ?" for k in assignments)
        self.db.execute(
            f"UPDATE subscribers SET {sets}, updated_at = ? WHERE id = ?", [*assignments.values(), at, sid]
        )
        self._write_events(sid, events)

    def _write_events(self, sid: int, events: list[tuple[str, dict]]) -> None:
        at = self.at
        file_detail = json.loads(self.detail)
        self.db.conn.executemany(
            "INSERT INTO events (subscriber_id, kind, source, detail, at) VALUES (?, ?, 'import', ?, ?)",
            [
                (sid, kind, json.dumps({**detail, **file_detail}, ensure_ascii=False), at)
                for kind, detail in events
            ],
        )


def _payload(rows: list[tuple]) -> str:
    """A chunk's rows (email, name, profile) as the JSON object _INSERT_CHUNK_SQL reads.

    Each address must be there once (chunks are deduplicated before this). Built by
    formatting when no cell needs escaping, which is nearly always: a validated
    address or name holds no control character (normalize_email/normalize_name refuse
    them), and an address no quote or backslash, so only a name's quotes (counted) and
    backslashes can need it. A third of what json.dumps costs, in the reader thread.
    """
    if not rows:
        return "{}"
    if len(rows[0]) > 3:  # with attributes: see _INSERT_ATTRIBUTES_SQL
        return json.dumps(
            {email: [_PROFILE_PREFIX(profile) + name, extra] for email, name, profile, extra in rows},
            ensure_ascii=False,
        )
    joined = '","'.join(starmap(_ENTRY, rows))
    if joined.count('"') == 4 * len(rows) - 2 and "\\" not in joined:
        return '{"' + joined + '"}'
    emails, names, profiles = zip(*rows, strict=True)
    values = map(add, map(_PROFILE_PREFIX, profiles), names)
    return json.dumps(dict(zip(emails, values, strict=True)), ensure_ascii=False)


def _decoded(key: str, value: str | None) -> Any:
    if key in ("editions", "categories"):
        return json.loads(value) if value else None
    return value
