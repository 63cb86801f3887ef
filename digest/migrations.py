"""Schema migrations after m008, one function each, applied in order by
:func:`digest.store.migrate_store`.

Each feature of the list's life cycle owns one migration here; a function is
named ``mNNN_what`` and never changes once released. A migration that has no
work left is kept as a no-op so that the numbering of released databases holds.
"""

from __future__ import annotations

import sqlite_utils


def m009_outbox(db: sqlite_utils.Database) -> None:
    """Transactional mail (confirmation, welcome, already-subscribed) queued before it is sent.

    ``outbox`` keeps the whole signed message, so a retry sends the same bytes; its rows
    also count the confirmations an address was sent (the sign-up rate limit).
    ``signup_posts`` counts sign-up POSTs per client address (hashed) for the per-client limit.
    """
    db.executescript(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('confirm', 'welcome', 'already-subscribed')),
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
            email TEXT NOT NULL COLLATE NOCASE,
            message BLOB NOT NULL,
            message_id TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE INDEX outbox_status ON outbox(status);
        CREATE INDEX outbox_email ON outbox(email, created_at);
        CREATE TABLE signup_posts (
            client TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX signup_posts_client ON signup_posts(client, at);
        """
    )


def m010_bounces(db: sqlite_utils.Database) -> None:
    """Processed bounce, complaint and mailed-unsubscribe reports."""


def m011_subscriber_attributes(db: sqlite_utils.Database) -> None:
    """Subscriber attributes: the import columns digest does not know, kept as JSON."""


def m012_issue_extras(db: sqlite_utils.Database) -> None:
    """Per-issue editor's note and per-article lead images."""


def m013_summaries(db: sqlite_utils.Database) -> None:
    """Generated article summaries, keyed by engine, model and prompt hash."""


def m014_delivery_journal(db: sqlite_utils.Database) -> None:
    """What the send engine needs to record each accepted message durably."""


def m015_ingest_guards(db: sqlite_utils.Database) -> None:
    """Indexes and columns that keep ingest linear and its records honest."""


LATER_MIGRATIONS = [
    m009_outbox,
    m010_bounces,
    m011_subscriber_attributes,
    m012_issue_extras,
    m013_summaries,
    m014_delivery_journal,
    m015_ingest_guards,
]
