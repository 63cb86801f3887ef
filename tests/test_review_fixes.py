"""Defects a hostile review of the round found at the seams between features; each test
failed before its fix."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from digest.store import open_store


def _run(workspace: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(workspace / "digest.toml"), *args])


def _set(workspace: Path, old: str, new: str) -> None:
    toml = workspace / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_doctor_with_a_bounce_address_does_not_crash(workspace: Path) -> None:
    _set(
        workspace,
        '# unsubscribe_mailto = "unsubscribe@example.org"',
        'bounce_address = "bounces@example.org"',
    )
    result = _run(workspace, "doctor", "--timeout", "1")
    assert "spf" in result.output, result.output
    assert not isinstance(result.exception, ValueError), result.exception


def _issue_with_a_reader(workspace: Path) -> None:
    assert _run(workspace, "subscribers", "add", "reader@example.org").exit_code == 0
    added = _run(
        workspace,
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
    assert _run(workspace, "issues", "build", "daily", "--date", "2026-01-23").exit_code == 0


def test_send_test_copy_dry_run_shows_the_plan(workspace: Path) -> None:
    _issue_with_a_reader(workspace)
    result = _run(workspace, "send", "daily/1", "--to", "me@example.org", "--dry-run")
    assert result.exit_code == 0 and "me@example.org\t[TEST] copy" in result.output, result.output
    assert not (workspace / "outbox" / "new").exists() or not any((workspace / "outbox" / "new").iterdir())


def test_bounces_list_names_issues_like_every_other_listing(workspace: Path) -> None:
    _issue_with_a_reader(workspace)
    assert _run(workspace, "send", "daily/1").exit_code == 0
    assert _run(workspace, "subscribers", "bounce", "reader@example.org").exit_code == 0
    box = workspace / "box"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.eml").write_text(
        "From: MAILER-DAEMON@mx.example.org\nTo: digest@example.org\nSubject: failure\n"
        "Message-ID: <d1@mx>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: 5.1.1\n\n--B--\n",
        encoding="utf-8",
    )
    assert _run(workspace, "bounces", "process", f"maildir:{box}").exit_code == 0
    listing = _run(workspace, "bounces", "list", "--since", "100000d").output
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


def test_issue_aria_label_carries_the_subject_as_text(workspace: Path) -> None:
    added = _run(
        workspace,
        "articles",
        "add",
        "--title",
        "Cafe\u0301 owners \U0001f469\u200d\U0001f4bb win",
        "--url",
        "https://example.org/c",
        "--category",
        "World",
        "--published",
        "2026-01-22T10:00Z",
    )
    assert added.exit_code == 0
    assert _run(workspace, "issues", "build", "daily", "--date", "2026-01-23").exit_code == 0
    out = workspace / "p.html"
    assert _run(workspace, "preview", "daily/1", "-o", str(out)).exit_code == 0
    label = re.search(r'aria-label="([^"]*)"', out.read_text(encoding="utf-8")).group(1)
    assert "\\u{" not in label, label


def test_empty_build_hint_names_a_date_that_builds(workspace: Path) -> None:
    added = _run(
        workspace,
        "articles",
        "add",
        "--title",
        "Old",
        "--url",
        "https://example.org/o",
        "--category",
        "World",
        "--published",
        "1900-01-01T10:00Z",
    )
    assert added.exit_code == 0
    hint = _run(workspace, "issues", "build", "daily").output
    assert "1 article stored" in hint, hint
    suggested = re.search(r"--date (\d{4}-\d\d-\d\d)", hint)
    if suggested:  # a hint may name a date only if that date's issue carries the article
        built = _run(workspace, "issues", "build", "daily", "--date", suggested.group(1)).output
        assert "Built issue" in built, hint


def test_run_does_not_silently_finish_an_smtp_send_through_the_maildir(
    workspace: Path, monkeypatch, fake_clock
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY_TIMEOUT", "2")
    _set(workspace, 'base_url = "http://localhost:8080"', 'base_url = "https://news.example.org"')
    _issue_with_a_reader(workspace)
    stopped = _run(workspace, "send", "daily/1", "--transport", "smtp://127.0.0.1:1")
    assert stopped.exit_code == 1 and "unsent rows stay queued" in stopped.output, stopped.output
    result = _run(workspace, "run", "--at", "2026-01-23T07:30+01:00")
    delivered = (
        list((workspace / "outbox" / "new").glob("*")) if (workspace / "outbox" / "new").exists() else []
    )
    assert not delivered, "the resume went to the local maildir"
    assert result.exit_code == 1 and "smtp://127.0.0.1:1" in result.output, result.output
    # The real back-off ran on the fake clock: 2 s, 4 s, 8 s, then gave up (retries = 3), twice.
    assert fake_clock.waits == [2.0, 4.0, 8.0] * 2, fake_clock.waits
    # The config's own transport still works for an issue whose send used it.
    db = open_store(workspace / "digest.db")
    assert db.execute("SELECT transport FROM issues WHERE id = 1").fetchone()[0] == "smtp://127.0.0.1:1"


def test_a_remembered_transport_keeps_no_password(workspace: Path, monkeypatch) -> None:
    from digest.delivery.send import _without_password

    assert _without_password("smtp://mailer:s3cret@relay.example:587?starttls=true") == (
        "smtp://mailer@relay.example:587?starttls=true"
    )
    assert _without_password("maildir:outbox") == "maildir:outbox"


def test_the_configured_maildir_by_its_absolute_path_is_the_configured_transport(workspace: Path) -> None:
    """`digest demo` sends through maildir:<absolute outbox>, the config says maildir:outbox:
    the same folder, so nothing is remembered and a later send gives no "goes on through"."""
    _issue_with_a_reader(workspace)
    sent = _run(workspace, "send", "daily/1", "--transport", f"maildir:{workspace / 'outbox'}")
    assert sent.exit_code == 0, sent.output
    db = open_store(workspace / "digest.db")
    assert db.execute("SELECT transport FROM issues WHERE id = 1").fetchone()[0] is None
    db.execute("UPDATE issues SET transport = ? WHERE id = 1", [f"maildir:{workspace / 'outbox'}"])
    again = _run(workspace, "send", "daily/1")  # a database written before this fix
    assert again.exit_code == 0 and "goes on through" not in again.output, again.output


def test_an_address_no_relay_can_take_is_refused_when_added(workspace: Path) -> None:
    """A non-ASCII local part needs SMTPUTF8, which the send engine does not speak: refused at
    the door (as the web sign-up does), not failed on every issue for ever."""
    added = _run(workspace, "subscribers", "add", "jürgen@example.org")
    assert added.exit_code == 1 and "before the @-sign" in added.output, added.output
    people = workspace / "people.csv"
    people.write_text("email\njürgen@example.org\nok@example.org\n", encoding="utf-8")
    imported = _run(workspace, "subscribers", "import", str(people))
    assert imported.exit_code == 1 and "line 2" in imported.output, imported.output
    idn = _run(workspace, "subscribers", "add", "jurgen@exämple.org")
    assert idn.exit_code == 0 and "jurgen@xn--exmple-cua.org" in idn.output, idn.output


def test_an_environment_override_is_checked_like_the_file(workspace: Path, monkeypatch) -> None:
    """`DIGEST_*` values meet the same checks as the file's, and numbers have floors."""
    monkeypatch.setenv("DIGEST_SUMMARY_ENGINE", "bogus")
    result = _run(workspace, "issues", "list")
    assert result.exit_code == 1 and "'summary.engine' = 'bogus' must be" in result.output, result.output
    monkeypatch.delenv("DIGEST_SUMMARY_ENGINE")
    for var, value, said in [
        ("DIGEST_DELIVERY_CONCURRENCY", "-3", "'delivery.concurrency' = -3 must be at least 1"),
        ("DIGEST_INGEST_TIMEOUT", "0", "'ingest.timeout' = 0.0 must be more than 0"),
        ("DIGEST_RENDER_MAX_HTML_BYTES", "10", "'render.max_html_bytes' = 10 must be at least 10000"),
    ]:
        monkeypatch.setenv(var, value)
        refused = _run(workspace, "issues", "list")
        assert refused.exit_code == 1 and said in refused.output, refused.output
        monkeypatch.delenv(var)
    _set(workspace, "\nrate = 0\n", "\nrate = -5\n")
    from_file = _run(workspace, "issues", "list")
    assert from_file.exit_code == 1 and "'delivery.rate' = -5" in from_file.output, from_file.output


def test_deliver_issue_never_sends_a_test_copy_in_a_dry_run(workspace: Path) -> None:
    """The rule lives in the send engine, not only in the CLI that calls it."""
    from digest.config import load_config
    from digest.delivery import deliver_issue

    _issue_with_a_reader(workspace)
    config = load_config(workspace / "digest.toml")
    db = open_store(config.db_path)
    report = deliver_issue(db, config, 1, to=["me@example.org"], dry_run=True)
    assert report.dry_run and [row["email"] for row in report.plan] == ["me@example.org"]
    assert not (workspace / "outbox" / "new").exists() or not any((workspace / "outbox" / "new").iterdir())
