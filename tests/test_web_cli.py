"""`digest web serve` as a real process: it listens, answers, keeps tokens out of its log, stops cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from store_switch import store_at


def _serve_command(workspace: Path) -> list[str]:
    """`digest web serve` for ``workspace`` on a free port, as a subprocess runs it."""
    return [
        sys.executable,
        "-m",
        "digest",
        "--config",
        str(workspace / "digest.toml"),
        "web",
        "serve",
        "--port",
        "0",
    ]


def test_web_serve_answers_and_redacts_tokens_in_its_log(workspace: Path) -> None:
    proc = subprocess.Popen(
        _serve_command(workspace),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = f"http://127.0.0.1:{match.group(1)}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
            assert resp.status == 200 and resp.read() == b"ok\n"
        secret_looking = "7.NotARealTokenButLongEnoughToLookLikeOneAAAAAAAAAAAA"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/preferences/{secret_looking}", timeout=10)
        assert info.value.code == 400
        info.value.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        # Within gunicorn's graceful timeout (the request timeout, 30 s): once, on a loaded
        # machine, one of the two workers took longer than 10 s to exit.
        out, err = proc.communicate(timeout=35)
    assert proc.returncode == 0, err
    assert "Stopped." in out
    assert "GET /healthz" in err
    assert "/preferences/…" in err
    assert secret_looking not in err


def test_web_serve_refuses_a_busy_port(workspace: Path, run_cli) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("web", "serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(
    "damage", ["newer", pytest.param("garbage", marks=pytest.mark.sqlite_only("a damaged SQLite file"))]
)
def test_web_serve_checks_the_database_before_announcing_it_serves(workspace: Path, damage: str) -> None:
    db_path = workspace / "digest.db"
    if damage == "newer":  # a schema newer than this code: on PostgreSQL too
        db = store_at(db_path, migrate=False)
        db.execute(
            "INSERT INTO _migrations (name, applied_at) VALUES ('m9999_from_the_future', '2030-01-01')"
        )
        db.close()
    else:
        db_path.write_bytes(b"this is not a database, just some bytes" * 100)
    proc = subprocess.run(
        _serve_command(workspace),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Serving" not in proc.stdout
    assert proc.stderr.startswith("Error:") and proc.stderr.count("\n") == 1, proc.stderr
