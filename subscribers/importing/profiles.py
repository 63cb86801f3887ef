"""Check, shared part: the cells that repeat across rows (editions, categories, timezone,
status), each parsed once, and each distinct combination of their values numbered (a
"profile"), so a row travels as (email, name, profile number).

Used in the reader thread only. The writer learns a profile's values from the
batch that first uses it (:meth:`Profiles.take_new`). Entry point: :class:`Profiles`.
"""

from __future__ import annotations

from typing import Any

from subscribers.importing.read import COLUMNS, unescape
from subscribers.importing.statuses import parse_status
from subscribers.model import (
    InvalidValue,
    encode_labels,
    normalize_labels,
    normalize_timezone,
    split_labels,
)

LABEL_COLUMNS = COLUMNS[2:]  # editions, categories, timezone, status
PROFILE_LIMIT = 50_000  # distinct combinations kept; beyond, the numbering starts over (flat memory)
_CACHE_LIMIT = 10_000


class Profiles:
    """Parse caches for the repeating cells and the profile numbering of their combinations."""

    def __init__(
        self,
        label_positions: tuple[int | None, ...],
        *,
        known_editions: list[str] | None,
        known_categories: list[str] | None,
        status_kinds: tuple[str, ...] = ("status",),
        status_names: tuple[str, ...] = (),
        default_status: str | None = None,
    ) -> None:
        self.label_positions = label_positions  # position of each LABEL_COLUMNS column, or None
        self.status_kinds = status_kinds  # how each part of the status cell reads (see statuses)
        self.status_names = status_names
        self.default_status = default_status  # every row's status when the file has no status column
        self.known_editions = known_editions
        self.known_categories = known_categories
        self.caches: dict[str, dict[str, Any]] = {k: {} for k in LABEL_COLUMNS}
        self.bad: dict[str, set[str]] = {k: set() for k in LABEL_COLUMNS}
        self.by_cells: dict[str | tuple[str, ...], int] = {}
        self.by_values: dict[tuple[Any, ...], int] = {}
        self.values: list[tuple[Any, ...]] = []  # profile number → (editions, categories, timezone, status)
        self.new = 0  # values[-new:] not handed to the writer yet
        self.forget = False  # the numbering started over since the last batch

    def cell(self, kind: str, raw: str) -> Any:
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
            value = self._parse_cell(kind, unescape(raw))
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
        return parse_status(raw, self.status_kinds, self.status_names)

    def absent(self, kind: str) -> Any:
        """The value of a column the file does not have: none, but a status given for the file."""
        return self.default_status if kind == "status" else None

    def number(self, values: tuple[Any, ...]) -> int:
        """The number of a combination of parsed (editions, categories, timezone, status)."""
        number = self.by_values.get(values)
        if number is None:
            number = self.by_values[values] = len(self.values)
            self.values.append(values)
            self.new += 1
        return number

    def of_cells(self, key: str | tuple[str, ...]) -> int:
        """The profile of a row's label cells, as the checker's label getter gives them
        (a str for one column, else a tuple); raises InvalidValue."""
        present = iter((key,) if isinstance(key, str) else key)
        values = tuple(
            self.absent(kind) if p is None else self.cell(kind, next(present))
            for kind, p in zip(LABEL_COLUMNS, self.label_positions, strict=True)
        )
        number = self.by_cells[key] = self.number(values)
        return number

    def bound(self) -> None:
        """Before each chunk: past PROFILE_LIMIT profiles (free text in those columns), start over."""
        if len(self.values) > PROFILE_LIMIT:  # free text in those columns: start over
            self.by_cells.clear()
            self.by_values.clear()
            self.values.clear()
            self.new = 0
            self.forget = True

    def take_new(self) -> tuple[list[tuple[Any, ...]], bool]:
        """The profiles first used since the last call, as (number, *values) rows for the
        writer, and whether the numbering started over before them."""
        start = len(self.values) - self.new
        new = [(start + i, *values) for i, values in enumerate(self.values[start:])]
        forget = self.forget
        self.new = 0
        self.forget = False
        return new, forget
