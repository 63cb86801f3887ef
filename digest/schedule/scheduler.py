"""The long-running scheduler (``digest schedule run``) and the listing of next fire times.

:func:`serve` is ``digest schedule run``: an APScheduler 3.x ``BlockingScheduler`` with one
cron trigger per edition in the edition's zone (plus, when an edition delivers in local
time, a quarter-hourly job in UTC that sends the rows whose hour has come: every zone's
offset is a multiple of 15 minutes). Each job is one :func:`digest.schedule.run.run_due`. Missed
fire times coalesce into one run and are honoured within the catch-up window; at start it
runs once, which catches up a time missed while it was down. SIGTERM and SIGINT let the run
in flight finish and be recorded, then the process exits.

One scheduler per database (:func:`scheduler_lock`), so each due job runs once:

- SQLite: an ``flock`` on a file beside the database, which the kernel releases when a
  process dies, so a killed scheduler never leaves it stuck.
- PostgreSQL (``[storage] url``), where schedulers may run on several hosts: a session-level
  advisory lock held on a connection of its own (:mod:`digest.store.db_lock` says why that
  and not a lease row). A scheduler killed, or whose host vanished, loses its session and
  with it the lock; a second one started with ``wait`` (``digest schedule run --standby``)
  takes over within seconds (half a minute for a vanished host) and its first run
  catches up what the dead one left: the ledger keeps each reader's message once, and
  compose builds one issue per edition and period. Before every job the holder checks that
  the server still counts it as the holder (a scheduler whose session was ended, e.g. by a
  network cut, stops rather than run a job another scheduler may be running too), and the
  taker closes the run rows the dead scheduler left open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import TIMEOUT_MAX
from typing import Any

import sqlite_utils
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Config, Edition, display_store
from digest.errors import DigestError
from digest.localtime import edition_trigger, next_fire_time
from digest.lockfile import hold_lock
from digest.schedule.run import catch_up_window, run_due
from digest.schedule.run_records import close_runs_of_lost_scheduler
from digest.schedule.run_report import RunReport
from digest.store.database import iso, open_store, utcnow
from digest.store.db_lock import hold_database_lock

REVIEW_EVERY = timedelta(minutes=15)
"""How often the scheduler runs an edition that needs approval (review mail, late approvals)."""

logger = logging.getLogger("digest.schedule")


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


class SchedulerLost(DigestError):
    """The scheduler's lock ended while it ran (its database session was ended); it stopped."""


SCHEDULER_LOCK_KEY = 2_026_024
"""The PostgreSQL advisory lock key of ``digest schedule run`` (one per database)."""
STANDBY_STEP_S = 1.0
"""How often a standby scheduler on SQLite tries the lock file again."""


@dataclass
class HeldLock:
    """The scheduler's lock while it is held: where it is (for the log), and whether it still is."""

    where: str
    held: Callable[[], bool]


def lock_path(config: Config) -> Path:
    """The lock file that keeps one scheduler per SQLite database."""
    db_path = config.db_path
    return db_path.with_name(db_path.name + ".scheduler.lock")


@contextlib.contextmanager
def scheduler_lock(config: Config, *, wait: Callable[[], bool] | None = None) -> Iterator[HeldLock]:
    """Hold the one-scheduler-per-database lock; SchedulerBusy if another process has it.

    With ``wait``, a busy lock is asked for again (about once a second) while ``wait()`` is
    True: a standby that takes over when the holder stops or dies. The lock file on SQLite,
    an advisory lock on PostgreSQL (see the module docstring)."""
    if config.storage.url:
        with _database_lock(config, wait) as held:
            yield held
        return

    def busy(holder: str) -> SchedulerBusy:
        return SchedulerBusy(
            f"a scheduler is already running for {config.db_path} (pid {holder}); "
            "stop it first (kill -TERM that pid) — only one `digest schedule run` per database"
        )

    # The file is removed when the scheduler stops.
    path = lock_path(config)
    while True:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(hold_lock(path, busy, mode=0o644))
        except SchedulerBusy:
            if wait is None or not wait():
                raise
            time.sleep(STANDBY_STEP_S)
            continue
        with stack:
            yield HeldLock(str(path), lambda: True)
        return


@contextlib.contextmanager
def _database_lock(config: Config, wait: Callable[[], bool] | None) -> Iterator[HeldLock]:
    shown = display_store(config.storage.url)

    def busy(holder: str) -> SchedulerBusy:
        return SchedulerBusy(
            f"a scheduler is already running for {shown} ({holder}); only one `digest schedule run` "
            "per database: stop that one first, or start this one with --standby to take over "
            "when it stops"
        )

    with hold_database_lock(config.storage.url, SCHEDULER_LOCK_KEY, "schedule run", busy, wait=wait) as lock:
        yield HeldLock(f"advisory lock {SCHEDULER_LOCK_KEY} in {lock.where}", lock.held)


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
    standby: bool = False,
) -> ServeResult:
    """Run the scheduler until SIGTERM/SIGINT; returns how it ended.

    Each run logs its summary line on the ``digest.schedule`` logger and is
    passed to ``on_run``; ``on_ready`` gets each edition's next fire time once
    the jobs are scheduled. ``clock`` is when runs act (tests inject it).
    ``standby`` waits for the lock while another scheduler holds it, instead of
    raising :class:`SchedulerBusy`. Raises :class:`SchedulerLost` when the lock
    was lost while running (it stops first).
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
        if standby:
            logger.info("standby (pid %d): waiting for the scheduler lock if another holds it", os.getpid())
        try:
            _serve_locked(config, catch_up, editions, state, stopping, clock, on_run, on_ready, standby)
        except SchedulerBusy:
            if not (standby and stopping()):
                raise  # else: stopped while waiting as a standby
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state.get("lost"):
        raise SchedulerLost(
            f"the scheduler lock ({state['lock'].where}) was lost after {state['runs']} run(s), "
            "so this scheduler stopped (another may have taken over); start it again"
        )
    return ServeResult(runs=state["runs"], stopped_by=state["stopped_by"])


def _serve_locked(
    config: Config,
    catch_up: timedelta,
    editions: list[Edition],
    state: dict[str, Any],
    stopping: Callable[[], bool],
    clock: Callable[[], datetime],
    on_run: Callable[[RunReport], None] | None,
    on_ready: Callable[[list[dict[str, Any]]], None] | None,
    standby: bool,
) -> None:
    """Take the lock (waiting for it as a standby), close what a lost scheduler left open, serve."""
    with scheduler_lock(config, wait=(lambda: not stopping()) if standby else None) as lock:
        state["lock"] = lock
        db = open_store(config.store)
        try:
            closed = close_runs_of_lost_scheduler(db)
            if closed:
                logger.warning("took over: closed %d run(s) a stopped scheduler left open", closed)
            _serve(config, db, catch_up, editions, state, stopping, clock, on_run, on_ready)
        finally:
            db.close()


def review_trigger(edition: Edition) -> IntervalTrigger | None:
    """For an edition that waits for an editor, a run every :data:`REVIEW_EVERY`: its review
    links go out ``review_before`` the send time and an issue approved late is sent. None for
    an edition without approval (its cron is enough)."""
    if edition.approval != "required":
        return None
    return IntervalTrigger(seconds=int(REVIEW_EVERY.total_seconds()), timezone=UTC)


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
        if stopping() or _lock_lost(state):
            return
        try:
            report = run_due(
                db, config, at=clock(), edition=edition_key, build=build, stop=stopping, scheduler=True
            )
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

    logger.info("scheduler started (pid %d, lock %s)", os.getpid(), state["lock"].where)
    try:
        # Catch up a scheduled time missed while no scheduler ran (within the window).
        job(None)
        _add_jobs(scheduler, job, editions)
        if on_ready is not None:
            on_ready(next_fire_times(config, now=clock(), count=1))
        if not stopping():
            scheduler.start()
    finally:
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True)


def _lock_lost(state: dict[str, Any]) -> bool:
    """Whether the scheduler's lock is gone (then the scheduler stops: another may have it)."""
    if state["lock"].held():
        return False
    logger.error("the scheduler lock was lost (%s); stopping", state["lock"].where)
    state["lost"] = True
    state["stop"] = True
    return True


def _add_jobs(scheduler: BlockingScheduler, job: Callable[..., None], editions: list[Edition]) -> None:
    """A job per edition at its send time, one for readers' local send times, and the review
    runs of the editions that wait for an editor (:func:`review_trigger`)."""
    for ed in editions:
        scheduler.add_job(job, edition_trigger(ed), args=[ed.key], id=f"edition:{ed.key}", name=ed.key)
    local = local_delivery_trigger(editions)
    if local is not None:
        scheduler.add_job(job, local, args=[None, False], id="local-delivery", name="local")
    for ed in editions:
        if (review := review_trigger(ed)) is not None:
            scheduler.add_job(job, review, args=[ed.key], id=f"review:{ed.key}", name=f"{ed.key} review")
