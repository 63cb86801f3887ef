"""Shared fixtures: every test runs in its own temp workspace, never the user's files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import digest.delivery.worker
from digest.cli import cli


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temp folder with no DIGEST_* variables leaking in from the machine."""
    for var in list(os.environ):
        if var.startswith("DIGEST_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-not-for-production")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace made by `digest init`: digest.toml + digest.db in tmp_path/ws."""
    ws = tmp_path / "ws"
    result = CliRunner().invoke(cli, ["init", str(ws)])
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture
def run_cli(workspace: Path):
    """Invoke the CLI against the workspace's config; returns click's Result."""

    def invoke(*args: str, input: str | None = None):
        runner = CliRunner()
        return runner.invoke(cli, ["--config", str(workspace / "digest.toml"), *args], input=input)

    return invoke


class FakeClock:
    """The send engine's back-off clock without the seconds: each wait is recorded and moves
    virtual time on at once (see :class:`digest.delivery.worker.Clock`)."""

    def __init__(self) -> None:
        self.time = 0.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.time

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        with self._lock:
            self.waits.append(seconds)
            self.time += seconds
        return stop.is_set()


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every send in the test backs off on a :class:`FakeClock`; its ``waits`` show the delays."""
    clock = FakeClock()
    monkeypatch.setattr(digest.delivery.worker, "CLOCK", clock)
    return clock
