"""A fixed-size "have I seen this address?" filter for bulk imports (a Bloom filter).

It never forgets an address it was given; it sometimes (rarely) claims to have
seen one it was not given. The importer uses it to let most rows of a large
file skip the unique-address index while it is being rebuilt: a row the filter
has never seen is certainly new; a "maybe" is checked against the index later.
Memory is fixed when it is made (a byte per slot, at most 32 MiB), whatever the
size of the file; the work per address is a few C-level passes over a chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import compress, count, repeat
from operator import and_, rshift

_MIN_BITS = 20  # 1 MiB
_MAX_BITS = 25  # 32 MiB
_SLOTS_PER_KEY = 16  # two probes: about 0.4% false "maybe" at the expected size


class SeenFilter:
    """A Bloom filter over strings, sized for ``expected`` distinct keys."""

    def __init__(self, expected: int) -> None:
        bits = (max(expected, 1) * _SLOTS_PER_KEY - 1).bit_length()
        size = 1 << min(max(bits, _MIN_BITS), _MAX_BITS)
        self.mask = size - 1
        self.slots = bytearray(size)

    def add(self, keys: Iterable[str]) -> None:
        """Remember ``keys``."""
        self._set(*self._positions(list(keys)))

    def check_add(self, keys: list[str]) -> list[int]:
        """Remember ``keys`` (distinct); return the indices of those that may have been seen before."""
        first, second = self._positions(keys)
        get = self.slots.__getitem__
        hits = bytes(map(and_, map(get, first), map(get, second)))  # looked up before any is set
        self._set(first, second)
        return list(compress(count(), hits)) if 1 in hits else []

    def _positions(self, keys: list[str]) -> tuple[list[int], list[int]]:
        # Two slots per key from one hash; each pass is a map() in C, not a Python loop.
        hashes = list(map(hash, keys))
        mask = self.mask
        return (
            list(map(and_, hashes, repeat(mask))),
            list(map(and_, map(rshift, hashes, repeat(32)), repeat(mask))),
        )

    def _set(self, first: list[int], second: list[int]) -> None:
        put = self.slots.__setitem__
        deque(map(put, first, repeat(1)), maxlen=0)
        deque(map(put, second, repeat(1)), maxlen=0)
