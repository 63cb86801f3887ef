"""Scheduled runs: do what is due at a moment, and the long-running scheduler.

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
3. Record the run in the ``runs`` table and return a :class:`RunReport`
   whose :meth:`~RunReport.summary` is the one line a run logs.

Running it twice, or from two processes at once, makes one issue and one
delivery per subscriber: compose checks and inserts in one ``BEGIN
IMMEDIATE`` transaction, and the ledger sends each row once.

:func:`serve` is ``digest schedule run``: an APScheduler 3.x
``BlockingScheduler`` with one cron trigger per edition in the edition's zone
(plus, when an edition delivers in local time, a quarter-hourly job in UTC that
sends the rows whose hour has come: every zone's offset is a multiple of 15
minutes). Missed fire times coalesce into one run and are honoured within the
catch-up window; at start it runs once, which catches up a time missed while
it was down. One scheduler per database: an ``flock`` on a file beside the
database, which the kernel releases when a process dies, so a killed
scheduler never leaves it stuck. SIGTERM and SIGINT let the run in flight
finish and be recorded, then the process exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import TIMEOUT_MAX
from typing import Any

import sqlite_utils
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.config import Config, Edition, parse_duration
from digest.errors import DigestError
from digest.localtime import edition_trigger, latest_fire_time, next_fire_time
from digest.overdue import collect_render_warnings, overdue_issues
from digest.store import PENDING_DELIVERY, iso, open_store, transaction, utcnow

logger = logging.getLogger("digest.schedule")


@dataclass
class Built:
    """An issue a run composed (or found already composed) for a scheduled time."""

    edition: str
    scheduled: str  # UTC ISO time the issue's period ends at
    issue_id: int | None
    number: int | None
    created: bool
    message: str


@dataclass
class Sent:
    """What one delivery call did for one issue."""

    issue_id: int
    edition: str
    number: int
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    waiting: int = 0  # local-time rows not due yet
    busy: bool = False  # another process is sending this issue
    error: str | None = None  # the send stopped (e.g. the SMTP server refused the login)
    interrupted: bool = False  # SIGTERM/SIGINT stopped the send after the messages in flight
    dry_run: bool = False
    note: str = ""


@dataclass
class RunReport:
    """Everything one :func:`run_due` call did."""

    at: str
    dry_run: bool = False
    run_id: int | None = None
    editions: list[str] = field(default_factory=list)
    ingested_sources: int = 0
    ingested_new: int = 0
    ingested_updated: int = 0
    ingest_errors: list[str] = field(default_factory=list)
    built: list[Built] = field(default_factory=list)
    deliveries: list[Sent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a build or send that failed; the run went on
    error: str | None = None  # what stopped the whole run
    overdue: list[str] = field(default_factory=list)  # issues past due that have not gone out

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing is overdue (a feed that could not be read
        does not count)."""
        return not self.errors and self.error is None and not self.overdue

    @property
    def interrupted(self) -> bool:
        """True when a signal stopped a send early (the rest stays queued for the next run)."""
        return any(d.interrupted for d in self.deliveries)

    @property
    def sent(self) -> int:
        """Messages sent in this run."""
        return sum(d.sent for d in self.deliveries)

    @property
    def failed(self) -> int:
        """Messages that failed permanently in this run."""
        return sum(d.failed for d in self.deliveries)

    @property
    def deferred(self) -> int:
        """Messages left for a later run after temporary failures."""
        return sum(d.deferred for d in self.deliveries)

    def summary(self) -> str:
        """One line: what was ingested, built and sent."""
        when = self.at.replace("+00:00", "Z")
        parts = []
        if self.ingested_sources:
            text = f"ingested {self.ingested_new} new, {self.ingested_updated} updated from "
            text += f"{self.ingested_sources} source{'s' if self.ingested_sources != 1 else ''}"
            if self.ingest_errors:
                text += f" ({len(self.ingest_errors)} failed)"
            parts.append(text)
        for b in self.built:
            if b.issue_id is None and self.dry_run:
                parts.append(f"{b.edition}: would build")
            elif b.created:
                parts.append(f"built {b.edition}/{b.number}")
        for d in self.deliveries:
            if d.busy:
                parts.append(f"{d.edition}/{d.number}: being sent by another process")
            elif d.error:
                parts.append(f"{d.edition}/{d.number}: send stopped ({d.error})")
            elif d.dry_run:
                parts.append(f"{d.edition}/{d.number}: would send {d.sent}")
            elif d.sent or d.failed or d.deferred or d.waiting:
                text = f"{d.edition}/{d.number}: sent {d.sent}"
                if d.failed:
                    text += f", failed {d.failed}"
                if d.deferred:
                    text += f", deferred {d.deferred}"
                if d.interrupted:
                    text += f" (interrupted; {d.waiting} still queued)"
                elif d.waiting:
                    text += f", {d.waiting} queued for later"
                parts.append(text)
        parts.extend(self.notes)
        if self.overdue:
            parts.append(f"{len(self.overdue)} overdue (listed below)")
        if self.error:
            parts.append(f"failed: {self.error}")
        prefix = "dry run" if self.dry_run else "run"
        return f"{prefix} {when}: " + ("; ".join(parts) if parts else "nothing due")

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for --json and the runs table)."""
        data = asdict(self)
        data.update(sent=self.sent, failed=self.failed, deferred=self.deferred, summary=self.summary())
        return data


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
    rows = list(
        db.query(
            "SELECT * FROM issues WHERE edition = ? AND period_end = ? ORDER BY id LIMIT 1",
            [edition, iso(period_end)],
        )
    )
    return rows[0] if rows else None


def _issues_with_due_rows(
    db: sqlite_utils.Database, editions: list[str], at: datetime
) -> list[dict[str, Any]]:
    """Issues of ``editions`` being sent that have ledger rows due by ``at`` (or to finish off)."""
    marks = ", ".join("?" for _ in editions)
    states = ", ".join("?" for _ in PENDING_DELIVERY)
    sql = f"""
        SELECT * FROM issues i
        WHERE i.edition IN ({marks}) AND i.status = 'sending'
          AND (EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = i.id AND d.status IN ({states})
                       AND (d.due_at IS NULL OR d.due_at <= ?))
               OR NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = i.id AND d.status IN ({states})))
        ORDER BY i.period_end, i.id
    """
    return list(db.query(sql, [*editions, *PENDING_DELIVERY, iso(at), *PENDING_DELIVERY]))


def _start_run(db: sqlite_utils.Database, at: datetime) -> int:
    started = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    with transaction(db):
        close_stale_runs(db)
        cursor = db.execute(
            "INSERT INTO runs (at, started_at, summary) VALUES (?, ?, ?)", [iso(at), iso(utcnow()), started]
        )
        return int(cursor.lastrowid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def close_stale_runs(db: sqlite_utils.Database, *, now: datetime | None = None) -> int:
    """Mark runs whose process died before finishing (SIGKILL, a crash) as interrupted.

    A run row names its process (pid, host) until it finishes. A row still open whose
    process on this host is gone gets ``finished_at`` and ``"interrupted": true``; rows of
    live processes (another ``digest run``, the scheduler) and of other hosts are left
    alone, except rows without a pid (older versions) started over a day ago.
    Returns how many were closed.
    """
    now = now or utcnow()
    host = socket.gethostname()
    closed = 0
    with transaction(db):
        rows = db.execute("SELECT id, started_at, summary FROM runs WHERE finished_at IS NULL").fetchall()
        for run_id, started_at, text in rows:
            try:
                started = json.loads(text)
            except ValueError:
                started = {}
            pid = started.get("pid") if isinstance(started, dict) else None
            if isinstance(pid, int):
                if started.get("host") != host or _process_alive(pid):
                    continue
                why = f"the run (pid {pid}) ended before it finished; closed by a later run"
            elif started_at < iso(now - timedelta(days=1)):
                started = {}
                why = "the run never finished; closed by a later run"
            else:
                continue
            started.update(interrupted=True, error=why)
            db.execute(
                "UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?",
                [iso(now), json.dumps(started), run_id],
            )
            closed += 1
    return closed


def _finish_run(db: sqlite_utils.Database, run_id: int, report: RunReport) -> None:
    summary = json.dumps(report.as_dict(), ensure_ascii=False, default=str)
    with transaction(db):
        db.execute(
            "UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?", [iso(utcnow()), summary, run_id]
        )


def run_due(
    db: sqlite_utils.Database,
    config: Config,
    *,
    at: datetime,
    edition: str | None = None,
    dry_run: bool = False,
    build: bool = True,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Do what is due at ``at``: ingest, build each due issue, deliver; record the run.

    ``edition`` limits the run to one edition. ``dry_run`` ingests and builds
    nothing, records nothing, and reports what would be built and who would be
    sent what. ``build=False`` only delivers ledger rows that are due (the
    scheduler's local-time job). ``stop()`` is asked before each build and
    each send; when it says True the rest is left for the next run (the
    scheduler passes its SIGTERM flag). See the module docstring for the rules.
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
        report.run_id = _start_run(db, at)
    try:
        with collect_render_warnings(report.notes):
            _run(db, config, report, editions, at, catch_up, build=build, stop=stop or (lambda: False))
        if not dry_run:
            from digest.signup import list_upkeep

            report.notes.extend(list_upkeep(db, config, now=at))
        report.overdue = overdue_issues(db, report.editions, before=at - catch_up, at=at)
    except BaseException as exc:
        report.error = str(exc) or type(exc).__name__
        raise
    finally:
        if report.run_id is not None:
            _finish_run(db, report.run_id, report)
    return report


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
    from digest.compose import compose_issue

    if not report.dry_run:
        _bounces(db, config, report, at)
    to_build: list[tuple[Edition, datetime]] = []
    to_send: dict[int, dict[str, Any]] = {}
    if build:
        for ed in editions:
            scheduled = due_time(ed, at, catch_up)
            if scheduled is None:
                continue
            issue = _issue_ending(db, ed.key, scheduled)
            if issue is None:
                to_build.append((ed, scheduled))
            elif issue["status"] != "sent":
                to_send[issue["id"]] = issue

    if to_build and not report.dry_run:
        _ingest(db, config, report, at)
    for ed, scheduled in to_build:
        if stop():
            report.notes.append("stopping: the rest is left for the next run")
            return
        if report.dry_run:
            report.built.append(Built(ed.key, iso(scheduled), None, None, False, "would build"))
            continue
        try:
            result = compose_issue(db, config, ed.key, period_end=scheduled)
        except DigestError as exc:
            problem = f"{ed.key}: could not build the issue for {iso(scheduled)}: {exc}"
            report.errors.append(problem)
            report.notes.append(problem)
            continue
        issue = result.issue
        report.notes.extend(f"{ed.key}: {warning}" for warning in result.warnings)
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
        elif issue["status"] != "sent":
            to_send[issue["id"]] = issue

    for issue in _issues_with_due_rows(db, [e.key for e in editions], at):
        to_send.setdefault(issue["id"], issue)
    for issue in sorted(to_send.values(), key=lambda i: (i["period_end"], i["id"])):
        if stop():
            report.notes.append("stopping: the rest is left for the next run")
            return
        sent = _deliver(db, config, issue, at, dry_run=report.dry_run)
        report.deliveries.append(sent)
        if sent.error:
            report.errors.append(f"{sent.edition}/{sent.number}: {sent.error}")


def _bounces(db: sqlite_utils.Database, config: Config, report: RunReport, at: datetime) -> None:
    """Read ``[bounces] source`` first, so nothing is sent to an address that bounced since the last run.
    An unreadable mailbox is reported (exit 1) and the run still sends."""
    from digest.bounces import process_configured_source

    line, error = process_configured_source(db, config, now=at)
    if line:
        report.notes.append(line)
    if error:
        report.errors.append(error)
        report.notes.append(error)


def _ingest(db: sqlite_utils.Database, config: Config, report: RunReport, at: datetime) -> None:
    from digest.ingest import ingest_sources

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
    from digest.deliver import SendInProgress, deliver_issue

    outcome = Sent(issue_id=issue["id"], edition=issue["edition"], number=issue["number"], dry_run=dry_run)
    try:
        result = deliver_issue(db, config, issue["id"], dry_run=dry_run, now=at)
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


# --- listing ---------------------------------------------------------------------------------


def next_fire_times(
    config: Config, *, now: datetime | None = None, count: int = 3, edition: str | None = None
) -> list[dict[str, Any]]:
    """For each edition, its next ``count`` scheduled times in its zone and in UTC."""
    now = (now or utcnow()).astimezone(UTC)
    editions = [config.edition(edition)] if edition else list(config.editions.values())
    out = []
    for ed in editions:
        times = []
        cursor = now
        for _ in range(count):
            cursor = next_fire_time(ed, cursor)
            local = cursor.astimezone(ed.zone)
            times.append(
                {
                    "local": local.isoformat(),
                    "local_text": _local_text(local),
                    "utc": iso(cursor),
                }
            )
        out.append(
            {
                "edition": ed.key,
                "title": ed.title,
                "schedule": ed.schedule,
                "timezone": ed.timezone,
                "delivery": ed.delivery,
                "send_at": ed.send_at if ed.delivery == "local" else None,
                "next": times,
            }
        )
    return out


def _local_text(local: datetime) -> str:
    seconds = ":%S" if local.second else ""
    return local.strftime(f"%a %Y-%m-%d %H:%M{seconds} %Z")


# --- the long-running scheduler -------------------------------------------------------------


class SchedulerBusy(DigestError):
    """Another ``digest schedule run`` holds the lock for this database."""


def lock_path(config: Config) -> Path:
    """The lock file that keeps one scheduler per database."""
    db_path = config.db_path
    return db_path.with_name(db_path.name + ".scheduler.lock")


@contextlib.contextmanager
def scheduler_lock(config: Config) -> Iterator[Path]:
    """Hold the one-scheduler-per-database lock; SchedulerBusy if another process has it."""
    from digest.lockfile import hold_lock

    def busy(holder: str) -> SchedulerBusy:
        return SchedulerBusy(
            f"a scheduler is already running for {config.db_path} (pid {holder}); "
            "stop it first (kill -TERM that pid) — only one `digest schedule run` per database"
        )

    # The file is removed when the scheduler stops.
    path = lock_path(config)
    with hold_lock(path, busy, mode=0o644):
        yield path


def local_delivery_trigger(editions: list[Edition]) -> CronTrigger | None:
    """A UTC trigger at every quarter hour a local-time edition's send_at can fall on, or None."""
    minutes: set[int] = set()
    for ed in editions:
        if ed.delivery == "local":
            base = int(ed.send_at.split(":")[1])
            minutes.update((base + 15 * k) % 60 for k in range(4))
    if not minutes:
        return None
    return CronTrigger(second=0, minute=",".join(str(m) for m in sorted(minutes)), timezone=UTC)


class _StoppableScheduler(BlockingScheduler):
    """A BlockingScheduler whose loop notices a stop request from a signal handler.

    Signal handlers only set a flag (taking the scheduler's locks inside a handler
    could deadlock); the loop wakes at least once a second to look at it.
    """

    def __init__(self, should_stop: Callable[[], bool], **options: Any) -> None:
        super().__init__(**options)
        self.should_stop = should_stop

    def _main_loop(self) -> None:
        wait_seconds = TIMEOUT_MAX
        while self.state != STATE_STOPPED and not self.should_stop():
            self._event.wait(min(wait_seconds if wait_seconds is not None else TIMEOUT_MAX, 1.0))
            self._event.clear()
            if self.should_stop():
                break
            wait_seconds = self._process_jobs()


@dataclass
class ServeResult:
    """How a scheduler process ended."""

    runs: int
    stopped_by: str | None


def serve(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    on_run: Callable[[RunReport], None] | None = None,
    on_ready: Callable[[list[dict[str, Any]]], None] | None = None,
) -> ServeResult:
    """Run the scheduler until SIGTERM/SIGINT; returns how it ended.

    Each run logs its summary line on the ``digest.schedule`` logger and is
    passed to ``on_run``; ``on_ready`` gets each edition's next fire time once
    the jobs are scheduled. ``clock`` is when runs act (tests inject it).
    """
    catch_up = catch_up_window(config)
    editions = list(config.editions.values())
    if not editions:
        config.edition(None)
    for ed in editions:
        edition_trigger(ed)  # validate every cron before taking the lock
    state: dict[str, Any] = {"runs": 0, "stopped_by": None, "stop": False}

    def stopping() -> bool:
        return bool(state["stop"])

    def on_signal(signum: int, _frame: Any) -> None:
        state["stopped_by"] = signal.Signals(signum).name
        state["stop"] = True

    # Handlers first: from the moment the lock names this pid, SIGTERM means a clean stop.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with scheduler_lock(config):
            db = open_store(config.db_path)
            try:
                _serve(config, db, catch_up, editions, state, stopping, clock, on_run, on_ready)
            finally:
                db.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ServeResult(runs=state["runs"], stopped_by=state["stopped_by"])


def _serve(
    config: Config,
    db: sqlite_utils.Database,
    catch_up: timedelta,
    editions: list[Edition],
    state: dict[str, Any],
    stopping: Callable[[], bool],
    clock: Callable[[], datetime],
    on_run: Callable[[RunReport], None] | None,
    on_ready: Callable[[list[dict[str, Any]]], None] | None,
) -> None:
    scheduler = _StoppableScheduler(
        stopping,
        timezone=UTC,
        executors={"default": DebugExecutor()},  # runs in the main thread, where signals land
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": max(1, int(catch_up.total_seconds())),
        },
    )

    def job(edition_key: str | None, build: bool = True) -> None:
        if stopping():
            return
        try:
            report = run_due(db, config, at=clock(), edition=edition_key, build=build, stop=stopping)
        except DigestError as exc:
            logger.error("run failed: %s", exc)
        except Exception:  # a bug in one run is logged with its traceback; the scheduler lives on
            logger.exception("run failed unexpectedly")
        else:
            state["runs"] += 1
            logger.info("%s", report.summary())
            for line in report.overdue:
                logger.warning("overdue: %s", line)
            if on_run is not None:
                on_run(report)
            if report.interrupted:
                # The send engine caught the signal itself, finished what was in flight and
                # left the rest queued: stop as the signal asked.
                state["stopped_by"] = state["stopped_by"] or "SIGTERM or SIGINT during a send"
                state["stop"] = True

    logger.info("scheduler started (pid %d, lock %s)", os.getpid(), lock_path(config))
    try:
        # Catch up a scheduled time missed while no scheduler ran (within the window).
        job(None)
        for ed in editions:
            scheduler.add_job(job, edition_trigger(ed), args=[ed.key], id=f"edition:{ed.key}", name=ed.key)
        local = local_delivery_trigger(editions)
        if local is not None:
            scheduler.add_job(job, local, args=[None, False], id="local-delivery", name="local")
        if on_ready is not None:
            on_ready(next_fire_times(config, now=clock(), count=1))
        if not stopping():
            scheduler.start()
    finally:
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True)
