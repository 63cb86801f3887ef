"""Transactional mail from the CLI and `digest run`: the outbox sends, retries, and never sends twice."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smtp_server import Handler, SMTPServer, free_port
from store_switch import store_at
from web_process import messages_to

from digest.config import load_config
from digest.delivery.ledger import forget_reader
from digest.mail.outbox import send_outbox
from digest.signup import remove_stale_pending
from digest.store.database import iso
from subscribers.store import add_subscriber
from subscribers.suppressions import is_suppressed


def _db(workspace: Path):
    return store_at(workspace / "digest.db", migrate=False)


def test_add_pending_mails_the_confirmation(run_cli, workspace: Path) -> None:
    result = run_cli("subscribers", "add", "dora@example.org", "--name", "Dora", "--pending")
    assert result.exit_code == 0, result.output
    assert "Confirmation emails: 1 sent." in result.output
    assert "/confirm/" not in result.output  # the link went by mail, not to the operator's terminal
    [mail] = messages_to(workspace / "outbox", "dora@example.org")
    assert str(mail["Subject"]) == "Confirm your subscription to The Example Digest"
    assert str(mail["To"]) == "Dora <dora@example.org>"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    link = re.search(r"http://localhost:8080/confirm/\S+", text).group(0)
    assert link in html
    # `subscribers show` prints a pending subscriber's confirmation link.
    shown = run_cli("subscribers", "show", "dora@example.org")
    assert "confirm_url:" in shown.output and "/confirm/" in shown.output


def test_add_pending_no_email_only_prints_the_link(run_cli, workspace: Path) -> None:
    result = run_cli("subscribers", "add", "eve@example.org", "--pending", "--no-email")
    assert result.exit_code == 0, result.output
    assert "Confirmation link to send them: http://localhost:8080/confirm/" in result.output
    assert messages_to(workspace / "outbox", "eve@example.org") == []


def test_import_sends_confirmations_only_when_asked(run_cli, workspace: Path, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text("email,status\nquiet@example.org,pending\n")
    assert run_cli("subscribers", "import", str(first)).exit_code == 0
    assert messages_to(workspace / "outbox", "quiet@example.org") == []
    second = tmp_path / "b.csv"
    second.write_text("email,status\nloud@example.org,pending\nactive@example.org,active\n")
    result = run_cli("subscribers", "import", str(second), "--send-confirmations")
    assert result.exit_code == 0, result.output
    assert "Confirmation emails: 1 sent." in result.output
    assert len(messages_to(workspace / "outbox", "loud@example.org")) == 1
    assert messages_to(workspace / "outbox", "active@example.org") == []
    assert messages_to(workspace / "outbox", "quiet@example.org") == []


def test_a_refused_confirmation_waits_in_the_outbox_and_digest_run_sends_it_once(
    run_cli, workspace: Path, monkeypatch
) -> None:
    dead = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("DIGEST_TRANSPORT", dead)
    result = run_cli("subscribers", "add", "fay@example.org", "--pending")
    assert result.exit_code == 0, result.output
    assert "`digest run` retries them" in result.output
    db = _db(workspace)
    assert db.execute("SELECT status, attempts FROM outbox").fetchall() == [("queued", 1)]

    with SMTPServer(Handler()) as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        first = run_cli("run", "--at", iso(datetime.now(UTC)))
        second = run_cli("run", "--at", iso(datetime.now(UTC)))
    assert first.exit_code == 0, first.output
    assert "outbox: 1 sent" in first.output
    assert "outbox" not in second.output
    assert server.handler.count_for("fay@example.org") == 1
    assert db.execute("SELECT status FROM outbox").fetchall() == [("sent",)]


def test_a_4xx_is_retried_and_a_5xx_is_not(workspace: Path) -> None:
    from digest.mail.outbox import queue_message

    config = load_config(workspace / "digest.toml")
    db = _db(workspace)
    soft = add_subscriber(db, "soft@example.org", status="pending")
    hard = add_subscriber(db, "hard@example.org", status="pending")
    context = {"confirm_url": "http://localhost:8080/confirm/x"}
    queue_message(db, config, "confirm", soft, context)
    queue_message(db, config, "confirm", hard, context)
    refusals = {"soft@example.org": "451 4.3.0 try later", "hard@example.org": "550 5.1.1 no such user"}
    handler = Handler(rcpt_policy=lambda address, attempt: refusals.get(address))
    with SMTPServer(handler) as server:
        config.delivery.transport = server.url
        report = send_outbox(db, config)
        assert (report.sent, report.retry, report.failed) == (0, 1, 1)
        refusals.clear()
        again = send_outbox(db, config)
    assert (again.sent, again.retry, again.failed) == (1, 0, 0)
    rows = dict(db.execute("SELECT email, status FROM outbox").fetchall())
    assert rows == {"soft@example.org": "sent", "hard@example.org": "failed"}
    assert server.handler.count_for("hard@example.org") == 0


def test_pending_subscribers_are_removed_after_pending_days(workspace: Path) -> None:
    config = load_config(workspace / "digest.toml")
    db = _db(workspace)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    add_subscriber(db, "stale@example.org", status="pending", now=now - timedelta(days=31))
    add_subscriber(db, "fresh@example.org", status="pending", now=now - timedelta(days=29))
    add_subscriber(db, "old-but-active@example.org", now=now - timedelta(days=90))
    assert remove_stale_pending(db, config, forget_deliveries=forget_reader, now=now) == 1
    left = {r[0] for r in db.execute("SELECT email FROM subscribers")}
    assert left == {"fresh@example.org", "old-but-active@example.org"}
    # Never confirmed, so not suppressed: they may sign up again later.
    assert not is_suppressed(db, "stale@example.org")
    assert db.execute("SELECT count(*) FROM events WHERE kind = 'remove'").fetchone()[0] == 1


def test_erasing_a_subscriber_erases_their_transactional_mail(run_cli, workspace: Path) -> None:
    assert run_cli("subscribers", "add", "gone@example.org", "--pending").exit_code == 0
    db = _db(workspace)
    assert db.execute("SELECT count(*) FROM outbox WHERE email = 'gone@example.org'").fetchone()[0] == 1
    assert run_cli("subscribers", "remove", "gone@example.org", "--yes").exit_code == 0
    assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_cli_confirm_sends_the_welcome_like_the_web_link(run_cli, workspace: Path) -> None:
    added = run_cli("subscribers", "add", "gus@example.org", "--name", "Gus", "--pending", "--no-email")
    assert added.exit_code == 0, added.output
    result = run_cli("subscribers", "confirm", "gus@example.org")
    assert result.exit_code == 0, result.output
    assert "Confirmed gus@example.org (active)." in result.output
    assert "Welcome email: 1 sent." in result.output
    [mail] = messages_to(workspace / "outbox", "gus@example.org")
    assert str(mail["Subject"]) == "Welcome to The Example Digest"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "http://localhost:8080/archive" in text and "/unsubscribe/" in text
    # Confirming again changes nothing and sends no second welcome.
    again = run_cli("subscribers", "confirm", "gus@example.org")
    assert again.exit_code == 0 and "already confirmed" in again.output
    assert len(messages_to(workspace / "outbox", "gus@example.org")) == 1


def test_cli_confirm_no_email_sends_nothing(run_cli, workspace: Path) -> None:
    assert run_cli("subscribers", "add", "hal@example.org", "--pending", "--no-email").exit_code == 0
    result = run_cli("subscribers", "confirm", "hal@example.org", "--no-email")
    assert result.exit_code == 0, result.output
    assert "Welcome" not in result.output
    assert messages_to(workspace / "outbox", "hal@example.org") == []
    assert _db(workspace).execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_a_refused_welcome_waits_in_the_outbox_and_digest_run_sends_it(
    run_cli, workspace: Path, monkeypatch
) -> None:
    assert run_cli("subscribers", "add", "ida@example.org", "--pending", "--no-email").exit_code == 0
    monkeypatch.setenv("DIGEST_TRANSPORT", f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    result = run_cli("subscribers", "confirm", "ida@example.org")
    assert result.exit_code == 0, result.output  # the confirmation stands
    assert "Confirmed ida@example.org (active)." in result.output
    assert "`digest run` retries them" in result.output
    db = _db(workspace)
    assert db.execute("SELECT kind, status FROM outbox").fetchall() == [("welcome", "queued")]
    with SMTPServer(Handler()) as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        run = run_cli("run", "--at", iso(datetime.now(UTC)))
    assert run.exit_code == 0, run.output
    assert "outbox: 1 sent" in run.output
    [received] = [r for r in server.handler.received if "ida@example.org" in r.rcpt_tos]
    assert str(received.message["Subject"]) == "Welcome to The Example Digest"
    assert db.execute("SELECT status FROM outbox").fetchall() == [("sent",)]


def test_a_removed_address_that_signs_up_and_never_confirms_stays_suppressed(workspace: Path) -> None:
    from digest.signup import request_signup
    from subscribers.store import remove_subscriber
    from subscribers.tokens import load_secret

    config = load_config(workspace / "digest.toml")
    db = _db(workspace)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    add_subscriber(db, "gone@example.org", now=now - timedelta(days=90))
    remove_subscriber(db, "gone@example.org", forget_deliveries=forget_reader, now=now - timedelta(days=60))
    request_signup(db, config, load_secret(config), email="gone@example.org", now=now - timedelta(days=31))
    assert is_suppressed(db, "gone@example.org")  # not lifted by the request
    assert remove_stale_pending(db, config, forget_deliveries=forget_reader, now=now) == 1
    assert is_suppressed(db, "gone@example.org")
    assert db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_cli_confirm_lifts_the_suppression_of_a_pending_removed_address(run_cli, workspace: Path) -> None:
    from subscribers.store import remove_subscriber

    db = _db(workspace)
    add_subscriber(db, "back@example.org")
    remove_subscriber(db, "back@example.org", forget_deliveries=forget_reader)
    added = run_cli("subscribers", "add", "back@example.org", "--pending", "--resubscribe", "--no-email")
    assert added.exit_code == 0, added.output
    assert is_suppressed(db, "back@example.org")
    assert run_cli("subscribers", "confirm", "back@example.org", "--no-email").exit_code == 0
    assert not is_suppressed(db, "back@example.org")


def test_cli_confirm_with_a_broken_welcome_template_keeps_the_confirmation(run_cli, workspace: Path) -> None:
    templates = workspace / "my-templates" / "email"
    templates.mkdir(parents=True)
    (templates / "welcome.txt.j2").write_text("{% set subject = 'Hi' %}{{ nope(", encoding="utf-8")
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text().replace('# templates = "my-templates"', 'templates = "my-templates"'),
        encoding="utf-8",
    )
    assert run_cli("subscribers", "add", "jo@example.org", "--pending", "--no-email").exit_code == 0
    result = run_cli("subscribers", "confirm", "jo@example.org")
    assert result.exit_code == 1
    assert "Confirmed jo@example.org (active)." in result.output
    [error] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "jo@example.org is confirmed, but the welcome email was not sent" in error
    assert "email/welcome template" in error
    assert "Traceback" not in result.output
    assert _db(workspace).execute("SELECT status FROM subscribers").fetchall() == [("active",)]


def test_the_dkim_key_is_loaded_once_and_again_when_the_file_changes(tmp_path: Path, monkeypatch) -> None:
    import os

    from mail_checks import dkim_key

    import digest.mail.outbox as outbox
    from digest.config import Config

    key, _ = dkim_key(tmp_path)
    config = Config()
    config.publication.from_address = "Harbour <news@harbour.example>"
    config.dkim.domain, config.dkim.selector, config.dkim.key_file = "harbour.example", "s2026", str(key)
    import digest.mail.signing

    loads: list[str] = []
    load = digest.mail.signing._load_signer

    def counting(c, path):
        loads.append(c.dkim.key_file)
        return load(c, path)

    monkeypatch.setattr(digest.mail.signing, "_load_signer", counting)
    monkeypatch.setattr(digest.mail.signing, "_LOADED", {})
    recipient = {"email": "dora@example.org"}
    context = {"confirm_url": "https://harbour.example/confirm/x"}
    first = outbox.build_transactional(
        config, "confirm", recipient, context, message_id="<a@harbour.example>"
    )
    second = outbox.build_transactional(
        config, "confirm", recipient, context, message_id="<b@harbour.example>"
    )
    assert first.startswith(b"DKIM-Signature:") and second.startswith(b"DKIM-Signature:")
    assert len(loads) == 1
    stat = key.stat()
    os.utime(key, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new key in its place
    outbox.build_transactional(config, "confirm", recipient, context, message_id="<c@harbour.example>")
    assert len(loads) == 2
    config.dkim.selector = "s2027"
    signed = outbox.build_transactional(
        config, "confirm", recipient, context, message_id="<d@harbour.example>"
    )
    assert len(loads) == 3 and b"s=s2027" in signed


def test_the_transactional_html_is_escaped_and_the_text_is_not(workspace: Path) -> None:
    from digest.mail.outbox import render_transactional

    config = load_config(workspace / "digest.toml")
    context = {"name": "Al <b>&</b>", "email": "al@example.org", "confirm_url": "https://x.example/c?a=1&b=2"}
    _subject, text, html = render_transactional(config, "confirm", context)
    assert "https://x.example/c?a=1&amp;b=2" in html and "a=1&b=2" not in html
    assert "https://x.example/c?a=1&b=2" in text


def test_web_signup_with_the_known_categories_passed_in_is_the_same(workspace: Path) -> None:
    from digest.ingest.categories import known_categories
    from digest.signup import request_signup
    from subscribers.store import find_subscriber, remove_subscriber
    from subscribers.tokens import load_secret

    config = load_config(workspace / "digest.toml")
    db = _db(workspace)
    secret = load_secret(config)
    known = known_categories(db, config)
    assert known
    picked = [known[0].upper()]
    request_signup(db, config, secret, email="a@example.org", categories=picked, send=False)
    request_signup(
        db, config, secret, email="b@example.org", categories=picked, send=False, known_categories=known
    )
    a, b = find_subscriber(db, "a@example.org"), find_subscriber(db, "b@example.org")
    assert a["categories"] == b["categories"] and a["status"] == b["status"] == "pending"
    # A removed address may ask again: pending, still suppressed until it confirms.
    add_subscriber(db, "c@example.org")
    remove_subscriber(db, "c@example.org", forget_deliveries=forget_reader)
    request_signup(db, config, secret, email="c@example.org", send=False, known_categories=known)
    assert find_subscriber(db, "c@example.org")["status"] == "pending"
    assert is_suppressed(db, "c@example.org")


LONG_NAMES = {
    "greek": "Αλέξανδρος Παπαδόπουλος-Καραγιαννόπουλος του Κωνσταντίνου",
    "cjk": "山田太郎さん東京都千代田区丸の内一丁目読者山田花子様と鈴木一郎様",
    "sixty": "Maximiliane Éléonore von Hohenzollern-Sigmaringen-Württemberg"[:60],
}


def to_header(data: bytes) -> tuple[str, str]:
    """(display name, address) of a message's To:, the encoded words decoded as RFC 2047 says
    (the modern parser puts spaces between adjacent encoded words inside a name)."""
    from email import message_from_bytes
    from email import policy as email_policy
    from email.header import decode_header, make_header
    from email.utils import parseaddr

    raw = message_from_bytes(data, policy=email_policy.compat32)["To"]
    return parseaddr(str(make_header(decode_header(raw))))


def test_long_non_ascii_names_get_every_transactional_mail(run_cli, workspace: Path, monkeypatch) -> None:
    from digest.signup import request_signup
    from subscribers.tokens import load_secret

    assert len(LONG_NAMES["sixty"]) == 60
    with SMTPServer(Handler()) as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        for key, name in LONG_NAMES.items():
            address = f"{key}@example.org"
            added = run_cli("subscribers", "add", address, "--name", name, "--pending")
            assert added.exit_code == 0 and added.exception is None, added.output
            assert "Confirmation emails: 1 sent." in added.output
            confirmed = run_cli("subscribers", "confirm", address)
            assert confirmed.exit_code == 0 and confirmed.exception is None, confirmed.output
            assert "Welcome email: 1 sent." in confirmed.output
        config = load_config(workspace / "digest.toml")
        db = _db(workspace)
        later = datetime.now(UTC) + timedelta(minutes=11)  # past the per-address limit's window
        for key in LONG_NAMES:  # active now: the form mails "already subscribed"
            request_signup(db, config, load_secret(config), email=f"{key}@example.org", now=later)
    for key, name in LONG_NAMES.items():
        received = [r for r in server.handler.received if f"{key}@example.org" in r.rcpt_tos]
        subjects = [str(r.message["Subject"]).split(" ")[0] for r in received]
        assert subjects == ["Confirm", "Welcome", "You"], subjects
        for r in received:
            assert to_header(r.data) == (name, f"{key}@example.org")
            assert max(len(line) for line in r.data.split(b"\r\n")) <= 998


def test_an_issue_reaches_readers_with_long_non_ascii_names(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from delivery_fixtures import make_setup

    from digest.cli import cli

    setup = make_setup(tmp_path / "ws", subscribers=1)
    for key, name in LONG_NAMES.items():
        add_subscriber(setup.db, f"{key}@example.net", name=name)
    with SMTPServer(Handler()) as server:
        result = CliRunner().invoke(
            cli, ["--config", str(setup.config_file), "send", "1", "--transport", server.url]
        )
    assert result.exit_code == 0 and result.exception is None, result.output
    for key, name in LONG_NAMES.items():
        [received] = [r for r in server.handler.received if f"{key}@example.net" in r.rcpt_tos]
        assert to_header(received.data) == (name, f"{key}@example.net")


def test_sent_outbox_rows_are_deleted_after_the_keep_time(run_cli, workspace: Path) -> None:
    from digest.mail.outbox import OUTBOX_KEEP

    db = _db(workspace)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    old = iso(now - OUTBOX_KEEP - timedelta(hours=1))
    recent = iso(now - OUTBOX_KEEP + timedelta(hours=1))
    rows = [
        ("old-sent", "sent", old, old),
        ("old-failed", "failed", old, None),
        ("old-queued", "queued", old, None),
        ("recent-sent", "sent", recent, recent),
    ]
    for email, status, at, sent_at in rows:
        db.execute(
            "INSERT INTO outbox (kind, email, message, message_id, status, created_at, updated_at, sent_at)"
            " VALUES ('welcome', ?, x'00', ?, ?, ?, ?, ?)",
            [f"{email}@example.org", f"<{email}@x>", status, at, at, sent_at],
        )
    result = run_cli("run", "--at", iso(now))
    assert result.exit_code == 0, result.output
    left = {r[0] for r in db.execute("SELECT email FROM outbox")}
    # The queued one stays (and this run tried it: the maildir took it).
    assert left == {"old-queued@example.org", "recent-sent@example.org"}
