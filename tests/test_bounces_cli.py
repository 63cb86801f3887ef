"""`digest bounces` from the command line: the listing names issues like every other
listing, and junk in the bounce mailbox is skipped without a traceback."""

from __future__ import annotations

import subprocess
import sys
from contextlib import closing
from pathlib import Path

from store_switch import store_at


def add_reader_and_issue(run_cli) -> None:
    """reader@example.org, one World article, and issue daily/1 built for 2026-01-23."""
    assert run_cli("subscribers", "add", "reader@example.org").exit_code == 0
    added = run_cli(
        "articles",
        "add",
        "--title",
        "Hello",
        "--url",
        "https://example.org/h",
        "--category",
        "World",
        "--published",
        "2026-01-22T10:00Z",
    )
    assert added.exit_code == 0, added.output
    assert run_cli("issues", "build", "daily", "--date", "2026-01-23").exit_code == 0


def test_bounces_list_names_issues_like_every_other_listing(workspace: Path, run_cli) -> None:
    add_reader_and_issue(run_cli)
    assert run_cli("send", "daily/1").exit_code == 0
    assert run_cli("subscribers", "bounce", "reader@example.org").exit_code == 0
    # A genuine report quotes the message we sent (its signed Message-ID): an address alone
    # names nobody (a forged report must not act on a reader).
    with closing(store_at(workspace / "digest.db")) as db:
        (sent_id,) = db.execute("SELECT message_id FROM deliveries").fetchone()
    box = workspace / "box"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.eml").write_text(
        "From: MAILER-DAEMON@mx.example.org\nTo: digest@example.org\nSubject: failure\n"
        "Message-ID: <d1@mx>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: 5.1.1\n\n"
        f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {sent_id}\nSubject: Daily\n\n--B--\n",
        encoding="utf-8",
    )
    assert run_cli("bounces", "process", f"maildir:{box}").exit_code == 0
    listing = run_cli("bounces", "list", "--since", "100000d").output
    assert "daily/1" in listing, listing


def test_junk_in_the_bounce_mailbox_prints_no_traceback(workspace: Path) -> None:
    box = workspace / "box"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.eml").write_bytes(b"garbage\x00\xff\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "digest",
            "--config",
            str(workspace / "digest.toml"),
            "bounces",
            "process",
            f"maildir:{box}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
