"""Check: from rows of cells to valid rows ``(email, name, profile[, attributes])``.

Owns validating and normalising every cell, the line numbers of invalid rows (at
most MAX_REPORTED listed, the rest counted), and the duplicates within a chunk.
A chunk with nothing unusual is checked column by column: one possessive regex
pass over its joined addresses finds the few that are not plain ASCII (those go
to email-validator), repeating cells are parsed once (see profiles), and
duplicates are found with sets. A chunk with anything odd (a blank line, a bad
value) is redone row by row, which also gives the line numbers. Runs in the
reader thread. Entry point: :meth:`RowChecker.check`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from itertools import repeat
from operator import itemgetter

from subscribers.importing.profiles import Profiles
from subscribers.importing.read import COLUMNS, Header, unescape
from subscribers.model import (
    MAX_NAME,
    SPECIAL_TLDS,
    InvalidValue,
    normalize_attribute,
    normalize_email,
    normalize_name,
    simple_address,
)

MAX_REPORTED = 50  # invalid rows listed individually; the rest are counted
# A block of lower-cased addresses, one per line: stops at the first line that is not a
# dot-atom of [a-z0-9_+-] @ LDH labels . alphabetic TLD (not a special-use one). Possessive,
# so it never backtracks. Length limits and hyphen rules are checked apart (unusual_lines).
_PLAIN_LINES = re.compile(
    r"(?:[a-z0-9_+-]++(?:\.[a-z0-9_+-]++)*+@(?:[a-z0-9-]{1,63}+\.)++"
    rf"(?!(?:{'|'.join(SPECIAL_TLDS)})\n)[a-z]{{2,63}}+\n)*+"
)
_SUSPECT = ("--", ".-", "-.", "@-")  # a label starting or ending with "-", or IDNA-like "--"
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# In names joined by line breaks: a control character or whitespace other than a plain space
# means normalize_name has work to do (or an error to raise).
_ODD_NAME_CHARS = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


class RowChecker:
    """Column positions of one file and the counters it adds to (rows, invalid, duplicates)."""

    def __init__(self, header: Header, report, profiles: Profiles) -> None:
        self.report = report
        self.profiles = profiles
        self.width = len(header.columns)
        self.file_width = self.width - header.derived  # without the joined name and status
        self.pos = {name: header.columns.index(name) if name in header.columns else None for name in COLUMNS}
        # Columns kept as attributes: a row is then (email, name, profile, attributes JSON).
        self.attributes = header.attributes
        # Consent columns: a row is then (email, name, profile, attributes JSON, consent JSON).
        self.consent = header.consent
        present = [p for p in profiles.label_positions if p is not None]
        self.label_getter = itemgetter(*present) if present else None

    def check(self, rows: list[list[str]], first_line: int) -> list[tuple]:
        """The chunk's valid rows, each address once (the first row wins); ``first_line`` is
        the file line of ``rows[0]``. Invalid rows are counted and reported, not returned."""
        parsed = self._fast(rows)
        return self._slow(rows, first_line) if parsed is None else parsed

    def _fast(self, rows: list[list[str]]) -> list[tuple] | None:
        """Column-wise checks for a chunk with nothing unusual; None sends it to ``_slow``.

        The addresses of the chunk are checked by one regex pass over their
        joined text; only the few that are not plain ASCII go to email-validator.
        """
        n = len(rows)
        if len(rows[0]) != self.width or len(set(map(len, rows))) != 1:
            return None  # a blank line or a row with the wrong number of fields
        emails = self._emails(rows, n)
        if emails is None:
            return None
        names = self._names(rows, n)
        if names is None:
            return None
        profiles = self._profiles(rows, n)
        if profiles is None:
            return None
        try:
            extras = self._extras(rows)
        except InvalidValue:
            return None
        parsed = list(zip(emails, names, profiles, *extras, strict=False))  # names may be repeat('')
        self.report.rows += n
        if len(set(emails)) != n:
            parsed = self._dedupe(parsed)
        return parsed

    def _emails(self, rows: list[list[str]], n: int) -> list[str] | None:
        """The chunk's addresses, normalised; None when one needs ``_slow``."""
        raw_emails = list(map(itemgetter(self.pos["email"]), rows))
        joined = "\n".join(raw_emails)
        if joined.count("\n") != n - 1:
            return None  # a line break inside an address
        if max(map(len, raw_emails)) > 254:
            return None
        lowered = joined.lower()
        emails = lowered.split("\n")
        for i in unusual_lines(joined, lowered, raw_emails):
            try:
                emails[i] = normalize_email(unescape(raw_emails[i]))
            except InvalidValue:
                return None
        return emails

    def _names(self, rows: list[list[str]], n: int) -> Iterable[str] | None:
        """The chunk's names (normalised only when one looks unusual); None when one is invalid."""
        p_name = self.pos["name"]
        if p_name is None:
            return repeat("")
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
                names = [normalize_name(unescape(name)) if name else "" for name in names]
            except InvalidValue:
                return None
        return names

    def _profiles(self, rows: list[list[str]], n: int) -> list[int] | None:
        """Each row's profile, from its present label cells as one key (a str for one column,
        else a tuple); None when a new key's labels are invalid."""
        by_cells = self.profiles.by_cells
        cells = list(map(self.label_getter, rows)) if self.label_getter else [""] * n
        try:
            return list(map(by_cells.__getitem__, cells))
        except KeyError:
            try:
                for key in set(cells).difference(by_cells):
                    self.profiles.of_cells(key)
            except InvalidValue:
                return None
            return list(map(by_cells.__getitem__, cells))

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
        cell = self.profiles.cell
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
                raw = unescape(row[p_email])
                email = simple_address(raw) or normalize_email(raw)
                name = "" if p_name is None else normalize_name(unescape(row[p_name]))
                profile = self.profiles.number(
                    (
                        None if p_ed is None else cell("editions", row[p_ed]),
                        None if p_cat is None else cell("categories", row[p_cat]),
                        None if p_tz is None else cell("timezone", row[p_tz]),
                        self.profiles.default_status if p_st is None else cell("status", row[p_st]),
                    )
                )
                extra = tuple(column[0] for column in self._extras([row]))
            except InvalidValue as exc:
                report.invalid += 1
                if len(report.invalid_rows) < MAX_REPORTED:
                    report.invalid_rows.append((row_line, str(exc)))
                continue
            parsed.append((email, name, profile, *extra))
        return self._dedupe(parsed)

    def _extras(self, rows: list[list[str]]) -> list[list[str]]:
        """The columns a checked row carries after (email, name, profile): its attributes JSON
        when the file has attribute or consent columns, then its consent JSON when it has
        consent columns; raises InvalidValue."""
        if self.consent:
            return [list(map(self._attributes_of, rows)), list(map(self._consent_of, rows))]
        if self.attributes:
            return [list(map(self._attributes_of, rows))]
        return []

    def _consent_of(self, row: list[str]) -> str:
        """A row's consent cells (opt-in/confirm time and IP) as a JSON object; raises InvalidValue."""
        found = {}
        for position, key in self.consent:
            cell = row[position].strip()
            if not cell:
                continue
            if key.endswith("_ip"):
                try:
                    cell = str(ipaddress.ip_address(cell))
                except ValueError:
                    raise InvalidValue(f"{key} {cell[:60]!r} is not an IP address") from None
            else:
                cell = normalize_attribute(cell)
            found[key] = cell
        return json.dumps(found) if found else "{}"

    def _attributes_of(self, row: list[str]) -> str:
        """A row's attribute cells as a JSON object (empty cells left out); raises InvalidValue."""
        found = {}
        for position, key in self.attributes:
            cell = row[position]
            if cell and (value := normalize_attribute(unescape(cell))):
                found[key] = value
        return json.dumps(found, ensure_ascii=False) if found else "{}"


def unusual_lines(joined: str, lowered: str, lines: list[str]) -> list[int]:
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
