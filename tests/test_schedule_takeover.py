"""Several `digest schedule run` processes on one PostgreSQL store: one runs the jobs (a lock in
the database), a second refuses or, with --standby, waits; when the first is killed mid-run
the standby takes over, closes the dead one's run and catches up; a scheduler whose lock
session is ended stops before its next job. On SQLite a standby waits for the lock file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import new_workspace

from digest.ingest.feeds import add_feed
from digest.store.database import open_store

DIGEST = str(Path(sys.executable).with_name("digest"))

CONFIG = """
[publication]
name = "Takeover Test"
from = "Takeover Test <digest@example.org>"
base_url = "https://news.example.org"
postal_address = "1 Test Street, Testville"
timezone = "UTC"

[delivery]
transport = "maildir:outbox"

[ingest]
timeout = 60

[schedule]
catch_up = "6h"

[editions.daily]
title = "Daily"
schedule = "{schedule}"
timezone = "UTC"
window = "1d"
"""


class HangingFeed:
    """A TCP listener that holds its first connection without answering (until :meth:`release`)
    and hangs up on every later one at once (a fetch that fails fast)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed.xml"
        self.held: list[socket.socket] = []
        self.connected = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.connected.is_set():
                conn.close()
                continue
            self.held.append(conn)
            self.connected.set()

    def release(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hanging_feed() -> Iterator[HangingFeed]:
    feed = HangingFeed()
    yield feed
    feed.release()


def workspace(root: Path, pg_url: str | None, feed_url: str, schedule: str = "* * * * *") -> dict[str, str]:
    """A workspace on the PostgreSQL store at ``pg_url`` (None: its SQLite file) whose one feed
    is ``feed_url`` and whose edition fires on ``schedule``; returns the environment its
    processes run with."""
    ws = new_workspace(root, config=CONFIG.format(schedule=schedule), db=False)
    db = open_store(pg_url or root / "digest.db")
    add_feed(db, feed_url)
    db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET="test-secret-not-for-production", DIGEST_CONFIG=str(ws.config_file))
    if pg_url:
        env["DIGEST_DB_URL"] = pg_url
    return env


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([DIGEST, "schedule", "run", *args], env=env, stdout=out, stderr=out)


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def runs(pg_url: str) -> list[dict]:
    db = open_store(pg_url, migrate=False)
    try:
        return [
            {**row, "summary": json.loads(row["summary"])}
            for row in db.query("SELECT id, finished_at, summary FROM runs ORDER BY id")
        ]
    finally:
        db.close()


def _stop(first: subprocess.Popen, standby: subprocess.Popen | None) -> None:
    """Kill the first scheduler if it still runs; stop the standby as an operator would."""
    if first.poll() is None:
        first.kill()
    if standby is not None and standby.poll() is None:
        standby.send_signal(signal.SIGTERM)
        standby.wait(timeout=60)


def test_a_standby_scheduler_takes_over_when_the_first_is_killed_mid_run(
    tmp_path: Path, pg_url: str, hanging_feed: HangingFeed
) -> None:
    env = workspace(tmp_path / "ws", pg_url, hanging_feed.url)
    first_log, standby_log = tmp_path / "first.log", tmp_path / "standby.log"
    first = start(env, first_log)
    standby = None
    try:
        # The first is mid-run: its catch-up run is ingesting from a feed that never answers.
        assert hanging_feed.connected.wait(60), first_log.read_text()
        wait_for(lambda: len(runs(pg_url)) == 1, "the first scheduler's run row")

        second = subprocess.run(
            [DIGEST, "schedule", "run"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "already running" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "--standby" in second.stderr and "Traceback" not in second.stderr

        standby = start(env, standby_log, "--standby")
        time.sleep(3)  # a standby only waits while the lock is held
        assert standby.poll() is None
        assert "scheduler started" not in standby_log.read_text()

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        wait_for(lambda: "scheduler running" in standby_log.read_text(), "the standby to take over", 30)

        log = standby_log.read_text()
        assert "took over: closed 1 run(s) a stopped scheduler left open" in log
        rows = runs(pg_url)
        dead = rows[0]["summary"]
        assert rows[0]["finished_at"] and dead["interrupted"] is True and dead["pid"] == first.pid
        assert "closed by the one that took over" in dead["error"]
        caught_up = [r for r in rows[1:] if r["summary"].get("pid") != first.pid]
        assert caught_up and caught_up[0]["finished_at"], rows

        again = subprocess.run(
            [DIGEST, "schedule", "run"], env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 1 and f"pid {standby.pid}" in again.stderr
    finally:
        _stop(first, standby)
    assert standby.returncode == 0, standby_log.read_text()
    assert "Traceback" not in standby_log.read_text()


def test_a_standby_stopped_while_waiting_exits_cleanly_without_running(tmp_path: Path, pg_url: str) -> None:
    env = workspace(tmp_path / "ws", pg_url, "http://127.0.0.1:9/feed.xml")
    first = start(env, tmp_path / "first.log")
    try:
        wait_for(lambda: "scheduler running" in (tmp_path / "first.log").read_text(), "the first scheduler")
        standby = start(env, tmp_path / "standby.log", "--standby")
        time.sleep(2)
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=30) == 0
        log = (tmp_path / "standby.log").read_text()
        assert "Scheduler stopped (SIGTERM) after 0 run(s)" in log and "scheduler started" not in log
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0


def test_a_scheduler_whose_lock_session_is_ended_stops_before_its_next_job(
    tmp_path: Path, pg_url: str
) -> None:
    env = workspace(tmp_path / "ws", pg_url, "http://127.0.0.1:9/feed.xml", schedule="* * * * * *")
    log = tmp_path / "scheduler.log"
    proc = start(env, log)
    try:
        wait_for(lambda: "scheduler running" in log.read_text(), "the scheduler")
        # What the server does to the session of a host that stopped answering.
        db = open_store(pg_url, migrate=False)
        ended = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'digest schedule run pid %'"
        ).fetchall()
        db.close()
        assert ended == [(True,)]
        # The next job (every second) finds the lock gone and stops.
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 1, text
    assert "the scheduler lock was lost" in text and "Error: the scheduler lock" in text
    assert "Traceback" not in text


@pytest.mark.sqlite_only("the SQLite scheduler lock file; the PostgreSQL lock is tested beside it")
def test_on_sqlite_a_standby_waits_for_the_lock_file_and_takes_over_after_a_kill(tmp_path: Path) -> None:
    env = workspace(tmp_path / "ws", None, "http://127.0.0.1:9/feed.xml")
    first_log, standby_log = tmp_path / "first.log", tmp_path / "standby.log"
    first = start(env, first_log)
    standby = None
    try:
        wait_for(lambda: "scheduler running" in first_log.read_text(), "the first scheduler")
        standby = start(env, standby_log, "--standby")
        time.sleep(2)
        assert standby.poll() is None and "scheduler started" not in standby_log.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        wait_for(lambda: "scheduler running" in standby_log.read_text(), "the standby to take over", 30)
        assert "digest.db.scheduler.lock" in standby_log.read_text()
    finally:
        _stop(first, standby)
    assert standby.returncode == 0, standby_log.read_text()
