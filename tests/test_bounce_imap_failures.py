"""A misbehaving IMAP bounce mailbox (tests/fake_imap.py) cannot stop or hold `digest run`: a server
that trickles, sends a 2 MB line, announces a 300 MB literal or answers BAD costs one error line and
exit 1, within the [bounces] deadline, and the issue is still built and sent."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fake_imap import FakeImapServer
from smtp_server import free_port
from test_schedule_support import DIGEST, add_readers, article_times, grow_feed, make_workspace, messages, utc

PASSWORD = "fake-imap-password"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


def _workspace(tmp_path: Path, port: int, deadline: float = 3):
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None, "b@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    with ws.config_path.open("a", encoding="utf-8") as file:
        file.write(f'\n[bounces]\nsource = "imap://bounces@127.0.0.1:{port}/INBOX"\ndeadline = {deadline}\n')
    return ws


def _peak_mb(pid: int, seen: float) -> float:
    """The child's high-water resident memory so far (VmHWM: its own, not inherited from pytest
    as ru_maxrss is across fork and exec)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(seen, int(line.split()[1]) / 1024)
    except (OSError, ValueError):
        pass
    return seen


def _digest(ws, *args: str, timeout: float = 120) -> Ran:
    """Run `digest ARGS` in a child process: its output, how long it took, its peak memory."""
    env = ws.env()
    env["DIGEST_IMAP_PASSWORD"] = PASSWORD
    out, err = ws.root / "stdout.txt", ws.root / "stderr.txt"
    started = time.monotonic()
    peak = 0.0
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([DIGEST, *args], cwd=ws.root, env=env, stdout=stdout, stderr=stderr)
        while proc.poll() is None:  # bounded: killed past the timeout
            peak = _peak_mb(proc.pid, peak)
            if time.monotonic() - started > timeout:
                proc.kill()
                pytest.fail(f"digest {' '.join(args)} still running after {timeout} s")
            time.sleep(0.01)
    return Ran(
        returncode=proc.returncode,
        stdout=out.read_text(),
        stderr=err.read_text(),
        seconds=time.monotonic() - started,
        peak_mb=peak,
    )


def _check_run(ws, ran: Ran, error: str) -> None:
    """Exit 1, the issue built and sent, and the mailbox's failure as one line, no traceback."""
    assert ran.returncode == 1, ran
    assert "built daily/1" in ran.stdout and "daily/1: sent 2" in ran.stdout, ran
    assert len(messages(ws.outbox)) == 2
    assert "Traceback" not in ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("Error: bounces: imap://bounces@127.0.0.1:"), lines
    assert error in lines[0], lines
    assert PASSWORD not in ran.stdout + ran.stderr


def test_a_trickling_server_holds_the_run_no_longer_than_the_deadline(tmp_path: Path) -> None:
    with FakeImapServer("trickle", trickle_bytes=60) as server:  # 60 s of one byte a second
        ws = _workspace(tmp_path, server.port, deadline=2)
        ran = _digest(ws, "run", "--at", "2026-11-03T06:05Z")
    _check_run(ws, ran, "cannot read message 1: gave up after 2 s ([bounces] deadline)")
    assert ran.seconds < 30, ran.seconds  # 2 s in the mailbox, the rest builds and sends


def test_bounces_process_alone_stops_at_the_deadline_with_one_line(tmp_path: Path) -> None:
    with FakeImapServer("trickle", trickle_bytes=60) as server:
        ws = _workspace(tmp_path, server.port, deadline=1.5)
        ran = _digest(ws, "bounces", "process")
    assert ran.returncode == 1 and ran.stdout == "" and "Traceback" not in ran.stderr
    assert ran.stderr.splitlines() == [
        f"Error: imap://bounces@127.0.0.1:{server.port}/INBOX: cannot read message 1: gave up after 1.5 s "
        "([bounces] deadline); what was read is recorded, the rest is read next time"
    ]
    assert ran.seconds < 20, ran.seconds


def test_a_2mb_response_line_is_refused(tmp_path: Path) -> None:
    with FakeImapServer("long_line", line_bytes=2_000_000) as server:
        ws = _workspace(tmp_path, server.port)
        ran = _digest(ws, "run", "--at", "2026-11-03T06:05Z")
    _check_run(ws, ran, "cannot list messages: the server sent a response line longer than 1,000,000 bytes")


def test_a_300mb_literal_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with FakeImapServer("literal", literal_bytes=300_000_000) as server:
        ws = _workspace(tmp_path, server.port)
        ran = _digest(ws, "run", "--at", "2026-11-03T06:05Z")
        sent = server.sent
    _check_run(
        ws, ran, "cannot read message 1: the server announced a 300,000,000-byte literal (limit 10,485,761)"
    )
    # What the socket buffers took before the connection was dropped, not 300 MB.
    assert sent < 20_000_000, sent
    assert ran.peak_mb < 150, ran.peak_mb  # 63 MB for a run without bounces; 353 MB for 30 MB before


def test_a_server_answering_bad_to_select_is_one_line(tmp_path: Path) -> None:
    with FakeImapServer("bad_select") as server:
        ws = _workspace(tmp_path, server.port)
        ran = _digest(ws, "run", "--at", "2026-11-03T06:05Z")
    _check_run(ws, ran, "cannot open the folder (SELECT command error: BAD [b'no such thing here'])")


def test_a_refused_connection_is_one_line(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, free_port())
    ran = _digest(ws, "run", "--at", "2026-11-03T06:05Z")
    _check_run(ws, ran, "cannot log in ([Errno 111] Connection refused)")
