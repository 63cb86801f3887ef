"""Hold back: the bulk load, which fills a small list from a large file.

Inserting a large file into a small list, most of the time goes to keeping the
unique address index in order row by row. So the writer (:class:`BulkIndexes`)
drops the subscribers' address index inside the transaction and rebuilds it once
after the last row, and the reader (:class:`HoldBack`) keeps a SeenFilter of every
address stored or read so far instead. A row the filter has never seen is new and
is written at once; a "maybe" (an address already stored, a duplicate from an
earlier chunk, or a rare false alarm) is held back and written after the rebuild
by the ordinary path, where the index tells updates and duplicates apart as it
always does. Held-back rows keep their file order, so the first occurrence of an
address still wins; but a new address held back by a false alarm (about 3% of
rows) gets a later id than the rows after it in the file, so ids follow the file
only in the ordinary path. Past ``DEFER_LIMIT`` held rows, the index is rebuilt
there and the rest of the file goes the ordinary way. A rollback (dry run,
invalid rows) puts the index back with everything else. On PostgreSQL there is no bulk
load: the index cannot be dropped under other sessions' feet, and the ordinary path is right.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import compress
from operator import itemgetter

import sqlite_utils

from digest.errors import DigestError
from digest.store.dialect import is_postgresql
from subscribers.importing.profiles import Profiles
from subscribers.seen import SeenFilter

_BULK_INDEXES = ("subscribers_email",)  # dropped, then rebuilt once (status grows in id order: cheap)
DEFER_LIMIT = 100_000  # rows held for the index; beyond, the bulk load ends there (flat memory)
_FILL_STEP = 10_000


class HoldBack:
    """The reader's side: the filter, and the rows held back for after the index is rebuilt."""

    def __init__(self, seen: SeenFilter, profiles: Profiles, chunk_size: int) -> None:
        self.seen: SeenFilter | None = seen
        self.profiles = profiles
        self.chunk_size = chunk_size
        self.deferred: list[tuple] = []  # (email, name, profile values[, attributes])

    @property
    def full(self) -> bool:
        """True when so many rows are held that the bulk load should end now (flat memory)."""
        return len(self.deferred) > DEFER_LIMIT

    def hold(self, parsed: list[tuple]) -> list[tuple]:
        """Bulk load: keep the rows whose address the filter may have seen for after the rebuild."""
        assert self.seen is not None, "held rows were already released"
        maybe = self.seen.check_add(list(map(itemgetter(0), parsed)))
        if not maybe:
            return parsed
        profiles = self.profiles.values
        self.deferred.extend(
            (email, name, profiles[p], *extra) for email, name, p, *extra in map(parsed.__getitem__, maybe)
        )
        keep = bytearray(b"\x01") * len(parsed)
        for i in maybe:
            keep[i] = 0
        return list(compress(parsed, keep))

    def release(self) -> Iterator[tuple[list[tuple], bool]]:
        """End the bulk load: the held rows as (rows, end_bulk) chunks; the first says to rebuild.

        Held-back rows come from many chunks, so one address can be there twice; like a chunk
        of the file, a batch holds each address once (a repeat starts the next batch).
        """
        self.seen = None  # free the filter before the writer rebuilds the index (peak memory)
        held, self.deferred = self.deferred, []
        rows: list[tuple] = []
        emails: set[str] = set()
        end_bulk = True
        for email, name, values, *extra in held:
            if len(rows) >= self.chunk_size or email in emails:
                yield rows, end_bulk
                rows, emails, end_bulk = [], set(), False
            if not rows:
                self.profiles.bound()
            rows.append((email, name, self.profiles.number(values), *extra))
            emails.add(email)
        if rows or end_bulk:
            yield rows, end_bulk


class BulkIndexes:
    """The writer's side: drops the address index and rebuilds it once (inside the transaction)."""

    def __init__(self, db: sqlite_utils.Database, label: str) -> None:
        self.db = db
        self.label = label
        self.dropped: list[str] = []  # CREATE INDEX statements to run again

    @property
    def pending(self) -> bool:
        """True while the index is dropped."""
        return bool(self.dropped)

    def drop(self, start_max: int, expected_rows: int) -> SeenFilter | None:
        """Fill the filter with the stored addresses and drop the indexes (see the module docstring)."""
        db = self.db
        if is_postgresql(db):
            return None  # PostgreSQL keeps its unique index while it loads (see the module docstring)
        marks = ",".join("?" * len(_BULK_INDEXES))
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'subscribers'"
            f" AND name IN ({marks})",
            _BULK_INDEXES,
        ).fetchall()
        if "subscribers_email" not in {name for name, _sql in indexes}:
            return None  # not the schema this was written for; the ordinary path is always right
        # Stored addresses are lower-cased (normalize_email); lower() again covers older rows. Equal
        # under the index's NOCASE means equal here, so the filter misses none of them.
        seen = SeenFilter(start_max + expected_rows)  # the highest id: at least the stored count
        cursor = db.execute("SELECT email FROM subscribers")
        while emails := cursor.fetchmany(_FILL_STEP):
            seen.add(email.lower() for (email,) in emails)
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        self.dropped = [sql for _name, sql in indexes]
        return seen

    def rebuild(self) -> None:
        """Rebuild the dropped indexes (the writer, once every row the filter let through is in)."""
        sqls, self.dropped = self.dropped, []
        db = self.db
        threads = db.execute("PRAGMA threads").fetchone()[0]
        db.execute("PRAGMA threads = 2")  # the reader is done: its core helps SQLite sort
        try:
            for sql in sqls:
                db.execute(sql)
        except sqlite3.IntegrityError as exc:
            # Cannot happen unless the filter is wrong; the transaction is rolled back.
            raise DigestError(
                f"{self.label}: the address index could not be rebuilt ({exc}); nothing was"
                " imported. This is a bug in digest: please report it"
            ) from None
        finally:
            db.execute(f"PRAGMA threads = {int(threads)}")
