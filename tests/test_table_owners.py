"""One owner per table: each table's SQL lives in one module; everyone else calls it.

Every module of ``digest/`` and ``subscribers/`` is read as source. A string literal that is
SQL (SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, REPLACE, WITH) names the tables it
reads or writes after FROM, JOIN, INTO, UPDATE or TABLE; sqlite-utils reaches a table with
``db["name"]`` or ``db.table("name")``. Each such touch must be in the table's owner
(:data:`OWNERS`), in the schema's own modules, or in :data:`EXCEPTIONS`, each with its reason;
and only those modules run SQL at all (``.execute(``, ``.executemany(``, ``.executescript(``,
``.query(``, ``.table(``), so the store has one seam.
Where an owner needs a rule another owner keeps (who is eligible, which articles an edition
carried), that owner hands it over as a SQL fragment from its own module, so the rule's text
still lives in one place.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from digest.store.database import open_store

ROOT = Path(__file__).resolve().parent.parent

OWNERS: dict[str, str] = {
    "feeds": "digest/ingest/feeds.py",
    "articles": "digest/ingest/articles.py",
    "summaries": "digest/summary/stored.py",
    "issues": "digest/compose/issues.py",
    "issue_articles": "digest/compose/issues.py",
    "issue_variants": "digest/render/variants.py",
    "subscribers": "subscribers/store.py",
    "subscriber_id_floor": "subscribers/store.py",  # the ids removed subscribers had
    "events": "subscribers/events.py",
    "suppressions": "subscribers/suppressions.py",
    "signup_posts": "digest/signup.py",
    "signup_mails": "digest/signup.py",
    "deliveries": "digest/delivery/ledger.py",
    "outbox": "digest/mail/outbox.py",
    "bounces": "digest/bounces/process.py",
    "bounce_messages": "digest/bounces/process.py",
    "held_reports": "digest/bounces/process.py",
    "runs": "digest/schedule/run_records.py",
    "article_pages": "digest/ingest/pages.py",  # an article's web page text ([summary] fetch_article)
    "editor_changes": "digest/compose/history.py",  # every editor's change to an issue or article
    "editors": "digest/editors.py",
    "editor_signins": "digest/editors.py",  # single-use marks of the desk's sign-in links
    "editor_signin_requests": "digest/editors.py",  # the sign-in form's rate limits
    "dmarc_reports": "digest/dmarc/store.py",  # DMARC aggregate reports, one row each
    "dmarc_records": "digest/dmarc/store.py",  # their rows: messages per source IP and alignment
    "dmarc_messages": "digest/dmarc/store.py",  # mailbox messages already read
    "_migrations": "digest/store/database.py",
    "link_clicks": "digest/stats/clicks.py",
    "click_scanners": "digest/stats/clicks.py",
}
"""Table → the one module that holds its SQL."""

SCHEMA = {
    "digest/store/database.py",
    "digest/store/migrations.py",
    "digest/store/pg_schema.py",  # the migrations' run on PostgreSQL
    "digest/store/postgres.py",  # the PostgreSQL adapter (catalogue look-ups, INSERT ... RETURNING id)
}
"""The migrations create and reshape every table (on either store)."""

EXCEPTIONS: dict[tuple[str, str], str] = {
    ("digest/delivery/ledger.py", "subscribers"): (
        "the claim joins the reader for speed (one query per batch), with the eligibility "
        "predicate from subscribers.eligibility; `digest deliveries` shows the reader's name "
        "(read-only join)"
    ),
    ("digest/delivery/lease.py", "deliveries"): (
        "the leases of several senders on PostgreSQL (renew, requeue the expired, count what others "
        "hold), called only by the ledger; ledger.py is past the size limit already"
    ),
    ("digest/bounces/process.py", "subscribers"): "`bounces list` shows the address (read-only report join)",
    ("digest/bounces/process.py", "issues"): "`bounces list` shows the issue's name (read-only report join)",
    ("digest/ingest/articles.py", "feeds"): "an article listing shows its feed's URL (read-only join)",
    ("digest/ingest/feeds.py", "articles"): "`feeds list` counts each feed's articles (read-only)",
    ("digest/compose/issues.py", "issue_variants"): (
        "an edit is refused once a variant is stored (send_started, drafts_carrying); render sits "
        "above compose (read-only existence check; notes.py asks send_started)"
    ),
    ("digest/ingest/article_edits.py", "articles"): (
        "an editor's values beside the feed's (the editor_* and hidden_at columns only); "
        "articles.py is at the size limit"
    ),
    ("subscribers/history.py", "subscribers"): (
        "`digest stats --list` counts the list by day, source and choice (read-only); the "
        "owner, subscribers/store.py, is at its 500-line limit"
    ),
    # The bulk import (bench/import.py, a million rows) writes the list set-wise: one
    # INSERT … SELECT over a chunk's JSON with temp tables, its consent events in one statement,
    # the subscribers' indexes dropped and rebuilt around it. Row-wise store calls would undo that.
    ("subscribers/importing/write.py", "subscribers"): "the bulk import's set-wise writer",
    ("subscribers/importing/write.py", "events"): "the bulk import's set-wise writer (consent events)",
    ("subscribers/importing/update.py", "subscribers"): "the bulk import's updates of known addresses",
    ("subscribers/importing/update.py", "events"): "the bulk import's updates of known addresses",
    ("subscribers/importing/filter.py", "suppressions"): "the bulk import's suppression filter, per chunk",
    ("subscribers/importing/holdback.py", "subscribers"): "the bulk import drops and rebuilds indexes",
}
"""(module, table) → why that module may touch a table it does not own."""

GENERIC: dict[str, str] = {
    "digest/store_tools.py": (
        "`digest db info` and `digest db copy` count and copy every table alike, by the names the "
        "store lists (no table named in its SQL); the ledger's totals come from its owner"
    ),
    "digest/store/db_lock.py": (
        "locks in the database (the scheduler's, serialize()): PostgreSQL advisory locks and the "
        "server's own catalogues (pg_locks, pg_stat_activity), no table of ours"
    ),
}
"""Module → why it may run SQL on every table without owning one."""

SQL_START = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|REPLACE|WITH)\b")
TABLE_AFTER = re.compile(
    r"(?i:\b(?:FROM|JOIN|INTO|UPDATE|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+)"
    r"\"?(?:(?:main|temp)\.)?([a-z_][a-z0-9_]*)"
)


def python_files() -> dict[str, Path]:
    """Every module of digest/ and subscribers/, by path relative to the project."""
    return {
        path.relative_to(ROOT).as_posix(): path
        for top in ("digest", "subscribers")
        for path in sorted((ROOT / top).rglob("*.py"))
    }


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _is_db(node: ast.AST) -> bool:
    """``db``, ``self.db``, ``app.db``, ``get_db()``: what a sqlite-utils database is called here."""
    if isinstance(node, ast.Call):
        node = node.func
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name == "db" or name.endswith("_db") or name == "get_db"


def touches(source: str, tables: set[str]) -> list[tuple[int, str]]:
    """(line, table) for every SQL statement or sqlite-utils table access in ``source``."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else " {} " for v in node.values)
        if text is not None and SQL_START.search(text):
            found += [(node.lineno, t) for t in TABLE_AFTER.findall(text) if t in tables]
        if isinstance(node, ast.Subscript) and _is_db(node.value):
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in tables:
                found.append((node.lineno, key.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            first = node.args[0]
            if (
                node.func.attr in ("table", "create_table")
                and _is_db(node.func.value)
                and isinstance(first, ast.Constant)
                and first.value in tables
            ):
                found.append((node.lineno, first.value))
    return sorted(set(found))


def strays(path: str, source: str) -> list[str]:
    """The touches in module ``path`` that are neither its own tables nor listed exceptions."""
    if path in SCHEMA:
        return []
    return [
        f"{path}:{line} touches `{table}`, which {OWNERS[table]} owns: call a function there"
        for line, table in touches(source, set(OWNERS))
        if OWNERS[table] != path and (path, table) not in EXCEPTIONS
    ]


def test_every_table_is_touched_only_by_its_owner() -> None:
    found = [line for path, file in python_files().items() for line in strays(path, file.read_text())]
    assert found == []


SQL_CALLS = ("execute", "executemany", "executescript", "query", "table", "create_table")
"""What runs SQL on a sqlite-utils database or its ``conn``."""


def sql_calls(source: str) -> list[int]:
    """The lines where ``source`` runs SQL on a database (``db.execute(…)``, ``db.conn.executemany(…)``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
        ):
            target = node.func.value
            if isinstance(target, ast.Attribute) and target.attr == "conn":
                target = target.value
            if _is_db(target):
                lines.append(node.lineno)
    return lines


def test_only_owners_run_sql() -> None:
    """Even SQL that names no table (a PRAGMA, ``SELECT 1``) runs in an owner or the store."""
    allowed = set(OWNERS.values()) | SCHEMA | {path for path, _table in EXCEPTIONS} | set(GENERIC)
    found = [
        f"{path}:{line} runs SQL; only table owners and digest/store/ do"
        for path, file in python_files().items()
        if path not in allowed
        for line in sql_calls(file.read_text())
    ]
    assert found == []


def test_every_table_of_the_schema_has_exactly_one_owner(tmp_path: Path) -> None:
    db = open_store(tmp_path / "digest.db")
    names = {
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    }
    db.close()
    assert set(OWNERS) == names
    for owner in set(OWNERS.values()):
        assert (ROOT / owner).is_file(), owner


def test_every_generic_reader_names_no_table_of_its_own() -> None:
    files = python_files()
    for path, reason in GENERIC.items():
        assert reason
        assert sql_calls(files[path].read_text()), path  # still runs SQL
        assert touches(files[path].read_text(), set(OWNERS)) == [], path  # but names no table


def test_every_exception_is_still_needed() -> None:
    files = python_files()
    for (path, table), reason in EXCEPTIONS.items():
        assert reason
        assert table in dict(touches(files[path].read_text(), {table})).values(), (path, table)


@pytest.mark.parametrize(
    "source",
    [
        'def page(db):\n    return db.execute("SELECT * FROM issues").fetchall()\n',
        'def page(db):\n    return db["issues"].get(1)\n',
        'def page(app):\n    return app.db.table("issues").count\n',
        'def page(db, n):\n    return db.query(f"SELECT id FROM issues WHERE number = {n}")\n',
    ],
)
def test_a_stray_query_in_the_web_app_is_caught(source: str) -> None:
    assert strays("digest/web/archive.py", source) == [
        "digest/web/archive.py:2 touches `issues`, which digest/compose/issues.py owns: call a function there"
    ]


def test_a_stray_pragma_in_the_web_app_is_caught() -> None:
    assert sql_calls('def up(db):\n    db.conn.execute("PRAGMA quick_check")\n') == [2]


def test_prose_and_docstrings_are_not_sql() -> None:
    source = '"""Reads FROM issues, nothing else."""\nHELP = "pick one from issues listed"\n'
    assert strays("digest/web/archive.py", source) == []
