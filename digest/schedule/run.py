"""A scheduled run: do what is due at a moment (ingest, build, deliver) and record it.

:func:`run_due` is the whole job of a scheduled run, for one moment ``at``:

1. For each edition, its latest scheduled time T with ``at - catch_up <= T <= at``.
   A time missed by more than ``schedule.catch_up`` (default 6h) is not run.
   When the edition has no issue for the period ending at T yet, the feeds are
   ingested (once per run, only when something is to be built) and the issue
   is composed; composing is idempotent per period.
2. Deliver: the issue for T if it is not fully sent, and every issue of the
   selected editions that has ledger rows due by ``at`` (local-time rows whose
   hour has come, deferred rows, a send interrupted earlier). The send engine
   refuses a concurrent send of the same issue with ``SendInProgress``: that
   means another process is on it, which is fine.
   Then ``[dmarc] source`` is read, when set (reports only: nothing waits on it).
3. Record the run in the ``runs`` table and return a :class:`RunReport`
   whose :meth:`~RunReport.summary` is the one line a run logs.

Running it twice, or from two processes at once, makes one issue and one
delivery per subscriber: compose checks and inserts in one ``BEGIN
IMMEDIATE`` transaction, and the ledger sends each row once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from digest.compose.build import compose_issue
from digest.compose.history import period_discarded
from digest.compose.issues import issue_ending, sending_issues
from digest.config import Config, Edition, parse_duration
from digest.delivery import SendInProgress, deliver_issue
from digest.delivery.ledger import due_or_done, forget_reader
from digest.errors import DigestError
from digest.ingest.sources import ingest_sources
from digest.localtime import latest_fire_time
from digest.render.guard import collect_render_warnings
from digest.schedule.approval import held_drafts, may_send, prepare_reviews, refresh_early_build
from digest.schedule.overdue import overdue_issues
from digest.schedule.run_records import finish_run, start_run
from digest.schedule.run_report import Built, RunReport, Sent
from digest.signup import list_upkeep
from digest.store.database import iso


def catch_up_window(config: Config) -> timedelta:
    """``schedule.catch_up`` as a timedelta."""
    try:
        return parse_duration(config.schedule.catch_up)
    except DigestError as exc:
        raise DigestError(f"{config.source}: 'schedule.catch_up': {exc}") from None


def due_time(edition: Edition, at: datetime, catch_up: timedelta) -> datetime | None:
    """The edition's latest scheduled time within ``[at - catch_up, at]``, or None."""
    return latest_fire_time(edition, at - catch_up, at)


def _issue_ending(db: sqlite_utils.Database, edition: str, period_end: datetime) -> dict[str, Any] | None:
    return issue_ending(db, edition, iso(period_end))


def _issues_with_due_rows(
    db: sqlite_utils.Database, editions: list[str], at: datetime
) -> list[dict[str, Any]]:
    """Issues of ``editions`` being sent that have ledger rows due by ``at`` (or to finish off)."""
    return [issue for issue in sending_issues(db, editions) if due_or_done(db, issue["id"], iso(at))]


def run_due(
    db: sqlite_utils.Database,
    config: Config,
    *,
    at: datetime,
    edition: str | None = None,
    dry_run: bool = False,
    build: bool = True,
    stop: Callable[[], bool] | None = None,
    scheduler: bool = False,
) -> RunReport:
    """Do what is due at ``at``: ingest, build each due issue, deliver; record the run.

    ``edition`` limits the run to one edition. ``dry_run`` ingests and builds
    nothing, records nothing, and reports what would be built and who would be
    sent what. ``build=False`` only delivers ledger rows that are due (the
    scheduler's local-time job). ``stop()`` is asked before each build and
    each send; when it says True the rest is left for the next run (the
    scheduler passes its SIGTERM flag). ``scheduler`` marks the run's row as the
    scheduler's (a scheduler that takes over closes the ones a lost one left open). See the
    module docstring for the rules.
    """
    if at.tzinfo is None:
        raise DigestError("run_due needs an aware time; give --at with a zone, e.g. 2026-01-23T07:00Z")
    at = at.astimezone(UTC)
    editions = [config.edition(edition)] if edition else list(config.editions.values())
    if not editions:
        config.edition(None)  # raises the "no editions configured" error
    catch_up = catch_up_window(config)
    report = RunReport(at=iso(at), dry_run=dry_run, editions=[e.key for e in editions])
    if not dry_run:
        report.run_id = start_run(db, at, scheduler=scheduler)
    try:
        with collect_render_warnings(report.notes):
            _run(db, config, report, editions, at, catch_up, build=build, stop=stop or (lambda: False))
        if not dry_run:
            _dmarc(db, config, report)
            report.notes.extend(list_upkeep(db, config, forget_deliveries=forget_reader, now=at))
        overdue = overdue_issues(db, report.editions, before=at - catch_up, at=at, skip=set(report.held))
        report.overdue = overdue
    except BaseException as exc:
        report.error = str(exc) or type(exc).__name__
        raise
    finally:
        if report.run_id is not None:
            finish_run(db, report.run_id, report)
    return report


def _plan(
    db: sqlite_utils.Database, report: RunReport, editions: list[Edition], at: datetime, catch_up: timedelta
) -> tuple[list[tuple[Edition, datetime]], dict[int, dict[str, Any]]]:
    """What to build (edition, scheduled time) and what to send (issues by id): each edition's
    due time without an issue (unless one was discarded for it), its issue not yet sent, and
    the drafts held for approval."""
    to_build: list[tuple[Edition, datetime]] = []
    to_send = {issue["id"]: issue for issue in held_drafts(db, editions, at, catch_up)}
    for ed in editions:
        scheduled = due_time(ed, at, catch_up)
        if scheduled is None:
            continue
        issue = _issue_ending(db, ed.key, scheduled)
        if issue is None and period_discarded(db, ed.key, iso(scheduled)):
            report.notes.append(f"{ed.key}: the issue for {iso(scheduled)} was discarded; none is built")
        elif issue is None:
            to_build.append((ed, scheduled))
        elif issue["status"] != "sent":
            to_send[issue["id"]] = issue
    return to_build, to_send


def _run(
    db: sqlite_utils.Database,
    config: Config,
    report: RunReport,
    editions: list[Edition],
    at: datetime,
    catch_up: timedelta,
    *,
    build: bool,
    stop: Callable[[], bool],
) -> None:

    if not report.dry_run:
        _bounces(db, config, report, at)
        if build:
            prepare_reviews(db, config, report, editions, at, ingest=lambda: _ingest(db, config, report, at))
    to_build: list[tuple[Edition, datetime]] = []
    to_send: dict[int, dict[str, Any]] = {}
    if build:
        to_build, to_send = _plan(db, report, editions, at, catch_up)
    if to_build and not report.dry_run and not report.ingested_sources:
        _ingest(db, config, report, at)
    for ed, scheduled in to_build:
        if stop():
            report.notes.append("stopping: the rest is left for the next run")
            return
        if report.dry_run:
            report.built.append(Built(ed.key, iso(scheduled), None, None, False, "would build"))
            continue
        issue = _build(db, config, report, ed, scheduled)
        if issue is not None and issue["status"] != "sent":
            to_send[issue["id"]] = issue

    for issue in _issues_with_due_rows(db, [e.key for e in editions], at):
        to_send.setdefault(issue["id"], issue)
    for issue in sorted(to_send.values(), key=lambda i: (i["period_end"], i["id"])):
        if stop():
            report.notes.append("stopping: the rest is left for the next run")
            return
        if not report.dry_run:
            if not may_send(db, config, report, issue, at):
                report.held.append(issue["id"])
                continue
            issue = refresh_early_build(db, config, report, issue)
        sent = _deliver(db, config, issue, at, dry_run=report.dry_run)
        report.deliveries.append(sent)
        if sent.error:
            report.errors.append(f"{sent.edition}/{sent.number}: {sent.error}")


def _build(
    db: sqlite_utils.Database, config: Config, report: RunReport, ed: Edition, scheduled: datetime
) -> dict[str, Any] | None:
    """Build (or find) the edition's issue for ``scheduled`` and note it in the report; the
    issue, or None when there is none (nothing to put in it, or it could not be built)."""
    try:
        # A model that cannot be used at all must not hold back the 07:00 issue.
        result = compose_issue(db, config, ed.key, period_end=scheduled, summaries_required=False)
    except DigestError as exc:
        problem = f"{ed.key}: could not build the issue for {iso(scheduled)}: {exc}"
        report.errors.append(problem)
        report.notes.append(problem)
        return None
    issue = result.issue
    report.notes.extend(f"{ed.key}: {warning}" for warning in result.warnings)
    if result.summary_error:
        report.errors.append(f"{ed.key}: summaries: {result.summary_error}")
    report.built.append(
        Built(
            edition=ed.key,
            scheduled=iso(scheduled),
            issue_id=issue["id"] if issue else None,
            number=issue["number"] if issue else None,
            created=result.created,
            message=result.message,
        )
    )
    if issue is None:
        report.notes.append(f"{ed.key}: {result.message}")
    return issue


def _bounces(db: sqlite_utils.Database, config: Config, report: RunReport, at: datetime) -> None:
    """Read ``[bounces] source`` first, so nothing is sent to an address that bounced since the last run.
    An unreadable mailbox is reported (exit 1) and the run still sends."""
    source = config.bounces.source.strip()
    if not source:
        return
    # Only now: the bounces package (classify, sources, imaplib, mailbox) is for runs that read one.
    from digest.bounces import process_bounces  # lazy: start-up

    try:
        bounced = process_bounces(db, config, source, now=at)
    except DigestError as exc:
        report.errors.append(f"bounces: {exc}")
        report.notes.append(f"bounces: {exc}")
        return
    if bounced.messages != bounced.already:
        report.notes.append(f"bounces {bounced.summary()}")


def _dmarc(db: sqlite_utils.Database, config: Config, report: RunReport) -> None:
    """Read ``[dmarc] source`` after the sends (nothing waits on it). A report that cannot be
    read goes to ``rejected`` and is a note; an unreadable mailbox is an error (exit 1)."""
    source = config.dmarc.source.strip()
    if not source:
        return
    from digest.dmarc import process_dmarc  # lazy: start-up (parsedmarc, mailbox, imaplib)

    try:
        read = process_dmarc(db, config, source)
    except DigestError as exc:
        report.errors.append(f"dmarc: {exc}")
        report.notes.append(f"dmarc: {exc}")
        return
    if read.messages != read.already:
        report.notes.append(f"dmarc {read.summary()}")
        report.notes.extend(f"dmarc rejected: {line}" for line in read.rejected)


def _ingest(db: sqlite_utils.Database, config: Config, report: RunReport, at: datetime) -> None:

    try:
        results = ingest_sources(db, config, None, skip_invalid=True, now=at)
    except DigestError as exc:
        # Build from what is stored rather than skip the issue.
        report.ingest_errors.append(str(exc))
        report.notes.append(f"ingest failed: {exc}")
        return
    report.ingested_sources = len(results)
    report.ingested_new = sum(r.new for r in results)
    report.ingested_updated = sum(r.updated for r in results)
    report.ingest_errors.extend(f"{r.source}: {r.error}" for r in results if r.error)


def _deliver(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any], at: datetime, *, dry_run: bool
) -> Sent:

    # The send guards read the issue's bounce reports (see digest.delivery.guard).
    from digest.bounces.process import issue_reports  # lazy: start-up

    outcome = Sent(issue_id=issue["id"], edition=issue["edition"], number=issue["number"], dry_run=dry_run)
    try:
        result = deliver_issue(db, config, issue["id"], dry_run=dry_run, now=at, reports=issue_reports)
    except SendInProgress as exc:
        outcome.busy = True
        outcome.note = str(exc)
        return outcome
    except DigestError as exc:
        # Rows stay queued; the next run resumes. Other issues still get their turn.
        outcome.error = str(exc)
        return outcome
    if dry_run:
        # The dry run's report counts its plan: queued = rows due now, the rest come later.
        outcome.sent, outcome.waiting = result.queued, result.total - result.queued
        return outcome
    outcome.sent, outcome.failed, outcome.deferred = result.sent, result.failed, result.deferred
    outcome.waiting = result.queued
    outcome.interrupted = result.interrupted
    return outcome
