"""The SQLite store: opening the database and upgrading its schema.

One file, WAL mode, a busy timeout and foreign keys on. The schema is a list
of numbered migrations recorded in ``_migrations``; an older database upgrades
in place. Later features add a migration at the end of :data:`MIGRATIONS`;
never edit one that has shipped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from digest.errors import DigestError
from digest.store.migrations import LATER_MIGRATIONS
from digest.store.pg_schema import m027_claim_order  # the schema's one PostgreSQL-only step

BUSY_TIMEOUT_MS = 30_000
MAX_ID = 2**63 - 1
"""The largest row id SQLite can hold; a larger one names nothing (and cannot be bound)."""
DB_MODE = 0o600  # the list is personal data; SQLite gives its -wal/-shm files the same mode
# Pages of 16 KiB rather than SQLite's 4 KiB for new databases: a subscriber list, its
# consent events and the delivery ledger grow by appending rows, and bigger pages mean a
# quarter of the WAL frames to write and check-point (a 1M-row import's commit: ~1.8 s → ~0.9 s).
PAGE_SIZE = 16384

Migration = Callable[[sqlite_utils.Database], None]

# The deliveries ledger (see m004_deliveries): every status, and those still to be sent.
DELIVERY_STATUSES = ("queued", "sending", "sent", "deferred", "failed", "skipped")
PENDING_DELIVERY = ("queued", "sending", "deferred")


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Format an aware datetime as UTC ISO-8601 (``2026-01-23T07:00:00+00:00``)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime; digest stores aware UTC times only")
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    """Parse a stored ISO-8601 time back into an aware UTC datetime."""
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def open_store(path: str | Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date; a
    ``postgresql://`` URL opens that database (:class:`~digest.store.postgres.PgDatabase`)."""
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        return _open_postgresql(path, migrate=migrate)
    path = Path(path)
    if not path.parent.exists():
        raise DigestError(f"{path}: folder {path.parent} does not exist; create it or use --db")
    _create_private(path)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        # Autocommit at the driver level; transactions are explicit (see transaction()).
        conn.isolation_level = None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Only a new, empty file takes it (an existing database keeps its page size).
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise DigestError(f"{path}: cannot open database ({exc}); is it an SQLite file?") from None
    db = sqlite_utils.Database(conn)
    if migrate:
        try:
            migrate_store(db)
        except sqlite3.OperationalError:
            conn.close()
            raise  # locked or busy: the CLI says a retry can fix it
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DigestError(f"{path}: the database is damaged ({exc}); restore it from a backup") from None
    return db


def _open_postgresql(url: str, *, migrate: bool) -> sqlite_utils.Database:
    from digest.store.postgres import connect  # lazy: start-up (psycopg only for PostgreSQL)

    db = connect(url)
    if migrate:
        try:
            migrate_store(db)  # type: ignore[arg-type]
        except BaseException:
            db.close()
            raise
    return db  # type: ignore[return-value]


def database_file(db: sqlite_utils.Database) -> Path | None:
    """The file the database lives in (None for an in-memory database)."""
    row = db.execute("PRAGMA database_list").fetchone()
    return Path(row[2]) if row and row[2] else None


def ping(db: sqlite_utils.Database) -> None:
    """Ask the database something trivial: raises when it cannot answer."""
    db.execute("SELECT 1").fetchone()


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (an existing one is left as
    it is). SQLite creates the WAL and shared-memory files with the same mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise DigestError(f"{path}: cannot create the database ({exc.strerror or exc})") from None
    os.close(fd)


def _newer_schema(applied: list[tuple[int, str]]) -> str | None:
    """The error to give when the ``(id, name)`` rows of ``_migrations`` show the database was
    migrated by a newer digest (it has migrations this one does not know), else None."""
    known = {m.__name__ for m in MIGRATIONS}
    if all(name in known for _, name in applied):
        return None
    schema = max(row_id for row_id, _ in applied)
    return f"this database was written by a newer digest (schema {schema}); upgrade digest"


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """All-or-nothing block. Outermost takes the write lock at once (BEGIN IMMEDIATE),
    so two processes never deadlock upgrading a read to a write; nested blocks
    are savepoints. On PostgreSQL: BEGIN, savepoints, COMMIT."""
    if not isinstance(db, sqlite_utils.Database):
        with db.transaction():
            yield db
        return
    conn = db.conn
    if conn.in_transaction:
        name = f"sp_{secrets.token_hex(6)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            conn.execute(f"RELEASE SAVEPOINT {name}")
        return
    _begin_immediate(conn)
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another writer in short steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25... ms between tries, so a
    writer that finds the lock taken waits on long after a transaction of a millisecond or two
    has ended: with eight connection workers recording results, that stalled them for
    seconds per send. Here the wait starts at 0.1 ms and doubles up to 2 ms, for at most
    :data:`BUSY_TIMEOUT_MS` like before. The busy timeout is back in place for everything else.
    """
    try:
        conn.execute("PRAGMA busy_timeout = 0")
    except sqlite3.Error:  # not expected; SQLite's own waiting is then the fallback
        conn.execute("BEGIN IMMEDIATE")
        return
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.0001
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, 0.002)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def applied_migrations(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations already applied to ``db``, in order."""
    if "_migrations" not in db.table_names():
        return []
    return [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY id").fetchall()]


def migrate_store(db: sqlite_utils.Database) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the names applied."""
    if not isinstance(db, sqlite_utils.Database):
        from digest.store.pg_schema import migrate_postgresql  # lazy: start-up (PostgreSQL only)

        return migrate_postgresql(db, MIGRATIONS, _newer_schema, lambda: iso(utcnow()))
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations ("
        "id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
    )
    # One read of the ledger serves both the "newer digest" check and the skip list.
    rows = db.execute("SELECT id, name FROM _migrations ORDER BY id").fetchall()
    newer = _newer_schema(rows)
    if newer:
        raise DigestError(newer)
    applied = {name for _, name in rows}
    done: list[str] = []
    for migration in MIGRATIONS:
        name = migration.__name__
        if name in applied:
            continue
        # A migration that rebuilds a table runs with foreign keys off (they cannot change
        # inside a transaction): dropping the old table must not fire ON DELETE actions.
        rebuild = name in _REBUILDS_TABLES
        if rebuild:
            db.conn.execute("PRAGMA foreign_keys = OFF")
            if db.execute("PRAGMA foreign_keys").fetchone()[0]:  # a transaction was open: no-op
                db.conn.execute("PRAGMA foreign_keys = ON")
                raise DigestError(f"migration {name} must run outside a transaction; nothing was changed")
        try:
            with transaction(db):
                # Checked inside the write lock: two processes starting together apply it once.
                if db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone():
                    continue
                # Only what the rebuild breaks counts: a reference left dangling earlier (rows
                # deleted by hand with foreign keys off) must not stop the database opening.
                dangling = _foreign_key_violations(db) if rebuild else set()
                migration(db)
                if rebuild and _foreign_key_violations(db) - dangling:
                    raise DigestError(f"migration {name} would break a foreign key; nothing was changed")
                db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, iso(utcnow())])
                done.append(name)
        finally:
            if rebuild:
                db.conn.execute("PRAGMA foreign_keys = ON")
    return done


def _foreign_key_violations(db: sqlite_utils.Database) -> set[tuple]:
    """(table, rowid, parent) of every row whose reference points nowhere."""
    return {tuple(row[:3]) for row in db.execute("PRAGMA foreign_key_check")}


def m001_feeds_and_articles(db: sqlite_utils.Database) -> None:
    """Sources and the articles collected from them."""
    db.executescript(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,          -- http(s) URL or absolute file path
            name TEXT,
            category TEXT,                     -- default category for its items
            etag TEXT,
            modified TEXT,                     -- Last-Modified as sent by the server
            last_fetched_at TEXT,
            last_status TEXT,                  -- new/updated/unchanged/error summary
            last_error TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            guid TEXT NOT NULL UNIQUE,         -- feed guid, else canonical url, else hash
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            source TEXT,
            author TEXT,
            category TEXT NOT NULL,
            published_at TEXT NOT NULL,        -- UTC ISO-8601
            date_estimated INTEGER NOT NULL DEFAULT 0,
            summary TEXT NOT NULL DEFAULT '',  -- sanitised HTML (small allow-list)
            summary_text TEXT NOT NULL DEFAULT '',
            reading_minutes INTEGER NOT NULL DEFAULT 1,
            content_hash TEXT,                 -- detects a changed article on re-ingest
            feed_id INTEGER REFERENCES feeds(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX articles_published ON articles(published_at);
        CREATE INDEX articles_category ON articles(category, published_at);
        """
    )


def m002_issues(db: sqlite_utils.Database) -> None:
    """Digest issues, their articles and their frozen rendered variants."""
    db.executescript(
        """
        CREATE TABLE issues (
            id INTEGER PRIMARY KEY,
            edition TEXT NOT NULL,
            number INTEGER NOT NULL,
            period_start TEXT NOT NULL,        -- UTC ISO-8601, inclusive
            period_end TEXT NOT NULL,          -- UTC ISO-8601, exclusive; the scheduled time
            subject TEXT NOT NULL,
            preheader TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'sending', 'sent')),
            snapshot TEXT,                     -- JSON of the composed issue, frozen at send
            created_at TEXT NOT NULL,
            frozen_at TEXT,
            sent_at TEXT,
            UNIQUE (edition, period_start),
            UNIQUE (edition, number)
        );
        CREATE TABLE issue_articles (
            issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            article_id INTEGER NOT NULL REFERENCES articles(id),
            category TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (issue_id, article_id)
        );
        CREATE INDEX issue_articles_article ON issue_articles(article_id);
        CREATE TABLE issue_variants (
            issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            variant TEXT NOT NULL,             -- '*' for all categories, else sorted JSON list
            html TEXT NOT NULL,                -- with per-recipient placeholders
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (issue_id, variant)
        );
        """
    )


def m003_subscribers(db: sqlite_utils.Database) -> None:
    """The subscriber list, its consent record and the suppression list."""
    db.executescript(
        """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- normalised; domain in IDNA form
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
            editions TEXT,                     -- JSON list; NULL = all editions
            categories TEXT,                   -- JSON list; NULL = all categories
            timezone TEXT,                     -- IANA zone; NULL = the edition's
            source TEXT NOT NULL DEFAULT 'cli',
            attributes TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            confirmed_at TEXT,
            unsubscribed_at TEXT
        );
        CREATE INDEX subscribers_status ON subscribers(status);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            email_hash TEXT,                   -- survives removal of the subscriber
            kind TEXT NOT NULL,                -- subscribe/confirm/unsubscribe/bounce/...
            source TEXT NOT NULL,              -- cli/import/web/bounce/send
            detail TEXT NOT NULL DEFAULT '{}', -- JSON
            at TEXT NOT NULL
        );
        CREATE INDEX events_subscriber ON events(subscriber_id);
        CREATE TABLE suppressions (
            email_hash TEXT PRIMARY KEY,       -- one-way hash of the normalised address
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """
    )


def m004_deliveries(db: sqlite_utils.Database) -> None:
    """The delivery ledger: one row per issue × subscriber."""
    db.executescript(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            issue_id INTEGER NOT NULL REFERENCES issues(id),
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            email TEXT,                        -- snapshot; erased when the subscriber is removed
            variant TEXT NOT NULL DEFAULT '*',
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'skipped')),
            due_at TEXT,                       -- UTC; local-time delivery sends at or after it
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            smtp_code INTEGER,
            enhanced_code TEXT,
            message_id TEXT,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (issue_id, subscriber_id)
        );
        CREATE INDEX deliveries_issue_status ON deliveries(issue_id, status);
        """
    )


def m005_runs(db: sqlite_utils.Database) -> None:
    """Scheduled runs: one line per `digest run`, for idempotence and the log."""
    db.executescript(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,                  -- the moment the run acted for (UTC)
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT NOT NULL DEFAULT '{}' -- JSON: ingested, built, sent
        );
        """
    )


def m006_subscriber_id_floor(db: sqlite_utils.Database) -> None:
    """The highest subscriber id ever given out: a removed subscriber's id is never reused,
    so a token in an old email can never act on someone who joined later."""
    db.execute("CREATE TABLE subscriber_id_floor (id INTEGER NOT NULL)")  # one row


def m007_variant_trimmed(db: sqlite_utils.Database) -> None:
    """How many articles a stored variant left out to fit the size budget, kept beside it
    rather than read back out of its text (where an article's own words could fake it).
    Variants stored before this read 0."""
    db.execute("ALTER TABLE issue_variants ADD COLUMN trimmed INTEGER NOT NULL DEFAULT 0")


def m008_subscriber_email_index(db: sqlite_utils.Database) -> None:
    """The unique address constraint as a named index (``subscribers_email``) instead of one
    declared in the table: a large import into a small list drops it and builds it once at the
    end (see subscribers.importer), which an automatic index does not allow. Same rule: one
    subscriber per address, compared case-insensitively. The status check is spelled with OR:
    SQLite (3.40) builds a lookup table for an IN list each time it checks a row, which was a
    third of the cost of inserting a subscriber. Rebuilds the table (ids kept); PostgreSQL
    (foreign keys keep it from being dropped) swaps the constraint for the index in place."""
    if not isinstance(db, sqlite_utils.Database):
        db.executescript(
            "ALTER TABLE subscribers DROP CONSTRAINT subscribers_email_key;"
            " CREATE UNIQUE INDEX subscribers_email ON subscribers(email)"
        )
        return
    db.executescript(
        """
        CREATE TABLE subscribers_m008 (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL COLLATE NOCASE, -- normalised; domain in IDNA form; unique (index)
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status = 'pending' OR status = 'active' OR status = 'unsubscribed'
                       OR status = 'bounced'),
            editions TEXT,                     -- JSON list; NULL = all editions
            categories TEXT,                   -- JSON list; NULL = all categories
            timezone TEXT,                     -- IANA zone; NULL = the edition's
            source TEXT NOT NULL DEFAULT 'cli',
            attributes TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            confirmed_at TEXT,
            unsubscribed_at TEXT
        );
        INSERT INTO subscribers_m008 (id, email, name, status, editions, categories, timezone, source,
                                      attributes, created_at, updated_at, confirmed_at, unsubscribed_at)
            SELECT id, email, name, status, editions, categories, timezone, source,
                   attributes, created_at, updated_at, confirmed_at, unsubscribed_at
            FROM subscribers ORDER BY id;
        DROP TABLE subscribers;
        ALTER TABLE subscribers_m008 RENAME TO subscribers;
        CREATE UNIQUE INDEX subscribers_email ON subscribers(email);
        CREATE INDEX subscribers_status ON subscribers(status);
        """
    )


_REBUILDS_TABLES = {"m008_subscriber_email_index"}

MIGRATIONS: list[Migration] = [
    m001_feeds_and_articles,
    m002_issues,
    m003_subscribers,
    m004_deliveries,
    m005_runs,
    m006_subscriber_id_floor,
    m007_variant_trimmed,
    m008_subscriber_email_index,
    *LATER_MIGRATIONS,
    m027_claim_order,
]
