"""`digest schedule run` as a real process: it fires, delivers into a maildir, refuses a second
instance, shares the database with CLI commands without "database is locked", and stops
cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_schedule_support import (
    DIGEST,
    Workspace,
    add_readers,
    article_times,
    grow_feed,
    make_workspace,
    message_count,
    messages,
)

READERS = {f"reader{i}@example.org": None for i in range(5)}


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll a subprocess's observable outcome (the process runs on the real clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"scheduler exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_scheduler(ws: Workspace) -> subprocess.Popen:
    return subprocess.Popen(
        [DIGEST, "schedule", "run"],
        cwd=ws.root,
        env=ws.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    return proc.returncode, err


def recent_articles(ws: Workspace) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    grow_feed(ws, article_times(now - timedelta(hours=6), now, timedelta(minutes=30)), now)


def test_scheduler_process_fires_delivers_and_stops_on_sigterm(tmp_path: Path) -> None:
    fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    ws = make_workspace(tmp_path / "ws", schedule=f"{fire:%S %M %H} * * *", timezone="UTC")
    add_readers(ws, READERS)
    recent_articles(ws)
    proc = start_scheduler(ws)
    try:
        wait_for(lambda: message_count(ws.outbox) >= len(READERS), 60, "the delivery", proc)
        second = subprocess.run(
            [DIGEST, "schedule", "run"], cwd=ws.root, env=ws.env(), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "already running" in second.stderr and "only one" in second.stderr
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "scheduler running" in err
    assert "built daily/1" in err and "daily/1: sent 5" in err
    assert "Scheduler stopped (SIGTERM)" in err
    assert "Traceback" not in err
    assert sorted(m["To"].addresses[0].addr_spec for m in messages(ws.outbox)) == sorted(READERS)
    db = ws.db()
    assert db.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL").fetchone()[0] == 0
    assert db.execute("SELECT status FROM issues").fetchall() == [("sent",)]


def test_scheduler_and_cli_commands_share_the_database(tmp_path: Path) -> None:
    # A schedule that fires every second: each firing ingests and tries to build.
    ws = make_workspace(tmp_path / "ws", schedule="* * * * * *", timezone="UTC")
    add_readers(ws, READERS)
    recent_articles(ws)
    proc = start_scheduler(ws)
    outputs: list[tuple[list[str], int, str]] = []
    try:
        wait_for(lambda: message_count(ws.outbox) >= len(READERS), 60, "the first delivery", proc)
        env = ws.env()
        commands = [
            ["run"],
            ["ingest"],
            ["subscribers", "add", "late1@example.org"],
            ["run"],
            ["subscribers", "add", "late2@example.org", "--timezone", "Asia/Almaty"],
            ["ingest"],
        ]
        procs = [
            (
                cmd,
                subprocess.Popen(
                    [DIGEST, *cmd],
                    cwd=ws.root,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
            for cmd in commands
        ]
        for cmd, p in procs:
            out, _ = p.communicate(timeout=120)
            outputs.append((cmd, p.returncode, out))
    finally:
        code, err = stop(proc)
    for cmd, returncode, out in outputs:
        assert "locked" not in out, (cmd, out)
        if cmd[0] != "subscribers":
            assert returncode == 0, (cmd, out)
    assert code == 0, err
    assert "locked" not in err and "run failed" not in err and "Traceback" not in err
    db = ws.db()
    # Every firing built at most the one issue there were articles for, and sent it once.
    assert db.execute("SELECT COUNT(*) FROM issues").fetchone()[0] == 1
    assert len(messages(ws.outbox)) == len(READERS)


def test_sigterm_during_a_send_finishes_what_is_in_flight_and_the_next_run_resumes(tmp_path: Path) -> None:
    from smtp_server import Handler, SMTPServer

    fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    ws = make_workspace(tmp_path / "ws", schedule=f"{fire:%S %M %H} * * *", timezone="UTC")
    readers = {f"slow{i:02d}@example.org": None for i in range(30)}
    add_readers(ws, readers)
    recent_articles(ws)
    with SMTPServer(Handler(delay=0.15)) as server:
        text = ws.config_path.read_text(encoding="utf-8")
        text = text.replace('"maildir:outbox"', f'"{server.url}"').replace(
            "concurrency = 2", "concurrency = 1"
        )
        ws.config_path.write_text(text, encoding="utf-8")
        proc = start_scheduler(ws)
        try:
            wait_for(lambda: len(server.handler.received) >= 3, 60, "the send to start", proc)
        finally:
            code, err = stop(proc)
        assert code == 0, err
        assert "interrupted" in err and "Scheduler stopped (SIGTERM" in err, err
        db = ws.db()
        sent = db.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").fetchone()[0]
        assert 3 <= sent < len(readers)
        assert sent == len(server.handler.received)  # everything in flight was finished and recorded
        assert db.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL").fetchone()[0] == 0

        # The next run (cron, or the scheduler restarted) sends the rest, and nobody twice.
        resumed = subprocess.run(
            [DIGEST, "run"], cwd=ws.root, env=ws.env(), capture_output=True, text=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"daily/1: sent {len(readers) - sent}" in resumed.stdout
        assert sorted(a for r in server.handler.received for a in r.rcpt_tos) == sorted(readers)


@pytest.mark.sqlite_only("the SQLite scheduler lock file; on PostgreSQL: test_schedule_takeover")
def test_a_killed_scheduler_does_not_leave_the_lock_stuck(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", schedule="0 7 1 1 *")  # fires once a year: stays idle
    lock = ws.root / "digest.db.scheduler.lock"

    def holds_lock(proc: subprocess.Popen) -> bool:
        return lock.exists() and lock.read_text().strip() == str(proc.pid)

    first = start_scheduler(ws)
    wait_for(lambda: holds_lock(first), 60, "the first scheduler", first)
    first.kill()
    first.communicate(timeout=30)
    second = start_scheduler(ws)
    try:
        wait_for(lambda: holds_lock(second), 60, "the second scheduler to take over", second)
    finally:
        code, err = stop(second)
    assert code == 0, err
    assert "already running" not in err
    assert not lock.exists()  # a clean stop removes the lock file
