"""Schema migrations after m008, one function each, applied in order by
:func:`digest.store.database.migrate_store`.

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
    """Processed bounce, complaint and mailed-unsubscribe reports.

    ``bounces``: one row per outcome of a processed message (a DSN names one row per failed
    recipient). It holds no address: the subscriber and delivery ids say who, ``reason`` says
    why a row matched nobody. ``bounce_messages``: every message ever processed, keyed by its
    Message-ID (or a hash of its bytes), so a second run over the same mailbox changes nothing.
    """
    db.executescript(
        """
        CREATE TABLE bounces (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            delivery_id INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
            issue_id INTEGER REFERENCES issues(id) ON DELETE SET NULL,
            kind TEXT NOT NULL
                CHECK (kind = 'hard' OR kind = 'soft' OR kind = 'complaint' OR kind = 'unsubscribe'
                       OR kind = 'other'),
            status_code TEXT,                  -- enhanced status (5.1.1), when the report has one
            reason TEXT NOT NULL DEFAULT '',   -- auto-reply, altered VERP token, diagnostic...
            source_message_id TEXT NOT NULL,   -- the report's Message-ID (or sha256 of its bytes)
            received_at TEXT NOT NULL          -- UTC ISO-8601, when it was processed
        );
        CREATE INDEX bounces_subscriber ON bounces(subscriber_id, kind);
        CREATE INDEX bounces_received ON bounces(received_at);
        CREATE TABLE bounce_messages (
            message_key TEXT PRIMARY KEY,      -- Message-ID, else sha256 of the bytes
            source TEXT NOT NULL,              -- where it was read (no password)
            outcome TEXT NOT NULL,             -- hard/soft/complaint/unsubscribe/other
            processed_at TEXT NOT NULL
        );
        """
    )


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


def m014_issue_transport(db: sqlite_utils.Database) -> None:
    """The transport an issue's send went out through (its URL without a password), so that
    a resume by `digest run` or a bare `digest send` goes the same way, not through the
    config's default."""
    db.execute("ALTER TABLE issues ADD COLUMN transport TEXT")


def m015_ingest_guards(db: sqlite_utils.Database) -> None:
    """Indexes and columns that keep ingest linear and its records honest."""
    # upsert_article looks for the same link and title under another identity for every
    # new article: without an index that is a scan of the table per item (quadratic).
    db.execute("CREATE INDEX IF NOT EXISTS articles_url_title ON articles(url, title)")


def m016_signup_mails(db: sqlite_utils.Database) -> None:
    """The per-address sign-up limit's own record: one row per confirmation or
    already-subscribed email queued by the form, keyed by a keyed hash of the address's
    canonical form (``subscribers.model.canonical_address``: ``v.ictim@gmail.com`` and
    ``victim+1@googlemail.com`` are one key), so the limit holds across spellings."""
    db.executescript(
        """
        CREATE TABLE signup_mails (
            address TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX signup_mails_address ON signup_mails(address, at);
        """
    )


def m017_forged_reports(db: sqlite_utils.Database) -> None:
    """Reports held for review, and the mail that asks a reader to confirm a mailed unsubscribe.

    ``held_reports``: a bounce or complaint that named several of our readers acted on none
    (one genuine report concerns one reader) and is kept here for ``digest bounces list --held``;
    like ``bounces`` it holds no address. ``outbox.kind`` gains ``unsubscribe-confirm``: the
    table is rebuilt from its own schema (SQLite cannot change a CHECK in place).
    """
    db.executescript(
        """
        CREATE TABLE held_reports (
            id INTEGER PRIMARY KEY,
            message_key TEXT NOT NULL,         -- the report's Message-ID (or sha256 of its bytes)
            source TEXT NOT NULL,              -- where it was read (no password)
            kind TEXT NOT NULL,                -- what it claimed: hard/soft/complaint/other
            readers INTEGER NOT NULL,          -- how many of our readers it named
            reason TEXT NOT NULL,
            received_at TEXT NOT NULL          -- UTC ISO-8601, when it was processed
        );
        CREATE INDEX held_reports_received ON held_reports(received_at);
        """
    )
    old = "CHECK (kind IN ('confirm', 'welcome', 'already-subscribed'))"
    new = "CHECK (kind IN ('confirm', 'welcome', 'already-subscribed', 'unsubscribe-confirm'))"
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()[0]
    if old not in sql:
        raise RuntimeError("m017: outbox.kind has an unexpected CHECK; not rebuilt")
    indexes = [
        row[0]
        for row in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL"
        )
    ]
    columns = ", ".join(f'"{c}"' for c in db["outbox"].columns_dict)
    db.execute(sql.replace(old, new).replace("CREATE TABLE outbox", "CREATE TABLE outbox_m017", 1))
    db.execute(f"INSERT INTO outbox_m017 ({columns}) SELECT {columns} FROM outbox")
    db.execute("DROP TABLE outbox")
    db.execute("ALTER TABLE outbox_m017 RENAME TO outbox")
    for index in indexes:
        db.execute(index)


def m018_clicks(db: sqlite_utils.Database) -> None:
    """Counted story clicks (``[render] count_clicks``), owned by :mod:`digest.stats.clicks`.

    ``link_clicks``: one row per issue × link, counts only (no address, no agent, no time
    of a click). ``click_scanners``: keyed hashes of clients that followed an issue's
    canary, under a key that lives only in the web server's memory, each kept until its
    ``until`` passes (minutes), so a scanner's held clicks are left out. Two indexes let
    ``digest stats`` count an issue's reports and a window's events without a scan.
    """
    db.executescript(
        """
        CREATE TABLE link_clicks (
            issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            link TEXT NOT NULL,                -- an article id, or 'c' (the canary)
            clicks INTEGER NOT NULL DEFAULT 0, -- counted: people, as far as we can tell
            scanner INTEGER NOT NULL DEFAULT 0, -- left out: canary clients, early scanners, HEAD
            PRIMARY KEY (issue_id, link)
        ) WITHOUT ROWID;
        CREATE TABLE click_scanners (
            client TEXT PRIMARY KEY,           -- HMAC under an in-memory key; meaningless later
            until TEXT NOT NULL                -- UTC ISO-8601; forgotten after this
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS events_kind_at ON events(kind, at);
        CREATE INDEX IF NOT EXISTS bounces_issue ON bounces(issue_id, kind);
        """
    )


LATER_MIGRATIONS = [
    m009_outbox,
    m010_bounces,
    m011_subscriber_attributes,
    m012_issue_extras,
    m013_summaries,
    m014_issue_transport,
    m015_ingest_guards,
    m016_signup_mails,
    m017_forged_reports,
    m018_clicks,
]
