"""The one rule for "does this reader get this issue?", in SQL and in Python.

A reader gets an issue when they are ``active``, receive its edition (editions
NULL = all) and follow at least one of its categories (categories NULL = all).
Edition keys match exactly (they are config keys). Category names match under one
case rule everywhere: Unicode case folding (:func:`fold`, ``str.casefold``), so a
reader following ``économie`` gets an issue filed under ``Économie`` (SQLite's
``NOCASE`` folds only A-Z). The send's snapshot (:func:`subscribers.store.eligible_subscribers`),
its claims and retries (:mod:`digest.delivery.ledger`) and the variant a reader gets
(:func:`digest.render.variants.variant_key`, ``casefold`` too) all use this rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlite_utils

__all__ = ["FOLD_FUNCTION", "eligibility_sql", "fold", "ineligible_reason", "register_fold"]

FOLD_FUNCTION = "digest_fold"
"""The SQL name of :func:`fold` on a connection (see :func:`register_fold`)."""


def fold(label: str) -> str:
    """A category name as compared: Unicode case-folded."""
    return label.casefold()


def _fold_sql(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def register_fold(db: sqlite_utils.Database) -> None:
    """Make :func:`fold` callable in SQL on this connection (cheap, and harmless to repeat)."""
    db.conn.create_function(FOLD_FUNCTION, 1, _fold_sql, deterministic=True)


def eligibility_sql(
    db: sqlite_utils.Database, edition: str, issue_categories: Iterable[str], *, alias: str = ""
) -> tuple[str, list[str]]:
    """The SQL predicate (and its parameters) that is true for a ``subscribers`` row (named
    ``alias``, or unqualified) who gets an issue of ``edition`` with ``issue_categories``."""
    register_fold(db)
    col = f"{alias}." if alias else ""
    wanted = json.dumps(sorted({fold(c) for c in issue_categories}), ensure_ascii=False)
    sql = (
        f"({col}status = 'active'"
        f" AND ({col}editions IS NULL OR EXISTS (SELECT 1 FROM json_each({col}editions) WHERE value = ?))"
        f" AND ({col}categories IS NULL OR EXISTS (SELECT 1 FROM json_each({col}categories) AS c"
        f" WHERE {FOLD_FUNCTION}(c.value) IN (SELECT value FROM json_each(?)))))"
    )
    return sql, [edition, wanted]


def ineligible_reason(
    status: str | None,
    editions: list[str] | None,
    categories: list[str] | None,
    edition: str,
    issue_categories: Iterable[str],
) -> str | None:
    """Why a reader (``status`` None: removed) does not get an issue of ``edition`` with
    ``issue_categories``, or None when they do; the same rule as :func:`eligibility_sql`."""
    if status is None:
        return "subscriber removed"
    if status != "active":
        return f"subscriber is {status}"
    if editions and edition not in editions:
        return f"subscriber no longer receives the {edition} edition"
    if categories and not {fold(c) for c in categories} & {fold(c) for c in issue_categories}:
        return "subscriber no longer follows any category of this issue"
    return None
