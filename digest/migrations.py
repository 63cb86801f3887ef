"""Schema migrations after m008, one function each, applied in order by
:func:`digest.store.migrate_store`.

Each feature of the list's life cycle owns one migration here; a function is
named ``mNNN_what`` and never changes once released. A migration that has no
work left is kept as a no-op so that the numbering of released databases holds.
"""

from __future__ import annotations

import sqlite_utils


def m009_outbox(db: sqlite_utils.Database) -> None:
    """Transactional mail (confirmation, welcome, already-subscribed) queued before it is sent."""


def m010_bounces(db: sqlite_utils.Database) -> None:
    """Processed bounce, complaint and mailed-unsubscribe reports."""


def m011_subscriber_attributes(db: sqlite_utils.Database) -> None:
    """Subscriber attributes: the import columns digest does not know, kept as JSON."""


def m012_issue_extras(db: sqlite_utils.Database) -> None:
    """Per-issue editor's note and per-article lead images."""
    if "note" not in db["issues"].columns_dict:
        db.execute("ALTER TABLE issues ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    if "image" not in db["articles"].columns_dict:
        db.execute("ALTER TABLE articles ADD COLUMN image TEXT")  # JSON {url, width, height}


def m013_summaries(db: sqlite_utils.Database) -> None:
    """Generated article summaries, keyed by engine, model and prompt hash, and the article
    text they are made from (``articles.body_text``: the longer of the feed's content and its
    description, as plain text; empty for articles stored before this migration)."""
    db.executescript(
        """
        ALTER TABLE articles ADD COLUMN body_text TEXT NOT NULL DEFAULT '';
        CREATE TABLE summaries (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            engine TEXT NOT NULL,              -- 'llm'
            model TEXT NOT NULL,               -- the llm model id
            prompt_hash TEXT NOT NULL,         -- sha256 of the prompt as sent (template + article)
            text TEXT NOT NULL,                -- checked, plain text
            created_at TEXT NOT NULL,
            UNIQUE (article_id, engine, model, prompt_hash)
        );
        """
    )


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
