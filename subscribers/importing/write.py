"""Write: valid rows into ``subscribers``, with the consent events, in the import's transaction.

A chunk reaches SQLite as one JSON object, {email: "PPPPPPname"}, written by one INSERT …
SELECT over json_each: the object is built in the reader thread (:func:`pack`) and SQLite
unpacks it without the GIL, so parsing the next chunk overlaps writing this one (executemany
takes the GIL back for every row). The address is the key and the value a plain string (a
fixed-width profile number, then the name), because taking rows apart with ->> costs the
writer, which sets the pace, more than the reader pays to build the object. json_each's rowid
counts the entries from 0, so row k of the chunk gets id base + k. The editions, categories,
timezone and status of a row are one of few combinations ("profiles", a temp table). Rows
ignored because the address is already stored become updates (see update) or duplicates; the
consent events for the added rows are one INSERT … SELECT. Entry point: :class:`Writer`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from itertools import starmap
from operator import add
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from digest.errors import DigestError
from subscribers.importing.filter import Suppressions
from subscribers.importing.holdback import BulkIndexes
from subscribers.importing.profiles import PROFILE_LIMIT, Profiles
from subscribers.importing.read import COLUMNS, Header
from subscribers.importing.report import ImportReport
from subscribers.importing.update import Updater
from subscribers.seen import SeenFilter
from subscribers.store import next_subscriber_id

# New rows are inserted OR IGNORE: one whose address is already stored is then handled as an
# update. The time is a literal (iso() output, checked), so a row carries only its six values.
_COLUMNS_SQL = (
    "email, name, editions, categories, timezone, status, source, attributes, created_at, updated_at,"
    " unsubscribed_at"
)
_VALUES_SQL = "coalesce(ST, 'active'), 'import', '{}', 'AT', 'AT', iif(ST = 'unsubscribed', 'AT', NULL)"
# A chunk's format and why: see the module docstring.
_PROFILE_DIGITS = 6
_PROFILE_PREFIX = f"{{:0{_PROFILE_DIGITS}d}}".format
_ENTRY = f'{{0}}":"{{2:0{_PROFILE_DIGITS}d}}{{1}}'.format  # (email, name, profile) → email":"PPPPPPname
_PROFILE_SQL = "INSERT INTO temp.subscriber_import_profiles VALUES (?, ?, ?, ?, ?)"
_INSERT_CHUNK_SQL = (
    f"INSERT OR IGNORE INTO subscribers (id, {_COLUMNS_SQL})"
    f" SELECT ?1 + r.rowid, r.key, substr(r.value, {_PROFILE_DIGITS + 1}), p.ed, p.cat, p.tz,"
    f" {_VALUES_SQL.replace('ST', 'p.st')} FROM json_each(?2) AS r"
    " JOIN temp.subscriber_import_profiles AS p"
    f" ON p.id = CAST(substr(r.value, 1, {_PROFILE_DIGITS}) AS INTEGER)"
)
# With attribute columns, an entry's value is [PPPPPPname, attributes as a JSON text] (see payload).
_INSERT_ATTRIBUTES_SQL = _INSERT_CHUNK_SQL.replace("r.value", "json_extract(r.value, '$[0]')").replace(
    "'import', '{}'", "'import', json_extract(r.value, '$[1]')"
)
# The consent record of every added row, written by SQLite from the rows themselves.
_EVENTS_SQL = (
    "INSERT INTO events (subscriber_id, kind, source, detail, at)"
    " SELECT id, 'subscribe', 'import',"
    " CASE status WHEN 'active' THEN ?1 ELSE json_set(?2, '$.status', status) END, ?3"
    " FROM subscribers WHERE id > ?4"
)
# With consent columns: the same events, each with the row's consent cells (payload's third item).
_SUBSCRIBE_DETAIL = "CASE s.status WHEN 'active' THEN ?1 ELSE json_set(?2, '$.status', s.status) END"
_EVENTS_CONSENT_SQL = (
    "INSERT INTO events (subscriber_id, kind, source, detail, at)"
    " SELECT s.id, 'subscribe', 'import',"
    f" iif(c.consent = '{{}}', {_SUBSCRIBE_DETAIL},"
    f" json_set({_SUBSCRIBE_DETAIL}, '$.consent', json(c.consent))), ?3"
    " FROM (SELECT ?4 + 1 + r.rowid AS id, json_extract(r.value, '$[2]') AS consent, r.key AS email"
    " FROM json_each(?5) AS r) AS c"
    " JOIN subscribers AS s ON s.id = c.id AND s.email = c.email"
)
_ISO = re.compile(r"[0-9T:+-]+")


class Batch(NamedTuple):
    """A chunk of checked rows as the writer gets it."""

    rows: list[tuple]  # (email, name, profile[, attributes])
    payload: str  # the rows as JSON for json_each (see payload)
    new_profiles: list[tuple]  # (id, editions, categories, timezone, status) not yet stored
    forget_profiles: bool  # the profile numbering started over before this chunk
    end_bulk: bool = False  # rebuild the dropped indexes before writing these rows (see holdback)


def pack(rows: list[tuple], profiles: Profiles, *, end_bulk: bool = False) -> Batch:
    """Package a chunk with the profiles it is the first to use (the writer stores them)."""
    new, forget = profiles.take_new()
    return Batch(rows, payload(rows), new, forget, end_bulk)


class Writer:
    """The writer's state for one import: ids, the temp tables, what the list held before."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        report: ImportReport,
        header: Header,
        *,
        resubscribe: bool,
        at: str,
        chunk_size: int,
    ) -> None:
        self.db = db
        self.report = report
        if PROFILE_LIMIT + chunk_size >= 10**_PROFILE_DIGITS:
            raise ValueError(f"chunk_size {chunk_size} is too large for {_PROFILE_DIGITS}-digit profiles")
        if not _ISO.fullmatch(at):
            raise ValueError(f"not an iso() time: {at!r}")
        self.consent = bool(header.consent)
        insert_sql = _INSERT_ATTRIBUTES_SQL if header.attributes or header.consent else _INSERT_CHUNK_SQL
        self.insert_sql = insert_sql.replace("'AT'", f"'{at}'")
        self.at = at
        file_name = Path(report.file).name
        self.detail = json.dumps({"file": file_name}, ensure_ascii=False)
        self.active_detail = json.dumps({"file": file_name, "status": "active"}, ensure_ascii=False)
        present = {name: header.columns.index(name) if name in header.columns else None for name in COLUMNS}
        self.updater = Updater(
            db,
            report,
            present=present,
            attribute_keys={key for _position, key in header.attributes},
            resubscribe=resubscribe,
            at=at,
            detail=self.detail,
        )
        self.resubscribe = resubscribe
        self.suppressions: Suppressions | None = None
        self.bulk = BulkIndexes(db, report.file)
        # The profiles stored in the temp table, and the duplicates found here (rows of this
        # file matching an address an earlier chunk wrote).
        self.stored_profiles: dict[int, tuple[Any, ...]] = {}
        self.later_duplicates = 0
        self.start_max = 0
        self.next_id = 1

    def start(self, *, bulk: bool, expected_rows: int = 0) -> SeenFilter | None:
        """Prepare the writer (inside the transaction, before the reader starts).

        With ``bulk``, drop the address index and return the filter that stands in for it
        (see holdback), sized for ``expected_rows`` more; else (or when the schema is not
        the expected one) None.
        """
        db = self.db
        # Row k of a chunk gets id base + json_each's rowid: that must count entries from 0.
        probe = db.execute("""SELECT group_concat(rowid, ',') FROM json_each('{"a":"","b":"","c":""}')""")
        if probe.fetchone()[0] != "0,1,2":
            raise DigestError(
                f"{self.report.file}: this SQLite ({sqlite3.sqlite_version}) numbers json_each rows"
                " differently; nothing was imported. Please report it"
            )
        self.start_max = int(db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0])
        self.next_id = next_subscriber_id(db)
        self.suppressions = Suppressions(db, self.report, resubscribe=self.resubscribe)
        # Known subscribers already matched by an earlier row of this file (later ones are duplicates).
        db.execute("CREATE TEMP TABLE IF NOT EXISTS subscriber_import_seen (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.subscriber_import_seen")
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS subscriber_import_profiles"
            " (id INTEGER PRIMARY KEY, ed TEXT, cat TEXT, tz TEXT, st TEXT)"
        )
        db.execute("DELETE FROM temp.subscriber_import_profiles")
        return self.bulk.drop(self.start_max, expected_rows) if bulk else None

    def finish(self, *, keep: bool = True) -> None:
        """End the writer's side; ``keep`` is false when the transaction is about to be rolled back."""
        if keep and self.bulk.pending:
            # Not reached today (a bulk load always ends with an end_bulk batch), but whatever
            # changes, a commit must never go out without the address index.
            self.bulk.rebuild()
        self.report.duplicates += self.later_duplicates
        self.later_duplicates = 0
        self.db.execute("DROP TABLE IF EXISTS temp.subscriber_import_seen")
        self.db.execute("DROP TABLE IF EXISTS temp.subscriber_import_profiles")

    def write(self, batch: Batch) -> None:
        """Insert the chunk's new addresses; rows that collide with known ones become updates.

        The common case (all new) is one INSERT OR IGNORE per chunk plus one
        INSERT … SELECT for the consent events; only when rows were ignored are
        they looked up to tell updates from duplicates.
        """
        db = self.db
        report = self.report
        if batch.end_bulk:
            self.bulk.rebuild()
        if batch.forget_profiles:
            db.execute("DELETE FROM temp.subscriber_import_profiles")
            self.stored_profiles.clear()
        if batch.new_profiles:
            db.conn.executemany(_PROFILE_SQL, batch.new_profiles)
            self.stored_profiles.update((row[0], row[1:]) for row in batch.new_profiles)
        chunk, payload_text = batch.rows, batch.payload
        if not chunk:
            return
        assert self.suppressions is not None, "start() first"
        kept, lifted = self.suppressions.filter(chunk)
        if not kept:
            return
        if kept is not chunk:
            chunk, payload_text = kept, payload(kept)
        # Row k of the chunk (from 0) becomes id base + k: above every id ever given out (removed
        # subscribers' too), and an ignored row is simply the id that did not appear.
        base = self.next_id
        inserted = db.execute(self.insert_sql, [base, payload_text]).rowcount
        ignored: list[tuple] = []
        if inserted < len(chunk):
            # The address was stored already (before this import, or by an earlier chunk).
            # The ids that did not appear, counted in SQL (re-reading the JSON costs more).
            missing = db.execute(
                "WITH RECURSIVE k(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM k WHERE x < ?2 - 1)"
                " SELECT x FROM k WHERE NOT EXISTS (SELECT 1 FROM subscribers WHERE id = ?1 + x)",
                [base, len(chunk)],
            ).fetchall()
            ignored = [chunk[x] for (x,) in missing]
        if inserted:
            self._subscribe_events(base, payload_text)
            if lifted:
                # As add_subscriber records it: this consent overrode a suppression.
                marks = ",".join("?" * len(lifted))
                db.execute(
                    "UPDATE events SET detail = json_set(detail, '$.was_suppressed', json('true'))"
                    " WHERE kind = 'subscribe' AND subscriber_id IN"
                    f" (SELECT id FROM subscribers WHERE id >= ? AND email IN ({marks}))",
                    [base, *lifted],
                )
            report.added += inserted
            if inserted == len(chunk):  # all new: the last row got base + len - 1
                self.next_id = base + inserted
            else:
                self.next_id = db.execute("SELECT max(id) FROM subscribers").fetchone()[0] + 1
        if ignored:
            self._known_rows(ignored, lifted)

    def _subscribe_events(self, base: int, payload_text: str) -> None:
        """The consent events of the rows a chunk added (ids from ``base``), with their consent
        cells when the file has consent columns."""
        params = [self.active_detail, self.detail, self.at, base - 1]
        if self.consent:
            self.db.execute(_EVENTS_CONSENT_SQL, [*params, payload_text])
        else:
            self.db.execute(_EVENTS_SQL, params)

    def _known_rows(self, rows: list[tuple], lifted: set[str]) -> None:
        """Rows whose address is already stored: an update of a known subscriber, or a duplicate."""
        db = self.db
        marks = ",".join("?" * len(rows))
        existing = {
            r[1].lower(): r
            for r in db.execute(
                "SELECT s.id, s.email, s.name, s.status, s.editions, s.categories, s.timezone,"
                " seen.id IS NOT NULL, s.attributes"
                " FROM subscribers AS s LEFT JOIN temp.subscriber_import_seen AS seen ON seen.id = s.id"
                f" WHERE s.email IN ({marks})",
                [row[0] for row in rows],
            )
        }
        seen_ids: list[tuple[int]] = []
        for email, name, profile, *extra in rows:
            current = existing.get(email)
            if current is None or current[0] > self.start_max or current[7]:
                self.later_duplicates += 1  # an earlier row of this file added or updated it
                continue
            seen_ids.append((current[0],))
            self.updater.apply(
                current,
                name,
                *self.stored_profiles[profile],
                attributes=extra[0] if extra else None,
                lifted=email in lifted,
            )
        if seen_ids:
            db.conn.executemany("INSERT INTO temp.subscriber_import_seen (id) VALUES (?)", seen_ids)


def payload(rows: list[tuple]) -> str:
    """A chunk's rows (email, name, profile) as the JSON object _INSERT_CHUNK_SQL reads.

    Each address must be there once (chunks are deduplicated before this). Built by
    formatting when no cell needs escaping, which is nearly always: a validated
    address or name holds no control character (normalize_email/normalize_name refuse
    them), and an address no quote or backslash, so only a name's quotes (counted) and
    backslashes can need it. A third of what json.dumps costs, in the reader thread.
    """
    if not rows:
        return "{}"
    if len(rows[0]) > 3:  # with attributes (and consent): see _INSERT_ATTRIBUTES_SQL
        return json.dumps(
            {email: [_PROFILE_PREFIX(profile) + name, *extra] for email, name, profile, *extra in rows},
            ensure_ascii=False,
        )
    joined = '","'.join(starmap(_ENTRY, rows))
    if joined.count('"') == 4 * len(rows) - 2 and "\\" not in joined:
        return '{"' + joined + '"}'
    emails, names, profiles = zip(*rows, strict=True)
    values = map(add, map(_PROFILE_PREFIX, profiles), names)
    return json.dumps(dict(zip(emails, values, strict=True)), ensure_ascii=False)
