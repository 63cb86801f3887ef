"""The suppression list: the owner of the ``suppressions`` table.

A removed address is kept only as a one-way hash (:func:`subscribers.model.email_hash`), so it
is not added back silently (:func:`is_suppressed`) until its owner asks again and confirms.
"""

from __future__ import annotations

import sqlite_utils

from subscribers.model import email_hash


def is_suppressed(db: sqlite_utils.Database, email: str) -> bool:
    """True when this (normalised) address was removed and must not be re-added silently."""
    row = db.execute("SELECT 1 FROM suppressions WHERE email_hash = ?", [email_hash(email)]).fetchone()
    return row is not None


def suppress(db: sqlite_utils.Database, hashed: str, reason: str, at: str) -> None:
    """Put the address hashed as ``hashed`` on the list (or renew its reason and time)."""
    db.execute(
        "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at",
        [hashed, reason, at],
    )


def lift_suppression(db: sqlite_utils.Database, hashed: str) -> None:
    """Take the address hashed as ``hashed`` off the list."""
    db.execute("DELETE FROM suppressions WHERE email_hash = ?", [hashed])


def suppression_count(db: sqlite_utils.Database) -> int:
    """How many addresses are on the list."""
    return db.execute("SELECT count(*) FROM suppressions").fetchone()[0]
