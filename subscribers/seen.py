"""A fixed-size "have I seen this address?" filter for bulk imports (a Bloom filter).

It never forgets an address it was given; it sometimes claims to have seen one
it was not given. The importer uses it to let most rows of a large file skip
the unique-address index while that is being rebuilt: a row the filter has
never seen is certainly new; a "maybe" is checked against the index later, so
a false alarm costs a little time, never a wrong result. Memory is fixed when
it is made (a byte per slot: 16 MiB for a million rows, never over 32 MiB).

One slot per key, read and written by three C-level passes over a chunk
(``map`` over the slot array), not a Python loop: a second probe would halve
the false alarms but cost the reader thread, which sets the pace, ~0.5 s per
million rows. At the expected size about 3% of new rows are false alarms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import compress, count, repeat
from operator import and_

_MIN_BITS = 20  # 1 MiB
_MAX_BITS = 25  # 32 MiB, for files of over a million rows
_SLOTS_PER_KEY = 16


class SeenFilter:
    """A Bloom filter over strings, sized for ``expected`` distinct keys."""

    def __init__(self, expected: int) -> None:
        bits = (max(expected, 1) * _SLOTS_PER_KEY - 1).bit_length()
        size = 1 << min(max(bits, _MIN_BITS), _MAX_BITS)
        self.mask = size - 1
        self.slots = bytearray(size)

    def add(self, keys: Iterable[str]) -> None:
        """Remember ``keys``."""
        self._set(self._positions(list(keys)))

    def check_add(self, keys: list[str]) -> list[int]:
        """Remember ``keys`` (distinct); return the indices of those that may have been seen before."""
        positions = self._positions(keys)
        hits = bytes(map(self.slots.__getitem__, positions))  # looked up before any is set
        self._set(positions)
        return list(compress(count(), hits)) if 1 in hits else []

    def _positions(self, keys: list[str]) -> list[int]:
        return list(map(and_, map(hash, keys), repeat(self.mask)))

    def _set(self, positions: list[int]) -> None:
        deque(map(self.slots.__setitem__, positions, repeat(1)), maxlen=0)
