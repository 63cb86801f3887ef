"""Read: from a file's bytes to rows of cells in the columns digest knows.

Owns refusing what is not CSV UTF-8 text (spreadsheets, UTF-16, binary data),
the first line (known columns in any case and other tools' spellings, attribute
columns, "First Name" + "Last Name" joined into a name), the spreadsheet formula
guard on cells, and turning decode and CSV errors into one line naming the file
and line. Entry point: :func:`open_csv`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from digest.errors import DigestError
from subscribers.model import attribute_key

COLUMNS = ("email", "name", "editions", "categories", "timezone", "status")
_SNIFF_BYTES = 65536
_SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx/ods (zip), xls
_GUARDED_START = "=+-@\t\r'"  # formula starts, and the apostrophe the guard itself adds


class CsvSource(NamedTuple):
    """An open CSV file: its first line read, the rows still to come, the bytes read so far."""

    header: Header
    rows: Any  # a csv.reader (or JoinedNames around one): iterates lists of cells, has line_num
    counter: CountingReader


@contextlib.contextmanager
def open_csv(path: Path, label: str) -> Iterator[CsvSource]:
    """Open ``path`` for import; raises DigestError (naming ``label`` and the line) for a file
    that is not CSV UTF-8 text, also while the rows are read inside the ``with`` block."""
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise DigestError(f"{label}: cannot open ({exc.strerror})") from None
    with binary:
        _sniff(binary, label)
        counter = CountingReader(binary)
        text = io.TextIOWrapper(io.BufferedReader(counter, 1 << 16), encoding="utf-8-sig", newline="")
        reader: Any = csv.reader(text)
        try:
            header = read_header(reader, label)
            width = len(header.columns) - header.derived
            if header.name_parts is not None:
                reader = JoinedNames(reader, header.name_parts, width)
                width += 1
            if header.status_parts:
                reader = JoinedStatus(reader, [p for p, _kind in header.status_parts], width)
            yield CsvSource(header, reader, counter)
        except UnicodeDecodeError as exc:
            # The text is decoded in blocks ahead of the rows, so the reader's line number
            # lags behind the bad byte: find the byte's own line in the file instead.
            line = bad_utf8_line(binary) or getattr(reader, "line_num", 0) + 1
            raise DigestError(
                f"{label}: line {line}: not UTF-8 text ({exc.reason}); save the file as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            raise DigestError(f"{label}: line {reader.line_num}: not valid CSV ({exc})") from None


def bad_utf8_line(binary: io.BufferedReader, block: int = 1 << 20) -> int | None:
    """The line (counted as the CSV reader counts them: ``\\n``, ``\\r\\n`` or ``\\r`` ends one)
    of the first byte in ``binary`` that is not UTF-8, read from the start; None if there is none."""
    binary.seek(0)
    line, pending, last_cr = 1, b"", False
    while True:
        chunk = binary.read(block)
        data = pending + chunk
        try:
            _, used = codecs.utf_8_decode(data, "strict", not chunk)
            bad = None
        except UnicodeDecodeError as exc:
            used, bad = exc.start, exc.start
        done = data[:used]
        line += done.count(b"\n") + done.count(b"\r") - done.count(b"\r\n")
        if last_cr and done[:1] == b"\n":
            line -= 1  # a \r\n split across two blocks is one line end
        last_cr = done[-1:] == b"\r" if done else last_cr
        if bad is not None:
            return line
        if not chunk:
            return None
        pending = data[used:]


class CountingReader(io.RawIOBase):
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
    "full name": "name",
    "first name": "first name",
    "firstname": "first name",
    "fname": "first name",  # Mailchimp's merge tag
    "given name": "first name",
    "forename": "first name",
    "last name": "last name",
    "lastname": "last name",
    "lname": "last name",
    "surname": "last name",
    "family name": "last name",
    "time zone": "timezone",
}
_HEADER_SPACES = re.compile(r"[\s_-]+")

# Columns other tools keep a subscriber's status in (spelled as _HEADER_ALIASES keys are), and
# how their values read (see subscribers.importing.statuses). A file may have several (listmonk:
# ``status`` and ``subscription_status``): the most restrictive non-empty value wins.
_STATUS_COLUMNS = {
    "status": "status",  # digest's own, listmonk's, Mailchimp's API exports
    "subscription status": "status",  # listmonk, per list
    "subscriber type": "status",  # Buttondown
    "subscribed to emails": "subscribed",  # Ghost: true/false
    "subscribed": "subscribed",
    "email disabled": "disabled",  # Substack: true when the reader turned email off
}
_BUTTONDOWN_MARKERS = ("creation date", "secondary id")  # then a "type" column is its status
# Mailchimp's unsubscribed and cleaned exports have no status column: the file itself is the status.
_FILE_STATUS_COLUMNS = {"unsub time": "unsubscribed", "clean time": "bounced"}  # the last found wins
# Consent columns (opt-in and confirmation time and IP): the consent log, not attributes.
_CONSENT_COLUMNS = {
    "optin time": "optin_time",
    "opt in time": "optin_time",
    "optin ip": "optin_ip",
    "opt in ip": "optin_ip",
    "confirm time": "confirm_time",
    "confirmed time": "confirm_time",
    "confirm ip": "confirm_ip",
    "confirmed ip": "confirm_ip",
}


class Header(NamedTuple):
    """The first line, read: canonical column names by position, and what else it holds."""

    columns: list[str]  # COLUMNS names where known; "attribute:KEY" or "" (ignored) elsewhere
    attributes: list[tuple[int, str]]  # (position, key) of the columns kept as attributes
    name_parts: tuple[int | None, int | None] | None  # first/last name positions, joined into "name"
    ignored: list[str]  # columns neither known nor usable as attributes
    status_parts: tuple[tuple[int, str], ...] = ()  # other tools' status columns joined into "status"
    file_status: str | None = None  # the status every row has (Mailchimp's unsubscribed/cleaned exports)
    consent: tuple[tuple[int, str], ...] = ()  # (position, key) of the consent columns
    status_names: tuple[str, ...] = ()  # the file's status columns as spelled there (for messages)

    @property
    def derived(self) -> int:
        """Cells appended to each row after the file's own (a joined name, a joined status)."""
        return (self.name_parts is not None) + bool(self.status_parts)


def read_header(reader: Any, label: str) -> Header:
    """Read the first line: known columns (any case, other tools' spellings), attributes, the rest."""
    try:
        first = next(reader)
    except StopIteration:
        first = []
    canonical = _canonical_names(first, label)
    parts = ("first name", "last name")
    name_parts = None
    if "name" not in canonical and any(p in canonical for p in parts):
        name_parts = tuple(canonical.index(p) if p in canonical else None for p in parts)
    status_parts, status_names, file_status = _status_columns(first, canonical)
    status_positions = {p for p, _kind in status_parts}
    columns: list[str] = []
    attributes: list[tuple[int, str]] = []
    consent: list[tuple[int, str]] = []
    ignored: list[str] = []
    keys: dict[str, str] = {}
    for position, (cell, name) in enumerate(zip(first, canonical, strict=True)):
        if position in status_positions:
            columns.append(f"status:{name}")
            continue
        if name_parts is not None and name in parts:
            columns.append(name)
            if name == "first name":  # joined into the name, and kept for the greeting's {first_name}
                keys["first_name"] = cell
                attributes.append((position, "first_name"))
            continue
        if name in COLUMNS:
            columns.append(name)
            continue
        if name in _CONSENT_COLUMNS and _CONSENT_COLUMNS[name] not in {k for _p, k in consent}:
            columns.append(f"consent:{_CONSENT_COLUMNS[name]}")
            consent.append((position, _CONSENT_COLUMNS[name]))
            continue
        # Any tool's spelling of a first or last name is the same attribute (first_name, last_name).
        key = name.replace(" ", "_") if name in parts else attribute_key(cell)
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
        columns.append("name")  # made by JoinedNames at the end of every row
    if status_parts:
        columns.append("status")  # made by JoinedStatus at the end of every row
    return Header(
        columns, attributes, name_parts, ignored, status_parts, file_status, tuple(consent), status_names
    )


def _canonical_names(first: list[str], label: str) -> list[str]:
    """Each header cell's column name in our spelling; an error without an email column or
    with a column twice."""
    spelled = [_HEADER_SPACES.sub(" ", cell.strip().lower()) for cell in first]
    canonical = [_HEADER_ALIASES.get(c, c) for c in spelled]
    if "email" not in canonical:
        raise _no_email_column(label, first)
    duplicated = sorted({c for c in canonical if c and canonical.count(c) > 1})
    if duplicated:
        raise DigestError(f"{label}: column {duplicated[0]!r} appears twice in the first line")
    return canonical


def _no_email_column(label: str, first: list[str]) -> DigestError:
    """The error for a first line without an email column, saying what it has instead."""
    found = ", ".join(repr(c[:30]) for c in first[:6]) or "nothing"
    hint = ""
    if len(first) == 1 and any(sep in first[0] for sep in ";\t"):
        hint = " (separate columns with commas)"
    return DigestError(
        f"{label}: no 'email' column in the first line (found {found}){hint}; "
        f"the first line must name the columns, e.g. {','.join(COLUMNS)}"
    )


def _status_columns(
    first: list[str], canonical: list[str]
) -> tuple[tuple[tuple[int, str], ...], tuple[str, ...], str | None]:
    """The first line's status columns: (position, kind) of those joined into one status cell
    (none for a lone ``status`` column, read in place), their names as the file spells them,
    and the status the file itself implies (Mailchimp's unsubscribed or cleaned export)."""
    kinds = dict(_STATUS_COLUMNS)
    if any(marker in canonical for marker in _BUTTONDOWN_MARKERS):
        kinds["type"] = "status"
    parts = tuple((p, kinds[c]) for p, c in enumerate(canonical) if c in kinds)
    names = tuple(first[p].strip() for p, _kind in parts)
    if len(parts) == 1 and canonical[parts[0][0]] == "status":
        parts = ()
    implied = [status for column, status in _FILE_STATUS_COLUMNS.items() if column in canonical]
    return parts, names, implied[-1] if implied else None  # cleaned (bounced) outranks unsubscribed


class JoinedNames:
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

    def __iter__(self) -> JoinedNames:
        return self

    def __next__(self) -> list[str]:
        row = next(self.reader)
        if len(row) == self.width:
            row.append(" ".join(part for p in self.parts if (part := row[p].strip())))
        return row


class JoinedStatus:
    """Rows with the cells of other tools' status columns joined by STATUS_SEPARATOR into one
    status cell at the end (read by subscribers.importing.statuses; few distinct values, so
    it is parsed once per combination). A row with the wrong number of fields is passed on."""

    def __init__(self, reader: Any, positions: list[int], width: int) -> None:
        self.reader = reader
        self.positions = positions
        self.width = width

    @property
    def line_num(self) -> int:
        """The reader's line number (a quoted cell may span lines)."""
        return self.reader.line_num

    def __iter__(self) -> JoinedStatus:
        return self

    def __next__(self) -> list[str]:
        row = next(self.reader)
        if len(row) == self.width:
            row.append(STATUS_SEPARATOR.join(row[p] for p in self.positions))
        return row


STATUS_SEPARATOR = "\x1f"


def guard_cell(cell: str) -> str:
    """For export: a cell that a spreadsheet would run as a formula gets a leading apostrophe.

    A cell that already starts with an apostrophe gets one too, so that
    :func:`unescape` gives back exactly what was stored.
    """
    return "'" + cell if cell[:1] and cell[0] in _GUARDED_START else cell


def unescape(cell: str) -> str:
    """Undo :func:`guard_cell` (the leading apostrophe before a formula character or another one)."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _GUARDED_START:
        return cell[1:]
    return cell
