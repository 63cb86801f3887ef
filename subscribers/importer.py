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

The hot path is tuned for large files (see bench/import.py): plain ASCII
addresses are checked with a strict regex (email-validator handles the rest),
repeated cells are parsed once, rows are looked up and written per chunk with
``executemany`` and explicit ids, and the consent events for added rows are
written by one INSERT … SELECT per chunk.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.errors import DigestError
from digest.store import iso, transaction, utcnow
from subscribers.model import (
    InvalidValue,
    email_hash,
    encode_labels,
    has_control,
    normalize_email,
    normalize_labels,
    normalize_name,
    normalize_status,
    normalize_timezone,
    simple_address,
    split_labels,
)
from subscribers.store import next_subscriber_id

COLUMNS = ("email", "name", "editions", "categories", "timezone", "status")
CHUNK = 5000
MAX_REPORTED = 50  # invalid rows listed individually; the rest are counted
_SNIFF_BYTES = 65536
_SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx/ods (zip), xls
_FORMULA_START = "=+-@\t\r"
_ABSENT: Any = object()
_ACTIVE_STATES = ("active", "pending")
_STATUS_EVENT = {
    "unsubscribed": "unsubscribe",
    "bounced": "bounce",
    "pending": "status",
}


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

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "file": self.file,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "invalid": self.invalid,
            "invalid_rows": [{"line": line, "error": error} for line, error in self.invalid_rows],
            "ignored_columns": self.ignored_columns,
        }


class _Rollback(Exception):
    """Raised inside the transaction to undo a dry run or a failed import."""


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
) -> ImportReport:
    """Import subscribers from a CSV file (see the module docstring); returns the report.

    ``progress`` is called with the number of bytes read since the last call.
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
            report.ignored_columns = [c for c in header if c not in COLUMNS]
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
            seen_bytes = 0
            with _bigger_cache(db):
                try:
                    with transaction(db):
                        job.start()
                        for rows in job.parse(reader):
                            job.flush(rows)
                            if progress is not None:
                                progress(counter.count - seen_bytes)
                                seen_bytes = counter.count
                        job.finish()
                        if dry_run or (report.invalid and not skip_invalid):
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


def _header(reader: Any, label: str) -> list[str]:
    try:
        first = next(reader)
    except StopIteration:
        first = []
    header = [cell.strip().lower() for cell in first]
    if "email" not in header:
        found = ", ".join(repr(c[:30]) for c in first[:6]) or "nothing"
        hint = ""
        if len(first) == 1 and any(sep in first[0] for sep in ";\t"):
            hint = " (separate columns with commas)"
        raise DigestError(
            f"{label}: no 'email' column in the first line (found {found}){hint}; "
            f"the first line must name the columns, e.g. {','.join(COLUMNS)}"
        )
    duplicated = sorted({c for c in header if c and header.count(c) > 1})
    if duplicated:
        raise DigestError(f"{label}: column {duplicated[0]!r} appears twice in the first line")
    return header


def _unescape(cell: str) -> str:
    """Undo the export's guard against spreadsheet formulas (a leading apostrophe)."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


class _Import:
    """State of one import run: column positions, parse caches, counters."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        report: ImportReport,
        header: list[str],
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
        self.width = len(header)
        self.pos = {name: header.index(name) if name in header else None for name in COLUMNS}
        self.skip_invalid = skip_invalid
        self.resubscribe = resubscribe
        self.known_editions = known_editions
        self.known_categories = known_categories
        self.at = at
        self.chunk_size = chunk_size
        self.detail = json.dumps({"file": Path(report.file).name}, ensure_ascii=False)
        # Cells that repeat across rows (editions, categories, zone, status) are parsed once.
        self.caches: dict[str, dict[str, Any]] = {
            k: {} for k in ("editions", "categories", "timezone", "status")
        }
        self.start_max = 0
        self.next_id = 1
        self.check_suppressions = False

    # ------------------------------------------------------------ set-up
    def start(self) -> None:
        db = self.db
        self.start_max = int(db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0])
        self.next_id = next_subscriber_id(db)
        self.check_suppressions = db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone() is not None
        # Known subscribers already matched by an earlier row of this file (later ones are duplicates).
        db.execute("CREATE TEMP TABLE IF NOT EXISTS subscriber_import_seen (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.subscriber_import_seen")

    def finish(self) -> None:
        self.db.execute("DROP TABLE IF EXISTS temp.subscriber_import_seen")

    # ------------------------------------------------------------ parsing
    def _cell(self, kind: str, raw: str) -> Any:
        """Parse a repeating cell through its cache; raises InvalidValue."""
        cache = self.caches[kind]
        try:
            value = cache[raw]
        except KeyError:
            try:
                value = self._parse_cell(kind, _unescape(raw))
            except InvalidValue as exc:
                value = exc
            if len(cache) < 10_000:
                cache[raw] = value
        if isinstance(value, InvalidValue):
            raise value
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

    def parse(self, reader: Any) -> Iterable[dict[str, tuple]]:
        """Yield chunks of parsed rows: {email: (line, name, editions, categories, timezone, status)}."""
        report = self.report
        width = self.width
        p_email = self.pos["email"]
        p_name, p_ed, p_cat, p_tz, p_st = (self.pos[k] for k in COLUMNS[1:])
        cell = self._cell
        chunk: dict[str, tuple] = {}
        writing = True
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            report.rows += 1
            line = reader.line_num
            try:
                if len(row) != width:
                    raise InvalidValue(f"{len(row)} fields, but the first line names {width}")
                raw = row[p_email]
                if raw[:1] == "'":
                    raw = _unescape(raw)
                email = simple_address(raw)
                if email is None:
                    email = normalize_email(raw)
                if p_name is None:
                    name = _ABSENT
                else:
                    name = row[p_name]
                    if name:
                        if name[0] == "'":
                            name = _unescape(name)
                        if has_control(name) or len(name) > 200 or "  " in name or name != name.strip():
                            name = normalize_name(name)
                editions = _ABSENT if p_ed is None else cell("editions", row[p_ed])
                categories = _ABSENT if p_cat is None else cell("categories", row[p_cat])
                zone = _ABSENT if p_tz is None else cell("timezone", row[p_tz])
                status = None if p_st is None else cell("status", row[p_st])
            except InvalidValue as exc:
                report.invalid += 1
                if len(report.invalid_rows) < MAX_REPORTED:
                    report.invalid_rows.append((line, str(exc)))
                if not self.skip_invalid:
                    writing = False  # keep reading to report every bad row, but write nothing
                    chunk = {}
                continue
            if not writing:
                continue
            if email in chunk:
                report.duplicates += 1
                continue
            chunk[email] = (line, name, editions, categories, zone, status)
            if len(chunk) >= self.chunk_size:
                yield chunk
                chunk = {}
        if chunk and writing:
            yield chunk

    # ------------------------------------------------------------ writing
    def flush(self, chunk: dict[str, tuple]) -> None:
        """Look the chunk's addresses up, then insert the new ones and update the changed ones."""
        db = self.db
        report = self.report
        emails = list(chunk)
        marks = ",".join("?" * len(emails))
        existing = {
            r[1].lower(): r
            for r in db.execute(
                "SELECT s.id, s.email, s.name, s.status, s.editions, s.categories, s.timezone,"
                " seen.id IS NOT NULL"
                f" FROM subscribers AS s LEFT JOIN temp.subscriber_import_seen AS seen ON seen.id = s.id"
                f" WHERE s.email IN ({marks})",
                emails,
            )
        }
        suppressed: set[str] = set()
        if self.check_suppressions:
            hashes = {email_hash(e): e for e in emails if e not in existing}
            if hashes:
                marks = ",".join("?" * len(hashes))
                found = db.execute(
                    f"SELECT email_hash FROM suppressions WHERE email_hash IN ({marks})", list(hashes)
                )
                suppressed = {hashes[r[0]] for r in found}
        inserts: list[tuple] = []
        seen_ids: list[tuple[int]] = []
        resubscribed: list[str] = []
        at = self.at
        next_id = self.next_id
        for email, (_line, name, editions, categories, zone, status) in chunk.items():
            current = existing.get(email)
            if current is None:
                if email in suppressed:
                    if not self.resubscribe:
                        report.suppressed += 1
                        continue
                    resubscribed.append(email_hash(email))
                status = status or "active"
                inserts.append(
                    (
                        next_id,
                        email,
                        "" if name is _ABSENT else name,
                        status,
                        None if editions is _ABSENT else editions,
                        None if categories is _ABSENT else categories,
                        None if zone is _ABSENT else zone,
                        at,
                        at,
                        at if status == "unsubscribed" else None,
                    )
                )
                next_id += 1
                continue
            if current[0] > self.start_max or current[7]:
                report.duplicates += 1
                continue
            seen_ids.append((current[0],))
            self._update(current, name, editions, categories, zone, status)
        self.next_id = next_id
        if seen_ids:
            db.conn.executemany("INSERT INTO temp.subscriber_import_seen (id) VALUES (?)", seen_ids)
        if resubscribed:
            db.conn.executemany("DELETE FROM suppressions WHERE email_hash = ?", [(h,) for h in resubscribed])
        if inserts:
            db.conn.executemany(
                "INSERT INTO subscribers (id, email, name, status, editions, categories, timezone, source,"
                " attributes, created_at, updated_at, unsubscribed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'import', '{}', ?, ?, ?)",
                inserts,
            )
            db.execute(
                "INSERT INTO events (subscriber_id, kind, source, detail, at)"
                " SELECT id, 'subscribe', 'import', json_set(?, '$.status', status), ?"
                " FROM subscribers WHERE id BETWEEN ? AND ?",
                [self.detail, at, inserts[0][0], inserts[-1][0]],
            )
            report.added += len(inserts)

    def _update(
        self, current: tuple, name: Any, editions: Any, categories: Any, zone: Any, status: str | None
    ) -> None:
        report = self.report
        sid, _email, old_name, old_status, old_editions, old_categories, old_zone, _seen = current
        if status and status in _ACTIVE_STATES and old_status not in _ACTIVE_STATES and not self.resubscribe:
            report.suppressed += 1  # would bring back someone who left
            return
        changes: dict[str, Any] = {}
        if name is not _ABSENT and name != old_name:
            changes["name"] = name
        if editions is not _ABSENT and editions != old_editions:
            changes["editions"] = editions
        if categories is not _ABSENT and categories != old_categories:
            changes["categories"] = categories
        if zone is not _ABSENT and zone != old_zone:
            changes["timezone"] = zone
        new_status = status if status and status != old_status else None
        if not changes and new_status is None:
            report.unchanged += 1
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
            events.append((kind, {"from": old_status}))
        if changes:
            detail: dict[str, Any] = {}
            for key, old in (
                ("editions", old_editions),
                ("categories", old_categories),
                ("timezone", old_zone),
            ):
                if key in changes:
                    detail[key] = {"from": _decoded(key, old), "to": _decoded(key, changes[key])}
            if "name" in changes:
                detail["name"] = "changed"
            events.append(("preferences", detail))
        sets = ", ".join(f"{k} = ?" for k in assignments)
        self.db.execute(
            f"UPDATE subscribers SET {sets}, updated_at = ? WHERE id = ?", [*assignments.values(), at, sid]
        )
        file_detail = json.loads(self.detail)
        self.db.conn.executemany(
            "INSERT INTO events (subscriber_id, kind, source, detail, at) VALUES (?, ?, 'import', ?, ?)",
            [
                (sid, kind, json.dumps({**detail, **file_detail}, ensure_ascii=False), at)
                for kind, detail in events
            ],
        )


def _decoded(key: str, value: str | None) -> Any:
    if key in ("editions", "categories"):
        return json.loads(value) if value else None
    return value


class _bigger_cache:
    """A larger page cache while importing: the email index is written in random order."""

    def __init__(self, db: sqlite_utils.Database, kib: int = 65536) -> None:
        self.db = db
        self.kib = kib
        self.old = 0

    def __enter__(self) -> None:
        self.old = self.db.execute("PRAGMA cache_size").fetchone()[0]
        self.db.execute(f"PRAGMA cache_size = -{self.kib}")

    def __exit__(self, *exc: object) -> None:
        self.db.execute(f"PRAGMA cache_size = {int(self.old)}")
