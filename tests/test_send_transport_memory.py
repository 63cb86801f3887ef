"""Which transport a send and its resume go through (an issue remembers a --transport, never
its password), and test copies in a dry run: planned, never sent."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from store_switch import store_at

from digest.cli import cli
from digest.store.database import open_store


def _run(workspace: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(workspace / "digest.toml"), *args])


def _set(workspace: Path, old: str, new: str) -> None:
    toml = workspace / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


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
    db = store_at(workspace / "digest.db")
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
    db = store_at(workspace / "digest.db")
    assert db.execute("SELECT transport FROM issues WHERE id = 1").fetchone()[0] is None
    db.execute("UPDATE issues SET transport = ? WHERE id = 1", [f"maildir:{workspace / 'outbox'}"])
    again = _run(workspace, "send", "daily/1")  # a database written before this fix
    assert again.exit_code == 0 and "goes on through" not in again.output, again.output


def test_deliver_issue_never_sends_a_test_copy_in_a_dry_run(workspace: Path) -> None:
    """The rule lives in the send engine, not only in the CLI that calls it."""
    from digest.config import load_config
    from digest.delivery import deliver_issue

    _issue_with_a_reader(workspace)
    config = load_config(workspace / "digest.toml")
    db = open_store(config.store)
    report = deliver_issue(db, config, 1, to=["me@example.org"], dry_run=True)
    assert report.dry_run and [row["email"] for row in report.plan] == ["me@example.org"]
    assert not (workspace / "outbox" / "new").exists() or not any((workspace / "outbox" / "new").iterdir())
