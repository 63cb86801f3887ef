"""The ``runs`` table: a run's row opened at its start and closed at its end.

:func:`start_run` opens the row (naming the process) after :func:`close_stale_runs` has
closed the rows of runs whose process died; :func:`finish_run` records the report;
:func:`close_runs_of_lost_scheduler` closes the rows a scheduler on another host left open.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from digest.schedule.run_report import RunReport
from digest.store.database import iso, transaction, utcnow


def start_run(db: sqlite_utils.Database, at: datetime, *, scheduler: bool = False) -> int:
    """Open the row of a run acting at ``at`` (closing stale rows first); returns its id.
    ``scheduler`` marks it as a run of ``digest schedule run`` (see
    :func:`close_runs_of_lost_scheduler`)."""
    mark: dict[str, object] = {"pid": os.getpid(), "host": socket.gethostname()}
    if scheduler:
        mark["scheduler"] = True
    started = json.dumps(mark)
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
            _close_interrupted(db, run_id, started, why, now)
            closed += 1
    return closed


def _close_interrupted(
    db: sqlite_utils.Database, run_id: int, started: dict[str, Any], why: str, now: datetime
) -> None:
    """Close one open run row as interrupted, saying ``why``."""
    started.update(interrupted=True, error=why)
    db.execute(
        "UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?",
        [iso(now), json.dumps(started), run_id],
    )


def close_runs_of_lost_scheduler(db: sqlite_utils.Database, *, now: datetime | None = None) -> int:
    """Close the open rows of scheduler runs of other processes, on any host, as interrupted.

    Called by a scheduler that has just taken the one-per-database lock: no other scheduler
    holds it, so a scheduler's run still open is one whose process died or lost the lock
    (a host that vanished). Its work is caught up by the taker's first run. Returns how
    many were closed."""
    now = now or utcnow()
    me = (os.getpid(), socket.gethostname())
    closed = 0
    with transaction(db):
        rows = db.execute("SELECT id, summary FROM runs WHERE finished_at IS NULL").fetchall()
        for run_id, text in rows:
            try:
                started = json.loads(text)
            except ValueError:
                continue
            if not isinstance(started, dict) or started.get("scheduler") is not True:
                continue
            if (started.get("pid"), started.get("host")) == me:
                continue
            where = f"pid {started.get('pid')} on {started.get('host')}"
            why = f"the scheduler ({where}) stopped before the run finished; closed by the one that took over"
            _close_interrupted(db, run_id, started, why, now)
            closed += 1
    return closed


def finish_run(db: sqlite_utils.Database, run_id: int, report: RunReport) -> None:
    """Close the run's row with its report."""
    summary = json.dumps(report.as_dict(), ensure_ascii=False, default=str)
    with transaction(db):
        db.execute(
            "UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?", [iso(utcnow()), summary, run_id]
        )
