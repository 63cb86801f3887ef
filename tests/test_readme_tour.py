"""The README's tour, run as a new user runs it: top to bottom, as written, in an empty folder
outside the repository, offline, through the ``digest`` command installed from the wheel.

Every ``sh`` block of the "A tour" section runs line by line (``cd`` included) in a
subprocess with no network: in a network namespace of its own (``unshare -n``) where the
machine allows one. Only the commands that run until stopped (``digest web serve``,
``digest schedule run``) are left out; the web app and the scheduler have their own tests.
Every command must exit 0.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from wheel_support import REPO, user_environment

from digest.init import EXAMPLE_FILES

README = REPO / "README.md"
LONG_RUNNING = ("digest web serve", "digest schedule run")


def tour_commands() -> list[str]:
    """The command lines of the tour's ``sh`` blocks, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## A tour")
    end = text.index("\n## ", start + 1)
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text[start:end], re.S):
        lines.extend(line.strip() for line in block.splitlines() if line.strip())
    return lines


def offline_prefix() -> list[str]:
    """``unshare -n`` (no network at all) where this machine lets us make a namespace, else []."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-n"]
    return []


def test_the_tour_lists_the_commands_it_claims() -> None:
    commands = tour_commands()
    assert commands[0] == "digest init mynews --base-url https://news.example.org --example && cd mynews"
    # nothing is copied from a checkout, and nothing names a server to reach
    assert all(c.split()[0] in ("digest", "cd") for part in commands for c in part.split(" && "))
    spoken = [" ".join(shlex.split(c, comments=True)) for c in commands]  # without the comments
    assert not any(re.search(r"(smtps?|imaps?)://|https?://\S+\.xml", c) for c in spoken)
    assert any(c.startswith("digest feeds add feed.xml") for c in commands)
    assert any("ingest articles.jsonl" in c for c in commands)
    assert any("import people.csv" in c for c in commands)
    assert any("mbox:bounces.mbox" in c for c in commands)
    # a preview of a subscriber comes after that subscriber is added
    added = next(i for i, c in enumerate(commands) if c.startswith("digest subscribers add ada@"))
    previewed = next(i for i, c in enumerate(commands) if "--subscriber ada@" in c)
    assert added < previewed
    # the export does not overwrite the file just imported
    assert not any(c.startswith("digest subscribers export") and "people.csv" in c for c in commands)


def test_the_readme_tour_runs_as_written_in_an_empty_folder_offline(
    installed_digest: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    env = user_environment(installed_digest, tmp_path)
    env["BROWSER"] = "true"  # `--open` hands the file to a browser: here, to true(1)
    env["TMPDIR"] = str(tmp_path)  # and the file it opens stays in tmp_path
    prefix = offline_prefix()
    cwd = folder
    outputs: dict[str, str] = {}
    for line in tour_commands():
        if line.startswith(LONG_RUNNING):
            continue
        for part in line.split(" && "):
            args = shlex.split(part, comments=True)
            if args[0] == "cd":
                cwd = cwd / args[1]
                continue
            result = subprocess.run(
                [*prefix, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            output = result.stdout + result.stderr
            assert result.returncode == 0, f"{line}\n{output}"
            assert "Traceback" not in output, f"{line}\n{output}"
            outputs[line] = output
    ws = folder / "mynews"
    assert sorted(p.name for p in folder.iterdir()) == ["mynews"]  # the tour stays in its workspace
    for name in EXAMPLE_FILES:
        assert (ws / name).read_bytes() == (REPO / "digest" / "data" / "examples" / name).read_bytes()
    added = next(out for cmd, out in outputs.items() if cmd.startswith("digest feeds add feed.xml"))
    assert "Added feed 1" in added
    ingested = next(out for cmd, out in outputs.items() if cmd.startswith("digest ingest  "))
    assert "3 new" in ingested and "warning" not in ingested
    empty = next(out for cmd, out in outputs.items() if cmd.startswith("digest issues build daily  "))
    assert "no issue built" in empty and "try `digest issues build daily --date 2026-01-25`" in empty
    assert "Built issue daily/1" in outputs[next(c for c in outputs if "build daily --date" in c)]
    # both issues went into the maildir: the daily and the weekly
    subjects = [m.read_text(encoding="utf-8") for m in (ws / "outbox" / "new").iterdir()]
    assert any("Daily Briefing" in m for m in subjects) and any("Weekly Review" in m for m in subjects)
    assert b"ada@example.org" in (ws / "issue.eml").read_bytes()
    assert (ws / "subscribers-backup.csv").is_file()
    bounced = next(out for cmd, out in outputs.items() if cmd.startswith("digest bounces process"))
    assert "unverified" in bounced
    with sqlite3.connect(ws / "digest.db") as db:  # the sample bounce changed nobody
        (status,) = db.execute("SELECT status FROM subscribers WHERE email = 'linus@example.org'").fetchone()
    assert status == "active"
    assert sorted(p.name for p in ws.iterdir() if p.suffix == ".lock") == []


@pytest.mark.skipif(not offline_prefix(), reason="no network namespace on this machine")
def test_the_offline_namespace_has_no_network(installed_digest: Path, tmp_path: Path) -> None:
    # What "offline" means above: not even this machine's loopback answers in there.
    code = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=2)"
    python = str(installed_digest / "python")
    command = [*offline_prefix(), python, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "Network is unreachable" in result.stderr
