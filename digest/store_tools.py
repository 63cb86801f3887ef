"""``digest db``: what a store holds (:func:`store_info`), bringing it to this digest's schema
(:func:`migrate`), and moving a workspace between stores (:func:`copy_store`): SQLite to
PostgreSQL, back, or file to file.

A store *target* is what :func:`digest.store.database.open_store` opens: a ``postgresql://``
URL or the path of an SQLite file. This module never prints; a copy reports its progress
through a callback. It reads and writes every table alike, by the names the store lists
(tests/test_table_owners.py lists it as the one generic reader), and asks the ledger's owner
for the totals a copy must keep.

A copy runs in **one transaction** on the target: it either holds every row of the source
when it ends, or (on any error, a count that does not match, Ctrl-C) it is left as empty as
it was found; only the schema, made by the migrations before the copy starts, stays.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.config import display_store, is_store_url
from digest.delivery.ledger import ledger_totals
from digest.errors import DigestError
from digest.store.database import MIGRATIONS, applied_migrations, migrate_store, open_store, transaction

BATCH_ROWS = 5_000
"""Rows read (``fetchmany``) and written (``executemany``) at a time: memory stays bounded."""
MIGRATIONS_TABLE = "_migrations"
"""Each store keeps its own record of migrations: never copied, never counted as data."""

Progress = Callable[[str, int, int], None]
"""``progress(table, rows_copied_so_far, rows_in_all)``, called after every batch."""
Target = str | os.PathLike[str]


@dataclass
class StoreInfo:
    """What ``digest db info`` shows about one store."""

    store: str  # the file's path, or the URL without its password
    kind: str  # "sqlite" or "postgresql"
    schema_number: int | None  # the latest applied migration's number (None: no schema yet)
    schema_name: str | None
    state: str  # "current", "behind" (migrations to apply) or "ahead" (a newer digest's)
    missing: list[str] = field(default_factory=list)  # this digest's migrations not yet applied
    unknown: list[str] = field(default_factory=list)  # applied ones this digest does not know
    tables: dict[str, int] = field(default_factory=dict)  # table → rows

    def as_dict(self) -> dict[str, Any]:
        """The info as plain data (``--json``)."""
        return {
            "store": self.store,
            "kind": self.kind,
            "schema": {"number": self.schema_number, "name": self.schema_name, "state": self.state},
            "missing_migrations": self.missing,
            "unknown_migrations": self.unknown,
            "tables": self.tables,
        }


@dataclass
class CopyReport:
    """What a copy moved."""

    source: str
    target: str
    tables: dict[str, int] = field(default_factory=dict)  # table → rows copied, in copy order
    deliveries: int = 0  # ledger rows, checked per issue and status

    @property
    def rows(self) -> int:
        """Rows copied in all."""
        return sum(self.tables.values())


def dialect(db: Any) -> str:
    """``"sqlite"`` or ``"postgresql"``: the store's own word when it has one, else its type."""
    return getattr(db, "dialect", None) or (
        "sqlite" if isinstance(db, sqlite_utils.Database) else "postgresql"
    )


def open_existing(target: Target, *, migrate: bool = False) -> sqlite_utils.Database:
    """Open a store that must already exist (an SQLite file is never created here)."""
    if not is_store_url(target) and not Path(target).is_file():
        raise DigestError(f"{target}: no such database file; give an existing file or a postgresql:// URL")
    return open_store(target if is_store_url(target) else Path(target), migrate=migrate)


def data_tables(db: sqlite_utils.Database) -> list[str]:
    """The store's tables that hold data (not its migration record, not SQLite's own), sorted."""
    return sorted(n for n in db.table_names() if n != MIGRATIONS_TABLE and not n.startswith("sqlite_"))


def row_counts(db: sqlite_utils.Database, tables: list[str] | None = None) -> dict[str, int]:
    """Rows in each table (all data tables when ``tables`` is None)."""
    names = data_tables(db) if tables is None else tables
    return {name: int(db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}


def schema_state(db: sqlite_utils.Database) -> tuple[list[str], list[str], list[str]]:
    """The applied migrations, this digest's that are missing, and applied ones it does not know."""
    applied = applied_migrations(db)
    known = [m.__name__ for m in MIGRATIONS]
    return applied, [n for n in known if n not in applied], [n for n in applied if n not in known]


def store_info(target: Target) -> StoreInfo:
    """Which store ``target`` is, its schema version against this digest's, and its row counts.
    Reads only: a store that is behind is not migrated."""
    db = open_existing(target)
    try:
        applied, missing, unknown = schema_state(db)
        last = applied[-1] if applied else None
        number = re.match(r"m(\d+)_", last) if last else None
        return StoreInfo(
            store=display_store(target),
            kind=dialect(db),
            schema_number=int(number.group(1)) if number else None,
            schema_name=last,
            state="ahead" if unknown else "behind" if missing else "current",
            missing=missing,
            unknown=unknown,
            tables=row_counts(db),
        )
    finally:
        db.conn.close()


def migrate(target: Target) -> list[str]:
    """Bring an existing store to this digest's schema; the migrations applied, in order."""
    db = open_existing(target)
    try:
        return migrate_store(db)
    finally:
        db.conn.close()


def copy_store(source: Target, target: Target, *, progress: Progress | None = None) -> CopyReport:
    """Copy every row of ``source`` into ``target`` (created or migrated to this schema first),
    ids as they are; refuse a target that holds any row and a source not at this schema.

    One transaction on the target: on any failure it is left empty. Row counts of every table
    and the ledger's totals per issue and status are checked before it commits. The source is
    only read (and not migrated).
    """
    if display_store(source) == display_store(target) or _same_file(source, target):
        raise DigestError(f"{display_store(target)}: the source and the target are the same store")
    source_db = open_existing(source)
    try:
        _refuse_other_schema(source_db, display_store(source))
        target_db = open_store(target if is_store_url(target) else Path(target))
        try:
            return _copy(
                source_db, target_db, CopyReport(display_store(source), display_store(target)), progress
            )
        finally:
            target_db.conn.close()
    finally:
        source_db.conn.close()


def _same_file(a: Target, b: Target) -> bool:
    if is_store_url(a) or is_store_url(b):
        return False
    return Path(a).resolve() == Path(b).resolve()


def _refuse_other_schema(db: sqlite_utils.Database, shown: str) -> None:
    _applied, missing, unknown = schema_state(db)
    if unknown:
        raise DigestError(f"{shown}: written by a newer digest ({unknown[-1]}); upgrade digest to copy it")
    if missing:
        raise DigestError(
            f"{shown}: its schema is behind this digest's ({len(missing)} migrations to apply); run "
            f"`digest db migrate` on it first (for a file: `digest --db FILE db migrate`)"
        )


def _copy(
    source_db: sqlite_utils.Database,
    target_db: sqlite_utils.Database,
    report: CopyReport,
    progress: Progress | None,
) -> CopyReport:
    tables = copy_order(target_db)
    already = {name: rows for name, rows in row_counts(target_db, tables).items() if rows}
    if already:
        name, rows = next(iter(already.items()))
        raise DigestError(
            f"{report.target}: not empty ({name} has {rows} rows); copy into a new, empty database"
        )
    with read_snapshot(source_db):
        missing = sorted(set(tables) - set(data_tables(source_db)))
        if missing:
            raise DigestError(f"{report.source}: has no table {missing[0]}; is it a digest database?")
        expected = row_counts(source_db, tables)
        totals = ledger_totals(source_db)
        total, done = sum(expected.values()), 0
        with transaction(target_db):
            for name in tables:
                done = _copy_table(source_db, target_db, name, done, total, progress)
                report.tables[name] = expected[name]
            reset_identities(target_db, tables)
            copied = row_counts(target_db, tables)
            if copied != expected:
                wrong = next(n for n in tables if copied[n] != expected[n])
                raise DigestError(
                    f"{report.target}: {wrong} has {copied[wrong]} rows after the copy, the source "
                    f"{expected[wrong]}; nothing was kept"
                )
            if ledger_totals(target_db) != totals:
                raise DigestError(f"{report.target}: the deliveries ledger's totals differ; nothing was kept")
    report.deliveries = sum(totals.values())
    return report


def _copy_table(
    source_db: sqlite_utils.Database,
    target_db: sqlite_utils.Database,
    name: str,
    done: int,
    total: int,
    progress: Progress | None,
) -> int:
    """Stream one table across in batches; the rows copied so far in all."""
    with stream_rows(source_db, f'SELECT * FROM "{name}"') as (columns, batches):
        load = getattr(target_db, "copy_rows", None) or _inserter(target_db)  # PostgreSQL: COPY
        for rows in batches:
            load(name, columns, rows)
            done += len(rows)
            if progress is not None:
                progress(name, done, total)
    return done


def _inserter(db: sqlite_utils.Database) -> Callable[[str, list[str], list[Any]], None]:
    """Load rows with one INSERT per row (the SQLite target; PostgreSQL's has ``copy_rows``)."""

    def insert(name: str, columns: list[str], rows: list[Any]) -> None:
        quoted, marks = ", ".join(f'"{c}"' for c in columns), ", ".join("?" for _ in columns)
        db.conn.executemany(f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})', [tuple(r) for r in rows])

    return insert


@contextmanager
def stream_rows(db: sqlite_utils.Database, sql: str) -> Iterator[tuple[list[str], Iterator[list[Any]]]]:
    """The column names of ``sql``'s rows and the rows in batches of :data:`BATCH_ROWS`, read
    as they are needed (never a whole table in memory).

    An adapter that offers ``stream(sql, size)`` serves it; SQLite's cursor reads as it goes;
    on PostgreSQL otherwise a server-side cursor does (inside :func:`read_snapshot`).
    """
    served = getattr(db, "stream", None)
    if callable(served):
        with served(sql, BATCH_ROWS) as streamed:
            yield streamed
        return
    if dialect(db) == "sqlite":
        cursor = db.execute(sql)
        yield [d[0] for d in cursor.description], iter(lambda: cursor.fetchmany(BATCH_ROWS), [])
        return
    # TODO(pg-core): serve this from the adapter (PgDatabase.stream); its execute() reads all rows.
    with db.raw.cursor(name="digest_copy") as cursor:
        cursor.execute(sql)
        yield [d.name for d in cursor.description], iter(lambda: cursor.fetchmany(BATCH_ROWS), [])


def copy_order(db: sqlite_utils.Database) -> list[str]:
    """The data tables in an order where each comes after the tables its foreign keys name."""
    parents = foreign_key_parents(db)
    ordered: list[str] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name in path:
            return
        for parent in sorted(parents.get(name, set()) - {name}):
            place(parent, (*path, name))
        placed.add(name)
        ordered.append(name)

    tables = data_tables(db)
    for name in tables:
        place(name, ())
    return [name for name in ordered if name in tables]


def foreign_key_parents(db: sqlite_utils.Database) -> dict[str, set[str]]:
    """Each data table → the tables its foreign keys reference (a dialect's own catalogue)."""
    served = getattr(db, "foreign_key_parents", None)
    if callable(served):  # the store's adapter knows its catalogue best
        return served()
    tables = data_tables(db)
    if dialect(db) == "sqlite":
        return {t: {row[2] for row in db.execute(f'PRAGMA foreign_key_list("{t}")')} for t in tables}
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in db.execute(
        "SELECT tc.table_name, ccu.table_name FROM information_schema.table_constraints tc"
        " JOIN information_schema.constraint_column_usage ccu"
        " ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema"
        " WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()"
    ):
        if child in parents:
            parents[child].add(parent)
    return parents


def reset_identities(db: sqlite_utils.Database, tables: list[str]) -> None:
    """After rows came in with their ids: make the next generated id follow the largest.

    SQLite needs nothing (a rowid follows the largest by itself). On PostgreSQL every serial or
    identity column's sequence is set to max + 1; an adapter that offers ``reset_identities``
    does it its own way.
    """
    if dialect(db) == "sqlite":
        return
    served = getattr(db, "reset_identities", None)
    if callable(served):
        served(tables)
        return
    generated = db.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
        " AND (is_identity = 'YES' OR position('nextval(' in coalesce(column_default, '')) = 1)"
    ).fetchall()
    for table, column in generated:
        if table in tables:
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),"
                f' (SELECT coalesce(max("{column}"), 0) + 1 FROM "{table}"), false)'
            ).fetchall()


@contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """Read the source as of one moment (one read-only transaction), so the counts checked at
    the end are the rows copied even if someone writes to it meanwhile; nothing is written."""
    served = getattr(db, "read_snapshot", None)
    if callable(served):
        with served():
            yield
        return
    if db.conn.in_transaction:
        yield
        return
    if dialect(db) == "sqlite":
        db.conn.execute("BEGIN")
    else:  # TODO(pg-core): serve this from the adapter (PgDatabase.read_snapshot)
        db.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    try:
        yield
    finally:
        (db.conn if dialect(db) == "sqlite" else db.raw).execute("ROLLBACK")
