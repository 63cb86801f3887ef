"""The PostgreSQL store: a psycopg 3 connection that looks like ``sqlite_utils.Database``.

Owners keep calling ``db.execute(sql, params)``, ``db.query``, ``db.executescript``,
``db.conn.executemany``, ``db.conn.in_transaction`` with SQLite's SQL: each statement is
translated once (:mod:`digest.store.dialect`) and run on an autocommit connection;
``transaction()`` sends BEGIN/SAVEPOINT/COMMIT itself. Values come back as on SQLite:
tuples, ``int`` for whole numbers (also ``sum()``), ``float``, ``str``, ``bytes``; a Python
bool is written as 0/1. An INSERT into a table with an ``id`` identity column returns the
new id, so ``cursor.lastrowid`` works.

Errors come out in SQLite's classes so no caller has to know the store: a constraint
violation is ``sqlite3.IntegrityError``, a lock or serialization conflict
``sqlite3.OperationalError`` ("database is locked"), other SQL errors
``sqlite3.OperationalError``; a lost connection is a one-line :class:`DigestError`.
No message ever carries the password.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import NumericLoader
from sqlite_utils.db import NotFoundError

from digest.errors import DigestError
from digest.store.dialect import UPSERT_HOLE, Translated, split_statements, translate, upsert_clause

PASSWORD_ENV = "DIGEST_DB_PASSWORD"
URL_PREFIXES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 10


def is_postgresql_url(target: object) -> bool:
    """Whether ``target`` (a path or URL) names a PostgreSQL database."""
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


class _IntFromNumeric(NumericLoader):
    """``numeric`` (what ``sum()`` of integers gives) as int when whole, else float."""

    def load(self, data: Any) -> int | float:
        value: Decimal = super().load(data)
        return int(value) if value == value.to_integral_value() else float(value)


class _BoolAsInt(Dumper):
    """A Python bool as the integer SQLite would store (digest's flags are INTEGER columns)."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class PgCursor:
    """The result of one statement, with the parts of ``sqlite3.Cursor`` digest uses."""

    def __init__(self, rows: list[tuple], rowcount: int, lastrowid: int | None, description: Any) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.description = description

    def fetchone(self) -> tuple | None:
        """The next row, or None."""
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        """The rows not yet read."""
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def fetchmany(self, size: int = 1) -> list[tuple]:
        """Up to ``size`` of the rows not yet read."""
        rest = self._rows[self._next : self._next + size]
        self._next += len(rest)
        return rest

    def __iter__(self) -> Iterator[tuple]:
        while (row := self.fetchone()) is not None:
            yield row


class PgConnection:
    """``db.conn``: the connection-level calls digest makes on ``sqlite3.Connection``."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (also one that failed and awaits its ROLLBACK)."""
        status = self._db.raw.info.transaction_status
        return status in (TransactionStatus.INTRANS, TransactionStatus.INERROR, TransactionStatus.ACTIVE)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PgCursor:
        """Run one statement (see :meth:`PgDatabase.execute`)."""
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        """Run one statement for each parameter row (pipelined by psycopg)."""
        return self._db.executemany(sql, rows)

    def create_function(self, name: str, narg: int, func: Any, *, deterministic: bool = False) -> None:
        """SQLite's Python functions exist on PostgreSQL as SQL functions made with the schema
        (``digest_fold``); one that does not is an error, not a silent difference."""
        if not self._db.has_function(name):
            raise DigestError(f"SQL function {name} does not exist on PostgreSQL; digest cannot use it there")

    def close(self) -> None:
        """Close the connection, or give it back to its pool (see :meth:`PgDatabase.close`)."""
        self._db.close()


class PgTable:
    """``db[name]``: the few ``sqlite_utils.Table`` calls digest makes."""

    def __init__(self, db: PgDatabase, name: str) -> None:
        self.db = db
        self.name = name
        self.last_pk: int | None = None

    @property
    def columns_dict(self) -> dict[str, type]:
        """Column name → Python type, in table order."""
        kinds = {"bigint": int, "integer": int, "double precision": float, "bytea": bytes}
        rows = self.db.raw.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            [self.name],
        ).fetchall()
        return {name: kinds.get(kind, str) for name, kind in rows}

    def insert(self, row: dict[str, Any]) -> PgTable:
        """Insert one row; its id is then :attr:`last_pk`."""
        columns = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        cursor = self.db.execute(
            f'INSERT INTO "{self.name}" ({columns}) VALUES ({marks})', list(row.values())
        )
        self.last_pk = cursor.lastrowid
        return self

    @property
    def count(self) -> int:
        """How many rows the table holds."""
        return int(self.db.execute(f'SELECT count(*) FROM "{self.name}"').fetchone()[0])

    def get(self, pk: int) -> dict[str, Any]:
        """The row whose id is ``pk`` (``sqlite_utils``' NotFoundError when there is none)."""
        for row in self.db.query(f'SELECT * FROM "{self.name}" WHERE id = ?', [pk]):
            return row
        raise NotFoundError(f"{self.name}: no row with id {pk}")

    def rows_where(
        self, where: str | None = None, where_args: list[Any] | None = None, *, order_by: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The rows matching ``where`` (SQLite spelling, ``?`` marks), as ``sqlite_utils`` gives them."""
        sql = f'SELECT * FROM "{self.name}"'
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        return self.db.query(sql, where_args or [])

    def insert_all(self, rows: Iterable[dict[str, Any]]) -> PgTable:
        """Insert each row in turn (tests fill tables so); the last one's id is :attr:`last_pk`."""
        for row in rows:
            self.insert(row)
        return self

    def update(self, pk: int, changes: dict[str, Any]) -> PgTable:
        """Set ``changes`` on the row whose id is ``pk``."""
        if changes:
            sets = ", ".join(f'"{c}" = ?' for c in changes)
            self.db.execute(f'UPDATE "{self.name}" SET {sets} WHERE id = ?', [*changes.values(), pk])
        self.last_pk = pk
        return self


class PgDatabase:
    """A PostgreSQL database with the surface of ``sqlite_utils.Database`` digest uses.

    ``raw`` is a connection made by :func:`connect`, or one taken from a pool: then ``release``
    gives it back, and :meth:`close` calls it (once) instead of closing the connection."""

    dialect = "postgresql"

    def __init__(
        self,
        raw: psycopg.Connection,
        where: str,
        *,
        release: Callable[[psycopg.Connection], None] | None = None,
    ) -> None:
        self.raw = raw
        self.where = where  # host:port/dbname, for messages (never the password)
        self._release = release
        self._released = False
        self.conn = PgConnection(self)
        self._identity: set[str] | None = None
        self._keys: dict[str, list[str]] = {}
        self._functions: dict[str, bool] = {}

    # -- running SQL ---------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PgCursor:
        """Run one statement of SQLite's SQL; returns its rows and counts."""
        t = translate(sql)
        if t.noop:
            return PgCursor([], -1, None, None)
        text, args = self._finish(t), _arguments(t, params)
        add_id = t.insert_into is not None and not t.returning and t.insert_into in self._identity_tables()
        if add_id:
            text += " RETURNING id"
        with self._errors():
            cur = self.raw.execute(text, args)
            rows = cur.fetchall() if cur.description is not None else []
        if t.ddl:
            self._identity, self._keys = None, {}
        if add_id:
            return PgCursor([], cur.rowcount, rows[-1][0] if rows else None, None)
        return PgCursor(rows, cur.rowcount, None, cur.description)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        """Run one statement for each parameter row."""
        t = translate(sql)
        if t.noop:
            return PgCursor([], -1, None, None)
        text = self._finish(t)
        with self._errors(), self.raw.cursor() as cur:
            cur.executemany(text, [_arguments(t, r) for r in rows])
            return PgCursor([], cur.rowcount, None, None)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Load ``rows`` into ``table`` with ``COPY ... FROM STDIN`` (a bulk load: several
        times faster than one INSERT per row)."""
        quoted = ", ".join(f'"{c}"' for c in columns)
        with (
            self._errors(),
            self.raw.cursor() as cur,
            cur.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def executescript(self, script: str) -> None:
        """Run each statement of ``script`` in turn (no parameters)."""
        for statement in split_statements(script):
            self.execute(statement)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> Iterator[dict[str, Any]]:
        """The rows of a SELECT as dicts."""
        cursor = self.execute(sql, params)
        names = [d.name for d in cursor.description or []]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def table_names(self) -> list[str]:
        """The tables of the current schema, by name."""
        rows = self.raw.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server); a pooled one
        goes back to its pool instead, and this object must not be used afterwards."""
        if self._release is None:
            self.raw.close()
        elif not self._released:
            self._released = True  # a second close must not give back a connection in use elsewhere
            self._release(self.raw)

    def has_function(self, name: str) -> bool:
        """Whether an SQL function ``name`` exists (cached)."""
        if name not in self._functions:
            row = self.raw.execute("SELECT 1 FROM pg_proc WHERE proname = %s", [name.lower()]).fetchone()
            self._functions[name] = row is not None
        return self._functions[name]

    # -- transactions --------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgDatabase]:
        """All-or-nothing block: BEGIN … COMMIT, nested blocks are savepoints."""
        conn = self.conn
        if conn.in_transaction:
            name = f"sp_{secrets.token_hex(6)}"
            self.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                if self.alive() and conn.in_transaction:
                    self.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    self.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                self.execute(f"RELEASE SAVEPOINT {name}")
            return
        self.execute("BEGIN")
        try:
            yield self
        except BaseException:
            if self.alive() and conn.in_transaction:
                self.execute("ROLLBACK")
            raise
        else:
            self.execute("COMMIT")

    # -- internals -----------------------------------------------------------------------
    def alive(self) -> bool:
        return not self.raw.closed and not self.raw.broken

    def _finish(self, t: Translated) -> str:
        if t.upsert is None:
            return t.sql
        table, columns = t.upsert
        return t.sql.replace(UPSERT_HOLE, upsert_clause(self._primary_key(table), columns))

    def _identity_tables(self) -> set[str]:
        if self._identity is None:
            with self._errors():
                rows = self.raw.execute(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
                    " AND column_name = 'id' AND is_identity = 'YES'"
                ).fetchall()
            self._identity = {r[0] for r in rows}
        return self._identity

    def _primary_key(self, table: str) -> list[str]:
        if table not in self._keys:
            with self._errors():
                rows = self.raw.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                    " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                    " WHERE i.indrelid = %s::regclass AND i.indisprimary",
                    [table],
                ).fetchall()
            self._keys[table] = [r[0] for r in rows]
        return self._keys[table]

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's errors as SQLite's (see the module docstring)."""
        try:
            yield
        except pg_errors.IntegrityError as exc:
            raise sqlite3.IntegrityError(first_line(exc)) from None
        except (
            pg_errors.LockNotAvailable,
            pg_errors.DeadlockDetected,
            pg_errors.SerializationFailure,
        ) as exc:
            raise sqlite3.OperationalError(f"database is locked ({first_line(exc)})") from None
        except psycopg.OperationalError as exc:
            if self.alive():
                raise sqlite3.OperationalError(first_line(exc)) from None
            raise lost_connection(self.where, exc) from None
        except psycopg.InterfaceError as exc:  # the connection was already closed
            raise lost_connection(self.where, exc) from None
        except psycopg.DatabaseError as exc:
            raise sqlite3.OperationalError(first_line(exc)) from None


def lost_connection(where: str, exc: BaseException) -> DigestError:
    """The one line for a connection that went away mid-command."""
    return DigestError(
        f"lost the connection to PostgreSQL at {where} ({first_line(exc)}); the unfinished"
        " transaction was rolled back, nothing of it was kept: run the command again"
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _arguments(t: Translated, params: Sequence[Any] | None) -> Sequence[Any]:
    if params is None:
        return ()
    if isinstance(params, dict):
        raise TypeError("named parameters are not supported on PostgreSQL; use ?")
    if t.order is None:
        return params
    return [params[i] for i in t.order]


@dataclass(frozen=True)
class Target:
    """How to reach a PostgreSQL database: its URL, psycopg's connect options (the password
    among them, so never shown) and ``where`` it is (host:port/dbname) for messages."""

    url: str
    options: dict[str, Any] = field(repr=False)
    where: str


def target(url: str, *, application_name: str | None = None) -> Target:
    """The one way digest reaches the database at ``url`` (a libpq URL): autocommit, the
    password from ``DIGEST_DB_PASSWORD`` when set (else libpq's usual places), a connect
    timeout and, when given, the session's ``application_name`` (unless the URL sets them).
    :func:`connect` and the web's pool (:mod:`digest.store.pg_pool`) both use it, with
    :func:`configure` on each new connection."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise DigestError(
            "the PostgreSQL URL is not valid; write postgresql://user@host:5432/dbname"
        ) from None
    options: dict[str, Any] = {"autocommit": True}
    if os.environ.get(PASSWORD_ENV):
        options["password"] = os.environ[PASSWORD_ENV]
    if "connect_timeout" not in info:
        options["connect_timeout"] = CONNECT_TIMEOUT_S
    if application_name and "application_name" not in info:
        options["application_name"] = application_name[:63]
    where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
    return Target(url, options, where)


def configure(raw: psycopg.Connection) -> None:
    """Set up a new connection for digest: values load and dump as on SQLite (see the module)."""
    raw.adapters.register_loader("numeric", _IntFromNumeric)
    raw.adapters.register_dumper(bool, _BoolAsInt)


def cannot_connect(where: str, reason: BaseException | str) -> DigestError:
    """The one line for a connection that could not be made."""
    text = reason if isinstance(reason, str) else first_line(reason)
    return DigestError(f"cannot connect to PostgreSQL at {where}: {text}")


def connect(url: str) -> PgDatabase:
    """Connect to the PostgreSQL database at ``url`` (see :func:`target`)."""
    to = target(url)
    try:
        raw = psycopg.connect(to.url, **to.options)
    except psycopg.Error as exc:
        raise cannot_connect(to.where, exc) from None
    configure(raw)
    return PgDatabase(raw, to.where)
