"""Start `digest web serve` as a real process on a free loopback port, for tests and the bench."""

from __future__ import annotations

import email
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

from conftest import new_workspace

SECRET = "test-secret-not-for-production"


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_workspace(folder: Path) -> Path:
    """`digest init` into ``folder``; returns the config path."""
    return new_workspace(folder, db=False).config_file


@dataclass
class WebProcess:
    """A running `digest web serve`; ``stop()`` returns its stderr (the logs)."""

    proc: subprocess.Popen[bytes]
    url: str
    config_path: Path
    log_path: Path

    def stop(self) -> str:
        """SIGTERM, wait, and return everything it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return self.log_path.read_text("utf-8", "replace")

    def maildir(self) -> Path:
        """The workspace's maildir outbox."""
        return self.config_path.parent / "outbox"


def serve_env(port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a served workspace: a test secret and the public URL on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update({"DIGEST_SECRET": SECRET, "DIGEST_BASE_URL": f"http://127.0.0.1:{port}"})
    env.update(extra or {})
    return env


def start_web(
    config_path: Path,
    *,
    workers: int = 1,
    threads: int = 8,
    timeout: float = 30,
    extra_env: dict[str, str] | None = None,
) -> WebProcess:
    """Run `digest web serve` for ``config_path`` on a free port and wait until it answers."""
    port = free_port()
    # The logs go to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
    log_path = config_path.parent / f"web-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "--config",
            str(config_path),
            "web",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            str(timeout),
        ],
        stdout=log,
        stderr=log,
        env=serve_env(port, extra_env),
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"digest web serve exited: {log_path.read_text('utf-8', 'replace')}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return WebProcess(proc, url, config_path, log_path)
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("digest web serve did not answer within 30 s")


def messages_to(maildir: Path, address: str) -> list[EmailMessage]:
    """Every message in the maildir addressed to ``address``, oldest first."""
    if not maildir.exists():
        return []
    box = mailbox.Maildir(str(maildir), factory=None, create=False)
    found = []
    for key in sorted(box.keys(), key=_delivery_order):
        with box.get_file(key) as f:
            msg = email.message_from_binary_file(f, policy=policy.default)
        if address.lower() in str(msg["To"]).lower():
            found.append(msg)
    return found


def _delivery_order(key: str) -> tuple[int, int, str]:
    """Maildir names start ``<seconds>.M<microseconds>``: the order the messages were written."""
    match = re.match(r"(\d+)\.M(\d+)", key)
    return (int(match.group(1)), int(match.group(2)), key) if match else (0, 0, key)


def link_in(msg: EmailMessage, route: str) -> str:
    """The first ``/route/…`` link in the text part of ``msg``."""
    text = msg.get_body(preferencelist=("plain",)).get_content()
    match = re.search(rf"https?://\S+/{route}/\S+", text)
    assert match, text
    return match.group(0)
