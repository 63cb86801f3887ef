"""The schema on PostgreSQL: what SQLite has built in, and the migrations run one at a time.

Before any migration the database gets the few things digest's SQLite SQL assumes
(:data:`COMPAT_SQL`): a case-insensitive collation ``nocase`` (ICU, nondeterministic: a
UNIQUE column or index with it treats ``A@x`` and ``a@x`` as one, like SQLite's NOCASE,
though it folds all of Unicode's case, not only ASCII's), ``digest_json_each(text)``
with SQLite's ``json_each`` columns, ``digest_json_extract`` and ``digest_json_set``
(SQLite's ``json_extract``/``json_set``; a JSON true or false reads as 1 or 0, as there),
and ``digest_fold`` (subscribers' category fold; ICU's ``lower``, where SQLite calls
Python's ``casefold``: É folds in a database of any locale, also C).

Migrations run as on SQLite, each in its own transaction and recorded in
``_migrations``; an advisory lock held for the whole run makes two processes starting
together apply each one once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils

from digest.errors import DigestError
from digest.store.dialect import is_postgresql

MIGRATION_LOCK = 2_026_023  # pg_advisory_lock key: digest's schema upgrade

COMPAT_SQL = (
    "CREATE COLLATION IF NOT EXISTS nocase"
    " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    """CREATE OR REPLACE FUNCTION digest_json_each(doc text)
    RETURNS TABLE (key text, value text, type text, rowid bigint) LANGUAGE sql IMMUTABLE AS $$
        SELECT (e.n - 1)::text, e.v #>> '{}', json_typeof(e.v), e.n - 1
          FROM json_array_elements(CASE WHEN json_typeof(doc::json) = 'array' THEN doc::json
                                   ELSE '[]'::json END) WITH ORDINALITY AS e(v, n)
        UNION ALL
        SELECT o.key, o.value #>> '{}', json_typeof(o.value), o.n - 1
          FROM json_each(CASE WHEN json_typeof(doc::json) = 'object' THEN doc::json
                         ELSE '{}'::json END) WITH ORDINALITY AS o(key, value, n)
    $$""",
    "CREATE OR REPLACE FUNCTION digest_fold(value text) RETURNS text LANGUAGE sql IMMUTABLE"
    ' AS $$ SELECT lower(value COLLATE "und-x-icu") $$',  # ICU: all of Unicode, in any locale
    # SQLite's JSON path ('$.a.b', '$[0]') as PostgreSQL's text[] path.
    r"""CREATE OR REPLACE FUNCTION digest_json_path(path text) RETURNS text[]
    LANGUAGE sql IMMUTABLE AS $$
        SELECT coalesce(array_agg(coalesce(m[1], m[2]) ORDER BY n), '{}')
          FROM regexp_matches(path, '\.([^.\[]+)|\[(\d+)\]', 'g') WITH ORDINALITY AS t(m, n)
    $$""",
    """CREATE OR REPLACE FUNCTION digest_json_extract(doc text, path text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN v = 'true'::jsonb THEN '1' WHEN v = 'false'::jsonb THEN '0'
               ELSE v #>> '{}' END
          FROM (SELECT doc::jsonb #> digest_json_path(path) AS v) AS j
    $$""",
    """CREATE OR REPLACE FUNCTION digest_json_set(doc text, path text, value jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
        SELECT jsonb_set(doc::jsonb, digest_json_path(path), value)::text
    $$""",
)


def migrate_postgresql(
    db: Any,
    migrations: Sequence[Callable[[Any], None]],
    newer_schema: Callable[[list[tuple[int, str]]], str | None],
    stamp: Callable[[], str],
) -> list[str]:
    """Apply every pending migration to the PostgreSQL ``db``; return the names applied.

    ``newer_schema`` says why a database with migrations unknown here is refused;
    ``stamp`` gives the time recorded beside each one (both from the SQLite store).
    """
    db.execute("SELECT pg_advisory_lock(?)", [MIGRATION_LOCK])
    try:
        for statement in COMPAT_SQL:
            db.raw.execute(statement)
        db.execute(
            "CREATE TABLE IF NOT EXISTS _migrations ("
            "id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
        )
        rows = db.execute("SELECT id, name FROM _migrations ORDER BY id").fetchall()
        newer = newer_schema(rows)
        if newer:
            raise DigestError(newer)
        applied = {name for _, name in rows}
        done: list[str] = []
        for migration in migrations:
            name = migration.__name__
            if name in applied:
                continue
            with db.transaction():
                migration(db)
                db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, stamp()])
            done.append(name)
        return done
    finally:
        if db.alive():
            db.execute("SELECT pg_advisory_unlock(?)", [MIGRATION_LOCK])


def m027_claim_order(db: sqlite_utils.Database) -> None:
    """PostgreSQL: the claims' index, in the order they take rows (``ORDER BY id``). Without it a
    claim walks the primary key past every row already sent, so an issue's claims cost grows with
    the square of its readers. SQLite's ``deliveries_issue_status`` already ends in the rowid."""
    if is_postgresql(db):
        db.execute("CREATE INDEX IF NOT EXISTS deliveries_claim ON deliveries(issue_id, status, id)")
