"""Lock files beside the database exist only while the work runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from digest.errors import DigestError
from digest.lockfile import hold_lock


class Busy(DigestError):
    pass


def test_the_lock_file_is_removed_when_the_work_ends(tmp_path: Path) -> None:
    path = tmp_path / "digest.db.send-1.lock"
    with hold_lock(path, Busy):
        assert path.read_text() == str(os.getpid())
    assert not path.exists()
    with hold_lock(path, Busy):  # and can be taken again
        assert path.exists()
    assert not path.exists()


def test_a_held_lock_is_busy_for_another_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    code = (
        "import sys; from pathlib import Path; from digest.lockfile import hold_lock\n"
        "from digest.errors import DigestError\n"
        "try:\n"
        "    with hold_lock(Path(sys.argv[1]), DigestError): print('took it')\n"
        "except DigestError as e: print('busy', e)\n"
    )
    with hold_lock(path, Busy):
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == f"busy {os.getpid()}"
    assert path.exists() is False
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "took it"


def test_a_file_left_by_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("99999")  # a crash leaves the file, but no lock on it
    with hold_lock(path, Busy):
        assert path.read_text() == str(os.getpid())
    assert not path.exists()


def test_a_send_leaves_no_lock_file(run_cli, workspace: Path) -> None:
    add = ["articles", "add", "--title", "Hello", "--url", "https://example.org/h"]
    assert run_cli(*add, "--published", "2026-01-22T12:00:00+00:00").exit_code == 0
    assert run_cli("subscribers", "add", "ada@example.org").exit_code == 0
    built = run_cli("issues", "build", "daily", "--date", "2026-01-23")
    assert "Built issue daily/1" in built.output, built.output
    sent = run_cli("send", "latest")
    assert sent.exit_code == 0, sent.output
    assert "sent 1" in sent.output
    assert sorted(p.name for p in workspace.glob("*.lock")) == []
