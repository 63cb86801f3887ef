"""Schema migrations after m008, one function each, applied in order by
:func:`digest.store.database.migrate_store`.

Each feature of the list's life cycle owns one migration here; a function is
named ``mNNN_what`` and never changes once released. A migration that has no
work left is kept as a no-op so that the numbering of released databases holds.
"""

from __future__ import annotations

import json
import re

import sqlite_utils

from digest.store.dialect import is_postgresql


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
    a resume by `digest run` or a bare `digest send` goes the same way, not the config's."""
    db.execute("ALTER TABLE issues ADD COLUMN transport TEXT")


def m015_ingest_guards(db: sqlite_utils.Database) -> None:
    """Indexes and columns that keep ingest linear and its records honest."""
    # upsert_article looks for the same link and title under another identity: indexed, not a scan.
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
    _outbox_kinds(
        db,
        "CHECK (kind IN ('confirm', 'welcome', 'already-subscribed'))",
        "CHECK (kind IN ('confirm', 'welcome', 'already-subscribed', 'unsubscribe-confirm'))",
        "m017",
    )


def m018_editor_desk(db: sqlite_utils.Database) -> None:
    """The editor's desk (issue #21): an editor's choices stored beside what compose chose.

    ``issues`` gains ``version`` (bumped by every change: a stale desk form is refused),
    the editor's ``subject_set``/``preheader_set`` (NULL: the template's), ``lead_article_id``,
    ``locked_at`` (the selection is frozen), ``approved_at``/``approved_by``,
    ``review_mailed_at`` and ``built_at`` (when the selection was last made from the window).
    ``issue_articles`` gains ``dropped``, ``added`` (put in by an editor) and ``card_of`` (the
    card an article was merged into; NULL for a card), filled here from each stored snapshot.
    ``articles`` gains the editor's values (``editor_title``, ``editor_summary``,
    ``editor_category``, ``editor_byline``) and ``hidden_at``: a re-ingest never touches them.
    ``editor_changes`` records every change (what, when, by whom); it names the issue by
    edition and number as well as id, so a discarded issue's history stays readable.
    ``outbox.kind`` gains ``review`` (the review link mailed to editors) and ``signin`` (the
    desk's sign-in link): the table is rebuilt from its own schema as in m017.
    """
    _editor_columns(db)
    db.executescript(
        """
        CREATE TABLE editor_changes (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,                  -- UTC ISO-8601
            editor TEXT NOT NULL,              -- the desk's editor, or the local user name
            action TEXT NOT NULL,              -- drop, restore, add, lead, move, subject, ...
            issue_id INTEGER,                  -- no foreign key: a discarded issue's lines stay
            edition TEXT,
            number INTEGER,
            period_end TEXT,
            article_id INTEGER,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX editor_changes_issue ON editor_changes(issue_id, id);
        CREATE INDEX editor_changes_period ON editor_changes(edition, period_end, action);
        """
    )
    _mark_merged_rows(db)
    _outbox_kinds(
        db,
        "CHECK (kind IN ('confirm', 'welcome', 'already-subscribed', 'unsubscribe-confirm'))",
        "CHECK (kind IN ('confirm', 'welcome', 'already-subscribed', 'unsubscribe-confirm', 'review',"
        " 'signin'))",
        "m018",
    )


def _editor_columns(db: sqlite_utils.Database) -> None:
    """m018's new columns on issues, issue_articles and articles."""
    for column in (
        "version INTEGER NOT NULL DEFAULT 0",
        "subject_set TEXT",
        "preheader_set TEXT",
        "lead_article_id INTEGER",
        "locked_at TEXT",
        "approved_at TEXT",
        "approved_by TEXT",
        "review_mailed_at TEXT",
        "built_at TEXT",
    ):
        db.execute(f"ALTER TABLE issues ADD COLUMN {column}")
    for column in (
        "dropped INTEGER NOT NULL DEFAULT 0",
        "added INTEGER NOT NULL DEFAULT 0",
        "card_of INTEGER",
    ):
        db.execute(f"ALTER TABLE issue_articles ADD COLUMN {column}")
    for column in ("editor_title", "editor_summary", "editor_category", "editor_byline", "hidden_at"):
        db.execute(f"ALTER TABLE articles ADD COLUMN {column} TEXT")


def _mark_merged_rows(db: sqlite_utils.Database) -> None:
    """Rows of stored issues that are not a card of the snapshot were merged into one: find
    which card by the "Also covered by" links (the first card when no link matches)."""
    for issue_id, snapshot in db.execute("SELECT id, snapshot FROM issues").fetchall():
        try:
            cards = [a for c in json.loads(snapshot or "{}").get("categories", []) for a in c["articles"]]
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        if not cards:
            continue
        card_ids = {a.get("id") for a in cards}
        by_url = {o.get("url"): a.get("id") for a in cards for o in a.get("also_covered") or []}
        rows = db.execute(
            "SELECT ia.article_id, a.url FROM issue_articles ia JOIN articles a ON a.id = ia.article_id"
            " WHERE ia.issue_id = ?",
            [issue_id],
        ).fetchall()
        for article_id, url in rows:
            if article_id not in card_ids:
                db.execute(
                    "UPDATE issue_articles SET card_of = ? WHERE issue_id = ? AND article_id = ?",
                    [by_url.get(url, cards[0].get("id")), issue_id, article_id],
                )


def _outbox_kinds(db: sqlite_utils.Database, old: str, new: str, name: str) -> None:
    """Rebuild ``outbox`` with another CHECK on its kind (SQLite cannot change one in place;
    PostgreSQL swaps the constraint)."""
    if is_postgresql(db):
        db.execute(
            f"ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check, ADD CONSTRAINT outbox_kind_check {new}"
        )
        return
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()[0]
    if old not in sql:
        raise RuntimeError(f"{name}: outbox.kind has an unexpected CHECK; not rebuilt")
    indexes = [
        row[0]
        for row in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL"
        )
    ]
    columns = ", ".join(f'"{c}"' for c in db["outbox"].columns_dict)
    # A renamed table's stored SQL names it quoted ("outbox"): either spelling is replaced.
    create = re.sub(
        r'^CREATE TABLE\s+"?outbox"?', f"CREATE TABLE outbox_{name}", sql.replace(old, new), count=1
    )
    db.execute(create)
    db.execute(f"INSERT INTO outbox_{name} ({columns}) SELECT {columns} FROM outbox")
    db.execute("DROP TABLE outbox")
    db.execute(f"ALTER TABLE outbox_{name} RENAME TO outbox")
    for index in indexes:
        db.execute(index)


def m019_editors(db: sqlite_utils.Database) -> None:
    """The desk's editors and their sign-in links (owner: :mod:`digest.editors`).

    ``editors``: who may sign in to the desk (no password is ever stored).
    ``editor_signins``: one row per sign-in link issued, so each works once (``used_at``).
    ``editor_signin_requests``: the sign-in form's rate limit, one row per request under a
    keyed hash of the address or of the client (never the address itself).
    """
    db.executescript(
        """
        CREATE TABLE editors (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            added_at TEXT NOT NULL,
            last_signin_at TEXT
        );
        CREATE TABLE editor_signins (
            nonce TEXT PRIMARY KEY,
            editor_id INTEGER NOT NULL REFERENCES editors(id) ON DELETE CASCADE,
            issued_at TEXT NOT NULL,
            used_at TEXT
        );
        CREATE INDEX editor_signins_issued ON editor_signins(issued_at);
        CREATE TABLE editor_signin_requests (
            key TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX editor_signin_requests_key ON editor_signin_requests(key, at);
        """
    )


def m020_source_categories(db: sqlite_utils.Database) -> None:
    """``articles.source_category``: the category as the source gave it, before
    ``[ingest.category_aliases]`` mapped it ("" when it gave none), so ``digest ingest
    --recategorize`` can apply changed aliases to stored articles. NULL when the category
    did not come through the aliases (a feed added with ``--category``). Articles stored
    before this migration take their stored category as the source's: a new alias applies
    to them, one that already changed them cannot be undone."""
    db.executescript(
        """
        ALTER TABLE articles ADD COLUMN source_category TEXT;
        UPDATE articles SET source_category = category
         WHERE feed_id IS NULL
            OR feed_id NOT IN (SELECT id FROM feeds WHERE category IS NOT NULL AND category != '');
        """
    )


def m021_grounding(db: sqlite_utils.Database) -> None:
    """Grounded summaries and the editor's own (issue #25).

    ``summaries`` gains what the grounding check found: ``grounding`` is NULL for a summary
    stored before the check existed (checked when next used), ``checked`` (every number,
    name and quote found in its source), ``verified`` (and ``[summary] verify_model`` agreed),
    ``unsupported`` or ``refuted`` (not used); ``unsupported`` lists the words or sentences at
    fault (JSON), ``source`` says what it was checked against (``feed`` or ``article``). An
    editor's summary is a row with ``engine = 'editor'`` (empty model and prompt hash).
    ``article_pages``: the main text of an article's web page (``[summary] fetch_article``),
    or why it could not be had; one row per article, written once.
    """
    db.executescript(
        """
        ALTER TABLE summaries ADD COLUMN grounding TEXT;
        ALTER TABLE summaries ADD COLUMN unsupported TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE summaries ADD COLUMN source TEXT NOT NULL DEFAULT 'feed';
        CREATE TABLE article_pages (
            article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
            url TEXT NOT NULL,                 -- the page's final URL after redirects
            text TEXT NOT NULL DEFAULT '',     -- its main text, plain, bounded; '' when not had
            words INTEGER NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',    -- why there is no text (robots.txt, too big, ...)
            fetched_at TEXT NOT NULL           -- UTC ISO-8601
        );
        """
    )


def m022_story_memory(db: sqlite_utils.Database) -> None:
    """Stories remembered across issues (issue #25): ``issue_articles.repeat`` is NULL for a
    story no earlier issue of the edition sent; else JSON saying which issue sent it, whether
    it was held back (the row is also ``dropped``) or shown as an update, and what is new."""
    db.execute("ALTER TABLE issue_articles ADD COLUMN repeat TEXT")


def m023_dmarc(db: sqlite_utils.Database) -> None:
    """DMARC aggregate reports (owner: digest/dmarc/store.py).

    ``dmarc_reports``: one row per report (reporting organisation and its report id, unique:
    the same report mailed twice is stored once), the period it covers (UTC ISO);
    ``dmarc_records``: its rows, messages from one source IP with DMARC's DKIM and SPF
    alignment results; ``dmarc_messages``: every mailbox message read, by Message-ID (or a
    hash of its bytes), so an mbox is read once and a failed move never counts twice.
    """
    db.execute(
        """CREATE TABLE dmarc_reports (
            id INTEGER PRIMARY KEY,
            org TEXT NOT NULL,
            report_id TEXT NOT NULL,
            domain TEXT NOT NULL,
            begin_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            message_key TEXT NOT NULL,
            received_at TEXT NOT NULL,
            UNIQUE (org, report_id)
        )"""
    )
    db.execute("CREATE INDEX dmarc_reports_end ON dmarc_reports (end_at)")
    db.execute(
        """CREATE TABLE dmarc_records (
            report INTEGER NOT NULL REFERENCES dmarc_reports(id) ON DELETE CASCADE,
            source_ip TEXT NOT NULL,
            messages INTEGER NOT NULL,
            dkim_aligned INTEGER NOT NULL,
            spf_aligned INTEGER NOT NULL,
            disposition TEXT NOT NULL,
            header_from TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX dmarc_records_report ON dmarc_records (report)")
    db.execute(
        """CREATE TABLE dmarc_messages (
            message_key TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            outcome TEXT NOT NULL,
            processed_at TEXT NOT NULL
        )"""
    )


def m024_clicks(db: sqlite_utils.Database) -> None:
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


def m025_one_editor_summary(db: sqlite_utils.Database) -> None:
    """An editor's summary has one home, ``articles.editor_summary``: the ``summaries`` rows
    with engine ``editor`` (old ``articles summary --set``) move there unless one is set."""
    db.executescript(
        """
        UPDATE articles SET editor_summary = (SELECT s.text FROM summaries s
            WHERE s.article_id = articles.id AND s.engine = 'editor')
        WHERE editor_summary IS NULL AND id IN (SELECT article_id FROM summaries WHERE engine = 'editor');
        DELETE FROM summaries WHERE engine = 'editor';
        """
    )


def m026_delivery_leases(db: sqlite_utils.Database) -> None:
    """A claimed row's sender and its lease's end (UTC): several senders share a PostgreSQL store."""
    for column in ("leased_by", "lease_until"):  # see digest.delivery.lease; SQLite leaves both empty
        if column not in db["deliveries"].columns_dict:
            db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} TEXT")


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
    m018_editor_desk,
    m019_editors,
    m020_source_categories,
    m021_grounding,
    m022_story_memory,
    m023_dmarc,
    m024_clicks,
    m025_one_editor_summary,
    m026_delivery_leases,
]
