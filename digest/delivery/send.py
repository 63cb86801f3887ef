"""The entry point of a send: :func:`deliver_issue`.

A real send of an issue:

1. on SQLite, takes a per-issue lock (``fcntl.flock`` on a file beside the database:
   the kernel drops it when the process dies, so a SIGKILL never leaves it stuck); on
   PostgreSQL several senders may deliver one issue together, each claiming rows under a
   lease (:mod:`digest.delivery.lease`), with journals in a folder of this host's
   (:func:`~digest.delivery.journal.journal_base`);
2. checks that the readers' links can work (:func:`check_public_base_url`:
   refused for an SMTP send, a warning for maildir/mbox and test sends);
3. freezes the issue and snapshots the recipients (:func:`ledger.freeze`),
   replays the journals of a killed run and requeues rows left in flight (on PostgreSQL:
   this host's journals of senders that are gone, and rows whose lease ended);
4. prepares one message per variant and hands the rows to the engine
   (:func:`engine.execute`), which runs the connection workers;
5. marks the issue ``sent`` when no row is pending.

A run-level fault (the relay refuses the sender, the session or the message)
raises :class:`~digest.mail.transports.TransportError` with the unsent rows still
queued. ``--to`` test sends and dry runs live in :mod:`digest.delivery.trial`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlite_utils

from digest.compose.issues import get_issue, issue_name, set_issue_transport
from digest.config import Config
from digest.delivery import engine, ledger
from digest.delivery.checks import check_public_base_url
from digest.delivery.guard import Reports, SendGuard
from digest.delivery.journal import journal_base
from digest.delivery.lease import send_tag
from digest.delivery.report import DeliveryReport
from digest.delivery.trial import dry_run_report, test_send
from digest.delivery.worker import LOST_IN_A_ROW, Run
from digest.errors import DigestError
from digest.lockfile import hold_lock
from digest.mail.message import dkim_signer, prepare_message
from digest.mail.transports import (
    TransportError,
    capabilities,
    default_transport_url,
    parse_transport_url,
    transport_for_display,
)
from digest.mail.transports.registry import destination
from digest.mail.verp import ReturnPath
from digest.render.variants import stored_variant
from digest.store.database import database_file, iso, transaction, utcnow
from digest.store.dialect import is_postgresql
from subscribers.tokens import load_secret

__all__ = ["DeliveryReport", "SendInProgress", "deliver_issue"]

PROCESS_THRESHOLD = 1000
"""Rows to send before the work is split over processes (a transport whose ``forks_ok``)."""


class SendInProgress(DigestError):
    """Another process is sending this issue right now."""


def deliver_issue(
    db: sqlite_utils.Database,
    config: Config,
    issue_id: int,
    *,
    transport_url: str | None = None,
    to: list[str] | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    concurrency: int | None = None,
    rate: float | None = None,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    resume: bool = False,
    reports: Reports | None = None,
) -> DeliveryReport:
    """Send (or resume sending) issue ``issue_id`` to everyone in its ledger.

    ``to``: a test send to those addresses only ("[TEST]" subject, not recorded).
    ``dry_run``: report who would get which variant, send nothing.
    ``retry_failed``: first requeue failed rows whose failure was not about the mailbox.
    ``now``: the moment local-time delivery compares ``due_at`` with (default: now).
    ``progress(done, total)`` is called from the calling thread as the send goes.
    The send guards (:mod:`digest.delivery.guard`) pause a send whose hard bounces or
    complaints pass ``[bounces]``'s lines, reading the issue's bounce reports with ``reports``
    (:func:`digest.bounces.process.issue_reports`; None: only the send's own refusals);
    ``resume`` sends on past them, on purpose.
    Raises SendInProgress when another process is sending this issue, DigestError when
    ``publication.base_url`` cannot work for an SMTP send, and TransportError (a
    DigestError) when the run had to stop; unsent rows stay queued.
    """
    started = time.monotonic()
    issue = get_issue(db, issue_id)
    url, resumed = _transport_for(config, issue, transport_url, test=bool(to) or dry_run)
    parse_transport_url(url)  # a bad URL fails before anything changes
    now = now or utcnow()
    problem = None if dry_run else check_public_base_url(config)
    if problem and capabilities(url).sends_real_mail and not to:
        raise DigestError(problem)
    if to and dry_run:  # a dry run sends nothing, not even a test copy
        report = DeliveryReport(issue_id=int(issue["id"]), dry_run=True, test=True, status=issue["status"])
        report.plan = [{"email": a, "variant": "[TEST] copy", "due_at": None, "when": "due"} for a in to]
        report.queued = report.total = len(to)
    elif to:
        report = test_send(db, config, issue, to, url)
    elif dry_run:
        report = dry_run_report(db, config, issue, now)
    else:
        with _one_sender(db, config, int(issue["id"])) as base:
            guard = None if resume else SendGuard.from_config(config, reports)
            report = _send(
                db, config, issue, url, now, concurrency, rate, progress, retry_failed, guard, base
            )
    if resumed:
        report.warnings.append(resumed)
    if problem:
        report.warnings.append(problem)
    report.duration = time.monotonic() - started
    report.transport = transport_for_display(url)
    return report


def _transport_for(
    config: Config, issue: dict[str, Any], explicit: str | None, *, test: bool
) -> tuple[str, str | None]:
    """The transport to send through, and a warning when it is not the configured one.

    An explicit ``--transport`` wins. Otherwise a send started with a ``--transport`` of its
    own goes on through it: a resume by `digest run` must never hand the rest of an SMTP
    send to the local maildir of the config, where "sent" reaches nobody. A send through the
    configured transport follows the config (a corrected relay takes effect). Test sends
    and dry runs use the configured transport.
    """

    configured = default_transport_url(config)
    recorded = issue.get("transport")
    if explicit or test or not recorded or _same_transport(config, recorded, configured):
        return explicit or configured, None
    return recorded, (
        f"{issue_name(issue)} goes on through {transport_for_display(recorded)}, where its send started "
        f"(delivery.transport is {transport_for_display(configured)}); "
        "pass --transport to send the rest another way"
    )


def _record_transport(db: sqlite_utils.Database, config: Config, issue_id: int, url: str) -> None:
    """Remember a ``--transport`` other than the configured one for this issue's resumes; a send
    through the configured transport records none (a corrected config then takes effect)."""
    chosen = None if _same_transport(config, url, default_transport_url(config)) else _without_password(url)
    with transaction(db):
        set_issue_transport(db, issue_id, chosen)


def _same_transport(config: Config, a: str, b: str) -> bool:
    """Whether two transport URLs deliver to the same place: passwords aside, and a maildir or
    mbox path compared as the file it names (``maildir:outbox`` and its absolute path are one)."""
    return _canonical(config, a) == _canonical(config, b)


def _canonical(config: Config, url: str) -> str:
    try:
        parse_transport_url(url)
    except DigestError:
        return url
    return destination(url, config) or _without_password(url)


def _without_password(url: str) -> str:
    """``url`` without a password in its user part (passwords come from the environment)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def _journal_base(db: sqlite_utils.Database, config: Config) -> Path:
    """Where this send's journals go (:func:`~digest.delivery.journal.journal_base`)."""
    if is_postgresql(db):
        if not config.storage.url:
            raise DigestError("sending on PostgreSQL needs the store's [storage] url in the config")
        return journal_base(None, config.base_dir)
    path = database_file(db)
    if path is None:
        raise DigestError("sending needs a database file (not an in-memory database)")
    return journal_base(path, config.base_dir)


@contextlib.contextmanager
def _one_sender(db: sqlite_utils.Database, config: Config, issue_id: int) -> Iterator[Path]:
    """The journals' base, held under the issue's send lock on SQLite (one sender per issue);
    on PostgreSQL under none: several senders share the issue under leases."""
    base = _journal_base(db, config)
    if is_postgresql(db):
        yield base
        return
    with _issue_lock(base, issue_id):
        yield base


@contextlib.contextmanager
def _issue_lock(db_path: Path, issue_id: int) -> Iterator[int]:

    def busy(holder: str) -> SendInProgress:
        return SendInProgress(
            f"issue {issue_id} is already being sent (by pid {holder}); "
            "wait for that send to finish, or stop it and run `digest send` again to resume"
        )

    # Removed when the send ends, so no lock files pile up beside the database.
    with hold_lock(db_path.with_name(f"{db_path.name}.send-{issue_id}.lock"), busy) as fd:
        yield fd


def _send(
    db: sqlite_utils.Database,
    config: Config,
    issue: dict[str, Any],
    url: str,
    now: datetime,
    concurrency: int | None,
    rate: float | None,
    progress: Callable[[int, int], None] | None,
    retry_failed: bool,
    guard: SendGuard | None,
    db_path: Path,
) -> DeliveryReport:

    issue_id = int(issue["id"])
    _record_transport(db, config, issue_id, url)
    if issue["status"] == "draft":
        ledger.freeze(db, config, issue, now)
    report = DeliveryReport(issue_id=issue_id)
    ledger.replay_journals(db, db_path, issue_id)  # a killed run's 250s first: never sent twice
    ledger.requeue_in_flight(db, issue_id)
    if retry_failed:
        report.requeued = ledger.requeue_failed(db, issue_id)
    issue = get_issue(db, issue_id)
    now_iso = iso(now)
    to_send = ledger.due_count(db, issue_id, now_iso)
    report.variants = ledger.variant_counts(db, issue_id)
    why = guard.before_the_send(db, issue_id) if guard is not None and to_send else None
    if why is not None:
        raise TransportError(f"{why} (nothing was sent; unsent rows stay queued)")
    if to_send:
        run, signed = _new_run(db, db_path, config, issue, url, now_iso, guard)
        connections, processes = _workers(config, url, concurrency, to_send, signed=signed)
        run.lost_limit = max(LOST_IN_A_ROW, 3 * connections)
        rate = config.delivery.rate if rate is None else rate
        started = iso(utcnow())
        counts = engine.execute(db, run, connections, processes, rate or 0.0, to_send, progress)
        if run.refused:
            # A refusal that repeated for different readers was the run's, not theirs.
            counts["failed"] -= ledger.requeue_refused(db, issue_id, set(run.refused), since=started)
        for key, value in counts.items():
            setattr(report, key, value)
        report.interrupted = run.stop.is_set() and not run.fatal
        report.signal = run.signal if report.interrupted else 0
        if run.fatal:
            raise TransportError(f"{run.fatal[0]} (the send stopped; unsent rows stay queued)")
    counts, report.status = ledger.finish(db, issue_id)
    report.total = sum(counts.values())
    report.queued = counts["queued"] + counts["sending"]
    return report


def _new_run(
    db: sqlite_utils.Database,
    db_path: Path,
    config: Config,
    issue: dict[str, Any],
    url: str,
    now_iso: str,
    guard: SendGuard | None,
) -> tuple[Run, bool]:
    """The send's shared state, each queued variant's message prepared (and signed, when DKIM
    is on) once; and whether the messages are signed."""
    issue_id = int(issue["id"])
    signer = dkim_signer(config)
    prepared = {
        variant: prepare_message(config, issue, stored_variant(db, config, issue_id, variant), signer=signer)
        for variant in ledger.queued_variants(db, issue_id)
    }
    run = Run(
        db_path=db_path,
        config=config,
        issue_id=issue_id,
        url=url,
        now_iso=now_iso,
        prepared=prepared,
        secret=load_secret(config),
        return_path=ReturnPath(config),
        retries=max(0, config.delivery.retries),
        max_per_connection=max(1, config.delivery.max_per_connection),
        guard=guard,
        # The workers open the store the send was given: the file, or the configured server.
        store=config.storage.url or db_path,
        send=send_tag(),
    )
    return run, signer is not None


def _workers(
    config: Config, url: str, concurrency: int | None, to_send: int, *, signed: bool
) -> tuple[int, int]:
    """How many connections and worker processes: never more connections than the transport
    allows or rows to send; processes only where the transport may fork and the send is big."""
    connections = max(1, concurrency or config.delivery.concurrency)
    can = capabilities(url)
    if can.max_connections is not None:
        connections = min(connections, can.max_connections)
    connections = min(connections, to_send)
    processes = 1
    # Signing is CPU-bound: spread it over the cores sooner.
    threshold = PROCESS_THRESHOLD // 10 if signed else PROCESS_THRESHOLD
    if can.forks_ok and to_send >= threshold:
        processes = max(1, min(os.cpu_count() or 1, connections))
    return connections, processes
