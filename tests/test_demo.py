"""`digest demo`: offline quick start that builds and delivers today's issue, safe to repeat."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_schedule_support import message_count, messages, utc

from digest.cli import cli
from digest.demo import DEMO_SUBSCRIBERS, run_demo
from digest.errors import DigestError


def test_digest_demo_delivers_into_a_maildir_and_writes_a_preview(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "demo")])
    assert first.exit_code == 0, first.output
    outbox = tmp_path / "demo" / "outbox"
    assert message_count(outbox) == len(DEMO_SUBSCRIBERS)
    assert (
        (tmp_path / "demo" / "preview.html")
        .read_text(encoding="utf-8")
        .lstrip()
        .lower()
        .startswith("<!doctype")
    )
    assert "delivered    5 messages" in first.output
    assert (
        "preview.html" in first.output
        and "Next, try:" in first.output
        and "digest schedule list" in first.output
    )
    # Readers with a category choice got their variant only.
    carmen = next(m for m in messages(outbox) if m["To"].addresses[0].addr_spec == "carmen@example.org")
    assert carmen["Subject"].startswith("Morning Lantern #1")

    second = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "demo")])
    assert second.exit_code == 0, second.output
    assert "Reused the demo workspace" in second.output and "nobody gets it twice" in second.output
    assert message_count(outbox) == len(DEMO_SUBSCRIBERS)


def test_default_folder_is_digest_demo_in_the_current_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "digest-demo" / "digest.toml").exists()


def test_the_next_day_brings_the_next_issue(tmp_path: Path) -> None:
    # 05:00 in Berlin: today's 07:00 issue is still ahead, the demo builds it anyway.
    early = run_demo(tmp_path / "d", now=utc(2026, 11, 3, 4))
    assert early.issue["number"] == 1 and early.sent == 5 and early.articles == 12
    later = run_demo(tmp_path / "d", now=utc(2026, 11, 4, 13))
    assert later.issue["number"] == 2 and later.issue_created and later.sent == 5
    assert message_count(tmp_path / "d" / "outbox") == 10


def test_demo_refuses_a_real_workspace(tmp_path: Path, workspace: Path) -> None:
    with pytest.raises(DigestError, match="not a demo"):
        run_demo(workspace)
