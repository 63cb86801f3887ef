"""The send engine: the deliveries ledger, persistent connections, and replies classified.

A real send of an issue:

1. takes a per-issue lock (``fcntl.flock`` on a file beside the database: the
   kernel drops it when the process dies, so a SIGKILL never leaves it stuck);
2. freezes the issue (status ``sending``), stores each variant's rendering
   (:func:`digest.render.stored_variant`) and snapshots the eligible
   recipients into ``deliveries`` — all in one transaction, streamed;
3. sends: workers claim rows (``queued`` → ``sending``, committed before any
   byte leaves; a claim skips subscribers who are no longer active and covers
   about :data:`CLAIM_SECONDS` of sending, so an unsubscribe takes effect
   within that), and record ``sent`` only after the server's 250 to the
   message data (in batched commits, at least every :data:`FLUSH_SECONDS` and
   every :data:`FLUSH_EVERY` results per connection).
   A crash leaves the rows in flight as ``sending``; the next run sends those
   again with the same deterministic Message-ID, and never touches a ``sent``
   row. (Rows whose 250 had arrived but was not yet committed count as in
   flight: the one case where a receiver may see a message twice.)

Replies: 4xx is retried with backoff a few times in the run, then left
``deferred`` for the next run; 5xx is ``failed`` (5.1.x also marks the
subscriber bounced, 5.7.x policy rejections do not); 421 or a dropped
connection reconnects and continues; bad credentials, a refused greeting, a 5xx
to MAIL FROM (the sender or the session refused, not the recipient) or a
missing required STARTTLS stop the run with a clear error, rows stay queued.

Throughput: one prepared message per variant, filled per recipient by a bytes
join; over SMTP with PIPELINING the next recipient's envelope goes out with the
current message's content (one round trip per message); with many rows the
work is split over one process per core, each running its share of the
``concurrency`` connections as threads. Two sends of one issue never overlap:
the second raises :class:`SendInProgress`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import heapq
import itertools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError
from digest.message import PreparedMessage, dkim_signer, message_id, prepare_message
from digest.store import DELIVERY_STATUSES, PENDING_DELIVERY, iso, open_store, transaction, utcnow
from digest.transports import (
    ConnectionLost,
    Reply,
    SMTPTransport,
    TransportError,
    default_transport_url,
    open_transport,
    parse_transport_url,
    transport_for_display,
)
from digest.verp import ReturnPath

__all__ = [
    "DeliveryReport",
    "SendInProgress",
    "deliver_issue",
    "delivery_counts",
    "list_deliveries",
]


RETRY_BACKOFF_SECONDS = 2.0
"""First wait before retrying a 4xx or a lost connection; doubles each time."""
CLAIM_BATCH = 32
"""Most rows a connection claims at once (marked ``sending`` before anything is sent)."""
CLAIM_SECONDS = 0.25
"""A claim covers about this much sending time: subscriber status is checked when a row is
claimed, so an unsubscribe takes effect for every row claimed later (within this window)."""
FLUSH_SECONDS = 0.5
"""Results are committed at least this often (and with every claim)."""
FLUSH_EVERY = 64
"""...and at least every this many results per connection: what a crash can send twice is
small in count as well as in time (at 2,000 msg/s, 0.5 s is 1,000 messages)."""
PROCESS_THRESHOLD = 1000
"""Rows to send before the work is split over processes (SMTP only)."""
LOST_IN_A_ROW = 5
"""Lost connections / unanswered messages in a row (at least this many, or 3 per connection)
with no reply in between before the run stops: a server that takes the data and never
answers would otherwise cost rows x tries x timeout, each try possibly a duplicate."""


class SendInProgress(DigestError):
    """Another process is sending this issue right now."""


@dataclass
class DeliveryReport:
    """What a send did. Counts are for this run; ``queued`` is what is still waiting."""

    issue_id: int
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    queued: int = 0
    total: int = 0
    duration: float = 0.0
    transport: str = ""
    status: str = ""
    dry_run: bool = False
    test: bool = False
    interrupted: bool = False
    variants: dict[str, int] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages handled per second in this run."""
        done = self.sent + self.failed + self.deferred
        return done / self.duration if self.duration > 0 else 0.0

    def summary(self) -> str:
        """One line: sent, failed, deferred, skipped, duration, messages/s."""
        return (
            f"sent {self.sent}, failed {self.failed}, deferred {self.deferred}, skipped {self.skipped}"
            f" in {self.duration:.1f}s ({self.rate:.0f} messages/s)"
        )


# ---------------------------------------------------------------- public entry point


def deliver_issue(
    db: sqlite_utils.Database,
    config: Config,
    issue_id: int,
    *,
    transport_url: str | None = None,
    to: list[str] | None = None,
    dry_run: bool = False,
    concurrency: int | None = None,
    rate: float | None = None,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeliveryReport:
    """Send (or resume sending) issue ``issue_id`` to everyone in its ledger.

    ``to``: a test send to those addresses only ("[TEST]" subject, not recorded).
    ``dry_run``: report who would get which variant, send nothing.
    ``now``: the moment local-time delivery compares ``due_at`` with (default: now).
    ``progress(done, total)`` is called from the calling thread as the send goes.
    Raises SendInProgress when another process is sending this issue, and
    TransportError (a DigestError) when the run had to stop; unsent rows stay queued.
    """
    from digest.compose import get_issue

    started = time.monotonic()
    issue = get_issue(db, issue_id)
    url = transport_url or default_transport_url(config)
    parse_transport_url(url)  # a bad URL fails before anything changes
    now = now or utcnow()
    if to:
        report = _test_send(db, config, issue, to, url)
    elif dry_run:
        report = _dry_run(db, config, issue, now)
    else:
        with _issue_lock(_db_path(db), int(issue["id"])):
            report = _send(db, config, issue, url, now, concurrency, rate, progress)
    report.duration = time.monotonic() - started
    report.transport = transport_for_display(url)
    return report


# ---------------------------------------------------------------- the lock


def _db_path(db: sqlite_utils.Database) -> Path:
    row = db.execute("PRAGMA database_list").fetchone()
    if not row or not row[2]:
        raise DigestError("sending needs a database file (not an in-memory database)")
    return Path(row[2])


@contextlib.contextmanager
def _issue_lock(db_path: Path, issue_id: int) -> Iterator[int]:
    lock_path = db_path.with_name(f"{db_path.name}.send-{issue_id}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise SendInProgress(
                f"issue {issue_id} is already being sent (by pid {holder}); "
                "wait for that send to finish, or stop it and run `digest send` again to resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        os.close(fd)


# ---------------------------------------------------------------- freezing and the snapshot


def _freeze(db: sqlite_utils.Database, config: Config, issue: dict[str, Any], now: datetime) -> None:
    """Draft → sending, variants stored, one ledger row per eligible recipient: one transaction."""
    from digest.render import stored_variant

    issue_id = int(issue["id"])
    stamp = iso(utcnow())
    with transaction(db):
        status = db.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0]
        if status != "draft":
            return
        db.execute("UPDATE issues SET status = 'sending', frozen_at = ? WHERE id = ?", [stamp, issue_id])
        variants: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        insert = (
            "INSERT OR IGNORE INTO deliveries (issue_id, subscriber_id, email, variant, status, due_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)"
        )
        for subscriber, variant, due in _recipients(db, config, issue):
            rows.append((issue_id, subscriber["id"], subscriber["email"], variant, due and iso(due), stamp))
            variants.add(variant)
            if len(rows) >= 1000:
                db.conn.executemany(insert, rows)
                rows.clear()
        if rows:
            db.conn.executemany(insert, rows)
        for variant in sorted(variants):
            stored_variant(db, config, issue_id, variant)


def _recipients(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], str, datetime | None]]:
    """Who gets ``issue`` now: (subscriber, variant, due time or None), streamed.

    Eligible subscribers whose categories intersect the issue's; ``due`` is set only for
    local-time editions.
    """
    from digest.compose import issue_categories
    from digest.localtime import due_at
    from digest.render import variant_key
    from subscribers.store import eligible_subscribers

    categories = issue_categories(db, int(issue["id"]))
    edition = config.editions.get(issue["edition"])
    local = edition is not None and edition.delivery == "local"
    for subscriber in eligible_subscribers(db, issue["edition"], categories):
        variant = variant_key(subscriber["categories"], categories)
        if variant != "[]":
            yield subscriber, variant, due_at(config, edition, issue, subscriber) if local else None


# ---------------------------------------------------------------- the send


@dataclass
class _Counters:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str) -> None:
        with self.lock:
            setattr(self, status, getattr(self, status) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "deferred": self.deferred, "skipped": self.skipped}


@dataclass
class _Run:
    """What every connection worker of one send shares (copied into worker processes by fork)."""

    db_path: Path
    config: Config
    issue_id: int
    url: str
    now_iso: str
    prepared: dict[str, PreparedMessage]
    secret: bytes
    return_path: ReturnPath
    retries: int
    max_per_connection: int
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[str] = field(default_factory=list)
    counters: _Counters = field(default_factory=_Counters)
    limiter: _RateLimiter | None = None
    live: set[Any] = field(default_factory=set)  # open transports, to cut short on a fatal error
    lost_limit: int = LOST_IN_A_ROW
    lost_in_a_row: int = 0  # sends that ended in ConnectionLost since the last reply (this process)


class _RateLimiter:
    """Evenly spaced sends: at most ``rate`` per second across the threads sharing it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        if slot > now:
            stop.wait(slot - now)


def _send(
    db: sqlite_utils.Database,
    config: Config,
    issue: dict[str, Any],
    url: str,
    now: datetime,
    concurrency: int | None,
    rate: float | None,
    progress: Callable[[int, int], None] | None,
) -> DeliveryReport:
    from digest.compose import get_issue
    from digest.render import stored_variant
    from subscribers.tokens import load_secret

    issue_id = int(issue["id"])
    if issue["status"] == "draft":
        _freeze(db, config, issue, now)
    issue = get_issue(db, issue_id)
    report = DeliveryReport(issue_id=issue_id)
    with transaction(db):
        # Rows left in flight by a crashed run go out again (same Message-ID); deferred rows
        # get this run's retries. Safe: we hold the issue's send lock.
        db.execute(
            "UPDATE deliveries SET status = 'queued'"
            " WHERE issue_id = ? AND status IN ('sending', 'deferred')",
            [issue_id],
        )
    now_iso = iso(now)
    to_send = db.execute(
        "SELECT count(*) FROM deliveries"
        " WHERE issue_id = ? AND status = 'queued' AND (due_at IS NULL OR due_at <= ?)",
        [issue_id, now_iso],
    ).fetchone()[0]
    report.variants = dict(
        db.execute(
            "SELECT variant, count(*) FROM deliveries WHERE issue_id = ? GROUP BY variant ORDER BY variant",
            [issue_id],
        ).fetchall()
    )
    if to_send:
        signer = dkim_signer(config)
        prepared = {
            variant: prepare_message(
                config, issue, stored_variant(db, config, issue_id, variant), signer=signer
            )
            for (variant,) in db.execute(
                "SELECT DISTINCT variant FROM deliveries WHERE issue_id = ? AND status = 'queued'", [issue_id]
            ).fetchall()
        }
        run = _Run(
            db_path=_db_path(db),
            config=config,
            issue_id=issue_id,
            url=url,
            now_iso=now_iso,
            prepared=prepared,
            secret=load_secret(config),
            return_path=ReturnPath(config),
            retries=max(0, config.delivery.retries),
            max_per_connection=max(1, config.delivery.max_per_connection),
        )
        connections = max(1, concurrency or config.delivery.concurrency)
        scheme = parse_transport_url(url).scheme
        if scheme in ("maildir", "mbox"):
            connections = 1
        connections = min(connections, to_send)
        run.lost_limit = max(LOST_IN_A_ROW, 3 * connections)
        rate = config.delivery.rate if rate is None else rate
        processes = 1
        # Signing is CPU-bound (~10 ms a message with dkimpy): spread it over the cores sooner.
        threshold = PROCESS_THRESHOLD // 10 if signer is not None else PROCESS_THRESHOLD
        if scheme in ("smtp", "smtps") and to_send >= threshold:
            processes = max(1, min(os.cpu_count() or 1, connections))
        counts = _execute(db, run, connections, processes, rate or 0.0, to_send, progress)
        for key, value in counts.items():
            setattr(report, key, value)
        report.interrupted = run.stop.is_set() and not run.fatal
        if run.fatal:
            raise TransportError(f"{run.fatal[0]} (the send stopped; unsent rows stay queued)")
    _finish(db, issue_id, report, now)
    return report


def _envelope_sender(config: Config) -> str:
    from email.utils import parseaddr

    return parseaddr(config.publication.from_address)[1]


def _finish(db: sqlite_utils.Database, issue_id: int, report: DeliveryReport, now: datetime) -> None:
    counts = delivery_counts(db, issue_id)
    report.total = sum(counts.values())
    report.queued = counts["queued"] + counts["sending"]
    with transaction(db):
        if not any(counts[s] for s in PENDING_DELIVERY):
            db.execute(
                "UPDATE issues SET status = 'sent', sent_at = coalesce(sent_at, ?) WHERE id = ?",
                [iso(utcnow()), issue_id],
            )
    report.status = db.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0]


def _execute(
    db: sqlite_utils.Database,
    run: _Run,
    connections: int,
    processes: int,
    rate: float,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    """Run the connection workers (threads here, or processes of threads); report progress."""
    base = _done_count(db, run.issue_id)
    children: list[tuple[multiprocessing.Process, Any]] = []
    threads: list[threading.Thread] = []
    previous = _install_signals(run, children)
    try:
        if processes <= 1:
            threads = _start_workers(run, connections, rate)
        else:
            ctx = multiprocessing.get_context("fork")
            shares = [
                connections // processes + (1 if i < connections % processes else 0) for i in range(processes)
            ]
            parent_pid = os.getpid()
            # Everything imported so far is long-lived: keep it out of the workers' garbage
            # collections (and their pages shared with this process).
            gc.freeze()
            for i, share in enumerate(shares):
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_child_main,
                    args=(run, share, rate * share / connections if rate > 0 else 0.0, writer, parent_pid),
                    name=f"digest-send-{i}",
                    daemon=False,
                )
                proc.start()
                writer.close()
                children.append((proc, reader))
            gc.unfreeze()

        def alive() -> bool:
            return any(t.is_alive() for t in threads) or any(p.is_alive() for p, _ in children)

        while alive():
            if progress is not None:
                progress(_done_count(db, run.issue_id) - base, total)
            time.sleep(0.05 if total < 100 else 0.2)
            for proc, _ in children:
                if not proc.is_alive() and proc.exitcode not in (0, None) and not run.stop.is_set():
                    # A worker that failed takes the others down with it (they finish in-flight work).
                    run.stop.set()
                    _signal_children(children)
        if progress is not None:
            progress(_done_count(db, run.issue_id) - base, total)
        counts = run.counters.as_dict()
        for proc, reader in children:
            proc.join()
            if reader.poll():
                with contextlib.suppress(EOFError, OSError):
                    message = reader.recv()
                    for key, value in message["counts"].items():
                        counts[key] += value
                    run.fatal.extend(message["fatal"])
                    if message["stopped"]:
                        run.stop.set()
            elif proc.exitcode not in (0, None):
                run.fatal.append(f"a send worker died (exit status {proc.exitcode}); run `digest send` again")
        return counts
    finally:
        _restore_signals(previous)


def _start_workers(run: _Run, connections: int, rate: float) -> list[threading.Thread]:
    """This process's share of the connections, as threads sharing one rate limit (0: none)."""
    run.limiter = _RateLimiter(rate) if rate > 0 else None
    threads = [
        threading.Thread(target=_connection_worker, args=(run, n), daemon=True) for n in range(connections)
    ]
    for t in threads:
        t.start()
    return threads


def _done_count(db: sqlite_utils.Database, issue_id: int) -> int:
    return db.execute(
        "SELECT count(*) FROM deliveries"
        " WHERE issue_id = ? AND status IN ('sent', 'failed', 'skipped', 'deferred')",
        [issue_id],
    ).fetchone()[0]


def _signal_children(children: list[tuple[multiprocessing.Process, Any]]) -> None:
    for proc, _ in children:
        if proc.is_alive() and proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)


def _install_signals(run: _Run, children: list[tuple[multiprocessing.Process, Any]]) -> dict[int, Any]:
    """SIGINT/SIGTERM: finish what is in flight, record it, stop. Only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        run.stop.set()
        _signal_children(children)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


def _child_main(run: _Run, connections: int, rate: float, writer: Any, parent_pid: int) -> None:
    """A worker process: its own stop flag, its own DB connections; dies with the parent."""
    with contextlib.suppress(OSError, AttributeError):
        # If the parent is killed, finish the message in flight and stop (PR_SET_PDEATHSIG).
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    run.stop = threading.Event()
    run.fatal = []
    run.counters = _Counters()
    if os.getppid() != parent_pid:
        run.stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: run.stop.set())
    threads = _start_workers(run, connections, rate)
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.5)
            if os.getppid() != parent_pid:
                run.stop.set()
    writer.send({"counts": run.counters.as_dict(), "fatal": run.fatal, "stopped": run.stop.is_set()})
    writer.close()
    if run.fatal:
        sys.exit(3)  # the parent stops the other workers


# ---------------------------------------------------------------- one connection


@dataclass
class _Row:
    id: int
    subscriber_id: int | None
    email: str
    variant: str
    message_id: str
    name: str = ""
    tries: int = 0  # attempts in this run


@dataclass
class _Result:
    row: _Row
    status: str  # sent / failed / deferred / skipped
    reply: Reply | None = None
    error: str | None = None
    bounced: bool = False
    at: str = ""


class _Worker:
    """One connection's loop: claim rows, send, record — until nothing is left or told to stop."""

    def __init__(self, run: _Run, number: int) -> None:
        self.run = run
        self.number = number
        self.db = open_store(run.db_path, migrate=False)
        self.transport: Any = None
        self.batch: deque[_Row] = deque()
        self.retry: list[tuple[float, int, _Row]] = []
        self.results: list[_Result] = []
        self.last_flush = time.monotonic()
        self.connect_failures = 0
        self.seq = itertools.count()
        self.per_message: float | None = None  # moving average of seconds per message
        self.announced: int | None = None  # row whose envelope went out with the last message
        self.links = _Links(run.config, run.secret)
        self.issue_scope: tuple[str, set[str]] | None = None  # (edition, categories) for retries

    # -- ledger

    def flush(self, claim: int = 0) -> list[_Row]:
        """Record results (and claim up to ``claim`` new rows) in one transaction."""
        claimed: list[_Row] = []
        if not self.results and not claim:
            return claimed
        stamp = iso(utcnow())
        with transaction(self.db):
            sent = [r for r in self.results if r.status == "sent"]
            if sent:
                self._record_sent(sent, stamp)
            for r in self.results:
                if r.status != "sent":
                    self._record(r, stamp)
            if claim:
                claimed = self._claim(claim, stamp)
        self.results = []
        self.last_flush = time.monotonic()
        return claimed

    def _record_sent(self, results: list[_Result], stamp: str) -> None:
        self.db.conn.executemany(
            "UPDATE deliveries SET status = 'sent', attempts = attempts + ?, last_error = NULL,"
            " smtp_code = ?, enhanced_code = ?, updated_at = ?, sent_at = ? WHERE id = ?",
            [
                (
                    r.row.tries,
                    r.reply.code if r.reply else 250,
                    r.reply and r.reply.enhanced,
                    stamp,
                    r.at,
                    r.row.id,
                )
                for r in results
            ],
        )

    def _record(self, r: _Result, stamp: str) -> None:
        reply = r.reply
        code = reply.code if reply else None
        enhanced = reply.enhanced if reply else None
        error = r.error or (reply.describe() if reply and not reply.ok else None)
        self.db.execute(
            "UPDATE deliveries SET status = ?, attempts = attempts + ?, last_error = ?, smtp_code = ?,"
            " enhanced_code = ?, message_id = ?, updated_at = ?, sent_at = ? WHERE id = ?",
            [
                r.status,
                r.row.tries,
                error,
                code,
                enhanced,
                r.row.message_id,
                stamp,
                r.at if r.status == "sent" else None,
                r.row.id,
            ],
        )
        if r.bounced and r.row.subscriber_id is not None:
            from subscribers.store import mark_bounced

            with contextlib.suppress(DigestError):
                mark_bounced(
                    self.db,
                    r.row.subscriber_id,
                    detail={"issue": self.run.issue_id, "reply": error or ""},
                )

    def _claim(self, limit: int, stamp: str) -> list[_Row]:
        rows = self.db.execute(
            "SELECT d.id, d.subscriber_id, d.email, d.variant, d.message_id, s.status, s.name"
            " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue_id = ? AND d.status = 'queued' AND (d.due_at IS NULL OR d.due_at <= ?)"
            " ORDER BY d.id LIMIT ?",
            [self.run.issue_id, self.run.now_iso, limit],
        ).fetchall()
        claimed: list[_Row] = []
        for rid, sid, email, variant, mid, status, name in rows:
            if status != "active" or not email:
                why = "subscriber removed" if status is None else f"subscriber is {status}"
                self.db.execute(
                    "UPDATE deliveries SET status = 'skipped', last_error = ?, updated_at = ? WHERE id = ?",
                    [why, stamp, rid],
                )
                self.run.counters.add("skipped")
                continue
            mid = mid or message_id(self.run.config, self.run.issue_id, sid)
            claimed.append(_Row(rid, sid, email, variant, mid, name or ""))
        self.db.conn.executemany(
            "UPDATE deliveries SET status = 'sending', message_id = ?, updated_at = ? WHERE id = ?",
            [(row.message_id, stamp, row.id) for row in claimed],
        )
        return claimed

    def release(self) -> None:
        """Rows claimed but never sent go back to queued; rows waiting for a retry are deferred."""
        with transaction(self.db):
            for row in self.batch:
                self.db.execute("UPDATE deliveries SET status = 'queued' WHERE id = ?", [row.id])
            for _, _, row in self.retry:
                self.db.execute(
                    "UPDATE deliveries SET status = 'deferred', attempts = attempts + ? WHERE id = ?",
                    [row.tries, row.id],
                )
                self.run.counters.add("deferred")
        self.batch.clear()
        self.retry = []

    # -- sending

    def message_for(self, row: _Row) -> bytes:
        assert row.subscriber_id is not None
        recipient = {
            "email": row.email,
            "name": row.name,
            **self.links(row.subscriber_id),
            "subscriber_id": row.subscriber_id,
        }
        return self.run.prepared[row.variant].fill(recipient, message_id=row.message_id)

    def connect(self) -> None:
        while True:
            if self.run.stop.is_set():
                raise _Stopped
            try:
                self.transport = open_transport(self.run.url, self.run.config)
                self.run.live.add(self.transport)
                if self.run.stop.is_set():  # checked after registering: _cut_connections sees us
                    raise _Stopped
                connect = getattr(self.transport, "connect", None)
                if connect is not None:
                    connect()
                return
            except ConnectionLost as exc:
                self.transport = None
                self.connect_failures += 1
                if self.connect_failures > self.run.retries:
                    raise TransportError(
                        f"cannot deliver through {transport_for_display(self.run.url)}: {exc}"
                        f" ({self.connect_failures} attempts)"
                    ) from None
                self.run.stop.wait(RETRY_BACKOFF_SECONDS * 2 ** (self.connect_failures - 1))

    def send_one(self, row: _Row) -> None:
        started = time.monotonic()
        try:
            self._send_one(row)
        finally:
            took = time.monotonic() - started
            self.per_message = took if self.per_message is None else 0.8 * self.per_message + 0.2 * took

    def _send_one(self, row: _Row) -> None:
        try:
            message = self.message_for(row)
        except DigestError as exc:
            # One recipient whose message cannot be built (an address that needs SMTPUTF8...)
            # fails alone; the rest of the send goes on.
            self.results.append(_Result(row, "failed", error=str(exc)))
            self.run.counters.add("failed")
            return
        if (
            self.transport is None
            or getattr(self.transport, "sent_on_connection", 0) >= self.run.max_per_connection
        ):
            self.close_transport()
            self.connect()
        if self.run.limiter is not None:
            self.run.limiter.wait(self.run.stop)
        row.tries += 1
        options: dict[str, Any] = {"dot_safe": True}
        self.announced = None
        if (
            isinstance(self.transport, SMTPTransport)
            and self.batch
            and self.transport.sent_on_connection + 1 < self.run.max_per_connection
            and not self.run.stop.is_set()
        ):
            # The next row's envelope rides along with this message's content (one round trip each).
            following = self.batch[0]
            self.announced = following.id
            options["next_envelope"] = (self.run.return_path.for_delivery(following.id), following.email)
        sender = self.run.return_path.for_delivery(row.id)
        try:
            reply = self.transport.send(message, sender, row.email, **options)
        except ConnectionLost as exc:
            # Dropped or 421: the message may or may not have arrived; it goes again, same Message-ID.
            self.close_transport()
            with self.run.counters.lock:
                self.run.lost_in_a_row += 1
                lost = self.run.lost_in_a_row
            if lost >= self.run.lost_limit:
                # Reconnecting works but nothing gets an answer (e.g. the server takes the data
                # and never replies): stop rather than time out on every row, maybe twice each.
                raise TransportError(
                    f"{lost} sends in a row through {transport_for_display(self.run.url)} lost the"
                    f" connection or got no answer (last: {exc})"
                ) from None
            self.later(row, str(exc), immediate=row.tries == 1)
            return
        self.connect_failures = 0
        self.run.lost_in_a_row = 0
        if reply.ok:
            self.results.append(_Result(row, "sent", reply=reply, at=iso(utcnow())))
            self.run.counters.add("sent")
        elif reply.temporary:
            self.later(row, reply)
        elif reply.stage == "mail":
            # A 5xx to MAIL FROM is about the sender or the session (sender address not
            # allowed, authentication required), not this recipient: every row would get
            # the same answer, so stop and leave them queued instead of failing them all.
            raise TransportError(
                f"{transport_for_display(self.run.url)} refused the sender <{sender}>:"
                f" {reply.describe()}; check publication.from and the SMTP login (delivery.smtp_user)"
            )
        else:
            bounced = bool(reply.enhanced and reply.enhanced.startswith("5.1.")) and reply.stage != "mail"
            self.results.append(_Result(row, "failed", reply=reply, bounced=bounced))
            self.run.counters.add("failed")

    def later(self, row: _Row, why: Reply | str, *, immediate: bool = False) -> None:
        if row.tries > self.run.retries:
            reply = why if isinstance(why, Reply) else None
            error = None if reply else str(why)
            self.results.append(_Result(row, "deferred", reply=reply, error=error))
            self.run.counters.add("deferred")
            return
        delay = 0.0 if immediate else RETRY_BACKOFF_SECONDS * 2 ** (row.tries - 1)
        heapq.heappush(self.retry, (time.monotonic() + delay, next(self.seq), row))

    def ineligible(self, row: _Row) -> str | None:
        """Why a row waiting for a retry must not be sent now (None: send it).

        Claims check the subscriber's status; a retry comes back after a backoff, so it is
        checked again: still active, still on this edition, still following a category of
        the issue.
        """
        if row.subscriber_id is None:
            return "subscriber removed"
        found = self.db.execute(
            "SELECT status, editions, categories FROM subscribers WHERE id = ?", [row.subscriber_id]
        ).fetchone()
        if found is None:
            return "subscriber removed"
        status, editions, categories = found
        if status != "active":
            return f"subscriber is {status}"
        if self.issue_scope is None:
            from digest.compose import issue_categories

            edition = self.db.execute(
                "SELECT edition FROM issues WHERE id = ?", [self.run.issue_id]
            ).fetchone()[0]
            cats = {c.lower() for c in issue_categories(self.db, self.run.issue_id)}
            self.issue_scope = (edition, cats)
        edition, cats = self.issue_scope
        if editions is not None and edition not in json.loads(editions):
            return f"subscriber no longer receives the {edition} edition"
        if categories is not None and not {c.lower() for c in json.loads(categories)} & cats:
            return "subscriber no longer follows any category of this issue"
        return None

    def close_transport(self) -> None:
        if self.transport is not None:
            self.run.live.discard(self.transport)
            with contextlib.suppress(Exception):
                self.transport.close()
            self.transport = None

    def next_row(self) -> _Row | None:
        while not self.run.stop.is_set():
            if self.announced is not None and self.batch and self.batch[0].id == self.announced:
                return self.batch.popleft()  # its envelope is already on the wire
            now = time.monotonic()
            if self.retry and self.retry[0][0] <= now:
                row = heapq.heappop(self.retry)[2]
                why = self.ineligible(row)
                if why is None:
                    return row
                # Unsubscribed (or changed what they get) during the backoff: not sent again.
                self.results.append(_Result(row, "skipped", error=why))
                self.run.counters.add("skipped")
                continue
            if self.batch:
                return self.batch.popleft()
            # One row first; then as many as take about CLAIM_SECONDS to send.
            size = 1 if not self.per_message else int(CLAIM_SECONDS / self.per_message)
            claimed = self.flush(claim=max(1, min(CLAIM_BATCH, size)))
            if claimed:
                self.batch.extend(claimed)
                continue
            if not self.retry:
                return None
            self.run.stop.wait(max(0.0, self.retry[0][0] - time.monotonic()))
        return None

    def loop(self) -> None:
        try:
            while True:
                row = self.next_row()
                if row is None:
                    break
                try:
                    self.send_one(row)
                except _Stopped:
                    self.batch.appendleft(row)
                    break
                except BaseException:
                    self.batch.appendleft(row)  # not sent: released to queued below
                    raise
                if len(self.results) >= FLUSH_EVERY or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
                    self.flush()
        finally:
            self.close_transport()
            self.flush()
            self.release()
            self.db.conn.close()


class _Stopped(Exception):
    """Told to stop while waiting to reconnect."""


def recipient_links(config: Config, secret: bytes, subscriber_id: int) -> dict[str, str]:
    """The unsubscribe and preferences URLs of :func:`subscribers.links.subscriber_links`,
    without the confirm token a send does not need."""
    return _Links(config, secret)(subscriber_id)


class _Links:
    """:func:`recipient_links` for the hot path: the HMAC key is prepared once per run."""

    def __init__(self, config: Config, secret: bytes | str) -> None:
        from subscribers.tokens import TokenSigner

        self.base = config.publication.base_url.rstrip("/")
        self.signer = TokenSigner(secret)

    def __call__(self, subscriber_id: int) -> dict[str, str]:
        token = self.signer.token
        return {
            "unsubscribe_url": f"{self.base}/unsubscribe/{token(subscriber_id, 'unsubscribe')}",
            "preferences_url": f"{self.base}/preferences/{token(subscriber_id, 'preferences')}",
        }


def _cut_connections(run: _Run) -> None:
    """The run is over: wake the other connections from their waits (their rows are released)."""
    for transport in list(run.live):
        abort = getattr(transport, "abort", None)
        if abort is not None:
            abort()


def _connection_worker(run: _Run, number: int) -> None:
    try:
        worker = _Worker(run, number)
        worker.loop()
    except DigestError as exc:
        run.fatal.append(str(exc))
        run.stop.set()
        _cut_connections(run)
    except Exception as exc:  # noqa: BLE001 - a worker thread must report, not vanish silently
        run.fatal.append(f"send worker failed: {type(exc).__name__}: {exc}")
        run.stop.set()


# ---------------------------------------------------------------- dry run and test sends


def _dry_run(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any], now: datetime
) -> DeliveryReport:
    issue_id = int(issue["id"])
    report = DeliveryReport(issue_id=issue_id, dry_run=True, status=issue["status"])
    counts: dict[str, int] = {}
    if issue["status"] == "draft":
        for sub, variant, due in _recipients(db, config, issue):
            state = "due" if due is None or due <= now else "later"
            report.plan.append(
                {
                    "email": sub["email"],
                    "name": sub["name"],
                    "variant": variant,
                    "due_at": due and iso(due),
                    "when": state,
                }
            )
            counts[variant] = counts.get(variant, 0) + 1
    else:
        now_iso = iso(now)
        for row in db.query(
            "SELECT email, variant, status, due_at FROM deliveries WHERE issue_id = ?"
            " AND status IN ('queued', 'sending', 'deferred') ORDER BY id",
            [issue_id],
        ):
            state = "due" if row["due_at"] is None or row["due_at"] <= now_iso else "later"
            report.plan.append({**row, "when": state})
            counts[row["variant"]] = counts.get(row["variant"], 0) + 1
    report.variants = counts
    report.total = len(report.plan)
    report.queued = sum(1 for p in report.plan if p["when"] == "due")
    return report


def _test_send(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any], to: list[str], url: str
) -> DeliveryReport:
    from digest.compose import issue_categories
    from digest.render import render_issue, stored_variant, variant_key
    from subscribers.store import find_subscriber
    from subscribers.tokens import load_secret

    issue_id = int(issue["id"])
    report = DeliveryReport(issue_id=issue_id, test=True, status=issue["status"])
    links_for = _Links(config, load_secret(config))
    # Not on the list: links that lead to the pages but act on nobody.
    test_links = {
        "unsubscribe_url": f"{links_for.base}/unsubscribe/test",
        "preferences_url": f"{links_for.base}/preferences/test",
    }
    categories = issue_categories(db, issue_id)
    prepared: dict[str, PreparedMessage] = {}
    transport = open_transport(url, config)
    sender = _envelope_sender(config)
    try:
        for address in to:
            subscriber = find_subscriber(db, address)
            variant = variant_key(subscriber["categories"], categories) if subscriber else "*"
            if variant == "[]":
                variant = "*"
            if variant not in prepared:
                rendered = (
                    render_issue(db, config, issue_id, variant)
                    if issue["status"] == "draft"
                    else stored_variant(db, config, issue_id, variant)
                )
                prepared[variant] = prepare_message(config, issue, rendered, test=True)
            links = links_for(int(subscriber["id"])) if subscriber is not None else test_links
            message = prepared[variant].fill(
                {
                    "email": address,
                    "name": subscriber["name"] if subscriber else "",
                    **links,
                    "subscriber_id": None,
                }
            )
            try:
                reply = transport.send(message, sender, address)
            except ConnectionLost as exc:
                reply = Reply(0, str(exc), stage="connection")
                transport.close()
                transport = open_transport(url, config)
            outcome = "sent" if reply.ok else "failed"
            setattr(report, outcome, getattr(report, outcome) + 1)
            report.plan.append(
                {"email": address, "variant": variant, "status": outcome, "reply": reply.describe()}
            )
    finally:
        transport.close()
    report.total = len(to)
    return report


# ---------------------------------------------------------------- reading the ledger


def delivery_counts(db: sqlite_utils.Database, issue_id: int) -> dict[str, int]:
    """Rows per status for an issue (every status present, zero when none)."""
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    for status, count in db.execute(
        "SELECT status, count(*) FROM deliveries WHERE issue_id = ? GROUP BY status", [issue_id]
    ):
        counts[status] = count
    return counts


def list_deliveries(
    db: sqlite_utils.Database, issue_id: int, *, status: str | None = None
) -> Iterator[dict[str, Any]]:
    """The ledger rows of an issue (optionally of one status), in id order, streamed."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise DigestError(f"unknown delivery status {status!r}; use one of: {', '.join(DELIVERY_STATUSES)}")
    sql = (
        "SELECT d.id, d.subscriber_id, d.email, s.name, d.variant, d.status, d.due_at, d.attempts,"
        " d.smtp_code, d.enhanced_code, d.last_error, d.message_id, d.sent_at, d.updated_at"
        " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.issue_id = ? AND d.id > ?"
    )
    only: list[Any] = []
    if status:
        sql += " AND d.status = ?"
        only.append(status)
    sql += " ORDER BY d.id LIMIT 1000"
    last = 0
    while True:
        page = list(db.query(sql, [issue_id, last, *only]))
        for row in page:
            if row["variant"] != "*":
                with contextlib.suppress(ValueError):
                    row["variant"] = ", ".join(json.loads(row["variant"]))
            yield row
        if len(page) < 1000:
            return
        last = page[-1]["id"]
