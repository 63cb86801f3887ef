"""SQLite's SQL as digest writes it, translated for PostgreSQL at execute time.

Every owner writes its SQL once, for SQLite, with ``?`` placeholders. :func:`translate`
turns one statement into what psycopg 3 runs on PostgreSQL, and caches the result per
SQL string (the same few hundred strings run over and over). It works on the statement
with its string literals, quoted names and comments masked out, so nothing inside a
literal is ever rewritten; only ``%`` in a literal is doubled (psycopg reads ``%``).

What changes (and why it keeps SQLite's meaning):

- ``?`` → ``%s``; ``?NNN`` → ``%s`` with the parameters reordered (:attr:`Translated.order`);
  ``IS ?``/``IS NOT ?`` → ``IS [NOT] DISTINCT FROM %s`` (SQLite's ``IS`` compares any value).
- ``INSERT OR IGNORE`` → ``INSERT ... ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` →
  ``ON CONFLICT (<primary key>) DO UPDATE`` (the key is the database's to say:
  :attr:`Translated.upsert` names the table and columns).
- ``json_each(x)`` → ``digest_json_each(x)`` (a set-returning function with SQLite's
  ``key``, ``value`` and ``rowid`` columns, created with the schema); two-argument ``max``/``min``
  → ``GREATEST``/``LEAST``; ``LIKE`` → ``ILIKE`` (SQLite's LIKE ignores ASCII case).
- ``json_extract(doc, path)`` → ``digest_json_extract`` (the value as text; an object or
  array as its JSON); ``json_set(doc, path, value)`` → ``digest_json_set`` (``value`` a
  string, or JSON when written ``json(x)``); ``iif(c, a, b)`` → ``CASE WHEN c THEN a ELSE b
  END``; ``group_concat(x[, sep])`` → ``string_agg(x::text, sep)``; the ``temp.`` schema →
  ``pg_temp.``; an empty list ``IN ()`` / ``NOT IN ()`` (false / true on SQLite, an error on
  PostgreSQL) → ``= ANY ('{}')`` / ``<> ALL ('{}')``; a BLOB literal ``x'00ff'`` →
  ``'\\x00ff'::bytea``.
- Types: ``INTEGER PRIMARY KEY`` → an identity column, ``INTEGER`` → ``BIGINT``,
  ``REAL`` → ``DOUBLE PRECISION``, ``BLOB`` → ``BYTEA``; in a table's DDL ``TEXT`` gets
  ``COLLATE "C"`` (byte order, SQLite's BINARY: ISO time stamps and addresses compare
  and sort as on SQLite whatever the database's locale) unless it names a collation.
  ``COLLATE NOCASE`` stays: the schema creates a case-insensitive collation ``nocase``.
  ``WITHOUT ROWID`` goes.
- ``PRAGMA`` statements do nothing (:attr:`Translated.noop`).

Type words are matched in capitals only (digest writes them so; column names are
lower case, and a column may be called ``text``).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

_MASK = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/""",
    re.DOTALL,
)
_HOLE = re.compile(r"\x00(\d+)\x00")
_PLACEHOLDER = re.compile(r"\?(\d*)")
_IS_PARAM = re.compile(r"\bIS\s+(NOT\s+)?(?=\?)", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+(?:OR\s+(IGNORE|REPLACE)\s+)?INTO\s+([\w.]+|\x00\d+\x00)", re.IGNORECASE)
_COLUMNS = re.compile(r"\s*\(([^()]*)\)")
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_JSON_EACH = re.compile(r"\bjson_each\s*\(", re.IGNORECASE)
_MINMAX = re.compile(r"\b(max|min)\s*\(", re.IGNORECASE)
_LIKE = re.compile(r"\bLIKE\b", re.IGNORECASE)
_CALLS = re.compile(r"\b(iif|group_concat|json_extract|json_set)\s*\(", re.IGNORECASE)
_JSON_CALL = re.compile(r"^\s*json\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_BLOB_LITERAL = re.compile(r"(?<![\w\x00])[xX]\x00(\d+)\x00")
_EMPTY_IN = re.compile(r"\b(NOT\s+)?IN\s*\(\s*\)", re.IGNORECASE)
_TEMP_SCHEMA = re.compile(r"(?<![\w.])temp\.(?=\w)", re.IGNORECASE)
_ROWID_PK = re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\b(?!\s+REFERENCES)")
_TEXT_COLUMN = re.compile(r"(?<=[\w\x00]\s)(\s*)TEXT\b(?![^,]*\bCOLLATE\b)")
_TYPES = (
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)
_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)
_TABLE_DDL = re.compile(r"^\s*(CREATE\s+(?:TEMP\w*\s+)?TABLE|ALTER\s+TABLE)\b", re.IGNORECASE)
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP)\b", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*PRAGMA\b", re.IGNORECASE)

UPSERT_HOLE = "\x01"
"""Where :attr:`Translated.upsert`'s ``ON CONFLICT ... DO UPDATE`` clause goes."""


class Translated(NamedTuple):
    """One statement as PostgreSQL runs it, and what the database layer must know about it."""

    sql: str
    order: tuple[int, ...] | None = None  # parameter indexes, when ``?NNN`` reorders them
    insert_into: str | None = None  # the table an INSERT writes (for its new row's id)
    returning: bool = False  # the statement has its own RETURNING
    ddl: bool = False  # CREATE/ALTER/DROP: the table catalogue may have changed
    noop: bool = False  # a PRAGMA: nothing to run
    upsert: tuple[str, tuple[str, ...]] | None = None  # INSERT OR REPLACE: (table, columns)


def _mask(sql: str) -> tuple[str, list[str]]:
    """``sql`` with literals and quoted names replaced by numbered holes, comments dropped."""
    kept: list[str] = []

    def hole(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("--") or text.startswith("/*"):
            return " "
        kept.append(text)
        return f"\x00{len(kept) - 1}\x00"

    return _MASK.sub(hole, sql), kept


def _unmask(masked: str, kept: list[str], *, percent: str = "%%") -> str:
    return _HOLE.sub(lambda m: kept[int(m.group(1))].replace("%", percent), masked)


def split_statements(script: str) -> list[str]:
    """The statements of a script (``;`` outside literals and comments ends one)."""
    masked, kept = _mask(script)
    return [_unmask(part, kept, percent="%") for part in masked.split(";") if part.strip()]


def _placeholders(masked: str) -> tuple[str, tuple[int, ...] | None]:
    order: list[int] = []
    numbered = False
    highest = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal numbered, highest
        if match.group(1):
            numbered = True
            index = int(match.group(1))
        else:
            index = highest + 1
        highest = max(highest, index)
        order.append(index - 1)
        return "%s"

    text = _PLACEHOLDER.sub(swap, masked)
    return text, tuple(order) if numbered else None


def _two_argument_minmax(masked: str) -> str:
    """``max(a, b)`` → ``GREATEST(a, b)`` (the aggregate ``max(x)`` stays)."""
    out: list[str] = []
    last = 0
    for match in _MINMAX.finditer(masked):
        depth, commas, i = 1, 0, match.end()
        while i < len(masked) and depth:
            ch = masked[i]
            depth += ch == "("
            depth -= ch == ")"
            commas += ch == "," and depth == 1
            i += 1
        if commas:
            out.append(masked[last : match.start()])
            out.append("GREATEST(" if match.group(1).lower() == "max" else "LEAST(")
            last = match.end()
    out.append(masked[last:])
    return "".join(out)


def _arguments_at(masked: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose ``(`` is just before ``start``, and the
    index after its ``)``."""
    args: list[str] = []
    depth, i, begin = 1, start, start
    while i < len(masked) and depth:
        ch = masked[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if (ch == "," and depth == 1) or depth == 0:
            args.append(masked[begin:i])
            begin = i + 1
        i += 1
    return args, i


def _call(name: str, args: list[str]) -> str | None:
    """PostgreSQL's spelling of one SQLite function call (None: leave it as it is)."""
    name = name.lower()
    if name == "iif" and len(args) == 3:
        return f"CASE WHEN {args[0]} THEN {args[1]} ELSE {args[2]} END"
    if name == "group_concat" and len(args) in (1, 2):
        separator = args[1] if len(args) == 2 else "','"
        return f"string_agg(({args[0]})::text, {separator})"
    if name == "json_extract" and len(args) == 2:
        return f"digest_json_extract({args[0]}, {args[1]})"
    if name == "json_set" and len(args) == 3:
        as_json = _JSON_CALL.match(args[2])
        value = f"({as_json.group(1)})::jsonb" if as_json else f"to_jsonb(({args[2]})::text)"
        return f"digest_json_set({args[0]}, {args[1]}, {value})"
    return None


def _functions(masked: str) -> str:
    """SQLite's functions that PostgreSQL spells otherwise (see the module docstring), inner
    calls first."""
    while True:
        for match in reversed(list(_CALLS.finditer(masked))):
            args, end = _arguments_at(masked, match.end())
            spelled = _call(match.group(1), args)
            if spelled is not None:
                masked = masked[: match.start()] + spelled + masked[end:]
                break
        else:
            return masked


def _blob_literals(masked: str, kept: list[str]) -> str:
    """SQLite's ``x'00ff'`` (a BLOB) as PostgreSQL's ``'\\x00ff'::bytea``."""

    def spell(match: re.Match[str]) -> str:
        index = int(match.group(1))
        kept[index] = "'\\x" + kept[index][1:]
        return f"\x00{index}\x00::bytea"

    return _BLOB_LITERAL.sub(spell, masked)


def _with_conflict_clause(masked: str, clause: str) -> str:
    """Put ``clause`` at the end of an INSERT, before its RETURNING when it has one."""
    found = _RETURNING.search(masked)
    if found:
        return f"{masked[: found.start()].rstrip()} {clause} {masked[found.start() :]}"
    return f"{masked.rstrip()} {clause}"


def _table_ddl(masked: str) -> str:
    masked = _ROWID_PK.sub("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", masked)
    masked = _WITHOUT_ROWID.sub("", masked)
    return _TEXT_COLUMN.sub(r'\1TEXT COLLATE "C"', masked)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> Translated:
    """One SQLite statement as PostgreSQL runs it (see the module docstring)."""
    masked, kept = _mask(sql)
    if _PRAGMA.match(masked):
        return Translated("", noop=True)
    insert = _INSERT.match(masked)
    upsert = None
    if insert and insert.group(1):
        masked = "INSERT INTO " + masked[insert.start(2) :]
        if insert.group(1).upper() == "IGNORE":
            masked = _with_conflict_clause(masked, "ON CONFLICT DO NOTHING")
        else:
            after = _INSERT.match(masked)
            columns = _COLUMNS.match(masked, after.end()) if after else None
            if not columns:
                raise ValueError(f"INSERT OR REPLACE needs a column list on PostgreSQL: {sql.strip()[:80]}")
            names = tuple(c.strip() for c in columns.group(1).split(","))
            upsert = (_unmask(insert.group(2), kept, percent="%"), names)
            masked = _with_conflict_clause(masked, UPSERT_HOLE)
    masked = masked.replace("%", "%%")
    masked = _IS_PARAM.sub(lambda m: "IS DISTINCT FROM " if m.group(1) else "IS NOT DISTINCT FROM ", masked)
    masked, order = _placeholders(masked)
    masked = _JSON_EACH.sub("digest_json_each(", masked)
    masked = _TEMP_SCHEMA.sub("pg_temp.", masked)
    masked = _blob_literals(masked, kept)
    masked = _EMPTY_IN.sub(lambda m: "<> ALL ('{}')" if m.group(1) else "= ANY ('{}')", masked)
    masked = _functions(masked)
    masked = _two_argument_minmax(masked)
    masked = _LIKE.sub("ILIKE", masked)
    if _TABLE_DDL.match(masked):
        masked = _table_ddl(masked)
    for pattern, replacement in _TYPES:
        masked = pattern.sub(replacement, masked)
    return Translated(
        sql=_unmask(masked, kept),
        order=order,
        insert_into=_unmask(insert.group(2), kept, percent="%").strip('"') if insert else None,
        returning=bool(insert and _RETURNING.search(masked)),
        ddl=bool(_DDL.match(masked)),
        upsert=upsert,
    )


def upsert_clause(key: list[str], columns: tuple[str, ...]) -> str:
    """``ON CONFLICT (key) DO UPDATE SET`` every other column to the new row's value."""
    others = [c for c in columns if c.strip('"') not in key]
    if not others:
        return f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"


def is_postgresql(db: object) -> bool:
    """Whether ``db`` is the PostgreSQL store (else it is SQLite's ``sqlite_utils.Database``)."""
    return getattr(db, "dialect", "sqlite") == "postgresql"
