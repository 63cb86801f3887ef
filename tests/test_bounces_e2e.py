"""End to end: an issue sent through `digest send` to a real SMTP server, a DSN for one recipient
dropped into the bounce maildir, `digest run` the next day: that recipient is not mailed again.
And VERP: the MAIL FROM the server received names the delivery row."""

from __future__ import annotations

import email.message
import mailbox
import smtplib
import tempfile
import urllib.parse
from datetime import timedelta
from pathlib import Path

import pytest
from bounce_support import dsn, nesting_bomb
from click.testing import CliRunner
from postfix_server import PostfixServer
from smtp_server import SMTPServer, free_port
from test_schedule_support import add_readers, article_times, grow_feed, make_workspace, utc

from digest.cli import cli
from digest.mail.verp import VerpSigner, verp_token_of

SECRET = b"test-secret-not-for-production"


def _workspace(tmp_path: Path, server: SMTPServer, extra_delivery: str = ""):
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"keeps@example.org": None, "leaves@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 4, 5), timedelta(hours=3)), utc(2026, 11, 5))
    text = ws.config_path.read_text(encoding="utf-8")
    text = text.replace('"maildir:outbox"', f'"{server.url}"\nretries = 0\ntimeout = 5{extra_delivery}')
    text += '\n[bounces]\nsource = "maildir:bounces"\n'
    ws.config_path.write_text(text, encoding="utf-8")
    mailbox.Maildir(str(ws.root / "bounces"), create=True)
    return ws


def _invoke(ws, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(ws.config_path), *args])
    assert result.exit_code == 0, result.output
    return result


def _send_first_issue(ws) -> None:
    _invoke(ws, "ingest")
    _invoke(ws, "issues", "build", "daily", "--date", "2026-11-03")
    _invoke(ws, "send", "latest")


def test_a_bounced_recipient_is_not_mailed_by_the_next_days_run(tmp_path: Path) -> None:
    with SMTPServer() as server:
        ws = _workspace(tmp_path, server)
        _send_first_issue(ws)
        assert server.handler.per_recipient() == {"keeps@example.org": 1, "leaves@example.org": 1}
        sent = next(r for r in server.handler.received if r.rcpt_tos == ["leaves@example.org"])
        # The relay's report a few hours later, quoting the original's headers.
        report = dsn("leaves@example.org", to=sent.mail_from, original_id=sent.message["Message-ID"])
        mailbox.Maildir(str(ws.root / "bounces"), create=False).add(report)
        run = _invoke(ws, "run", "--at", "2026-11-04T06:05Z")
        assert "bounces maildir:bounces: 1 new report: 1 hard" in run.output
        assert "daily/2: sent 1" in run.output
        assert server.handler.per_recipient() == {"keeps@example.org": 2, "leaves@example.org": 1}
    db = ws.db()
    assert db.execute("SELECT status FROM subscribers WHERE email = 'leaves@example.org'").fetchone()[0] == (
        "bounced"
    )
    row = db.execute(
        "SELECT b.kind, b.status_code, i.number, d.last_error FROM bounces b"
        " JOIN issues i ON i.id = b.issue_id JOIN deliveries d ON d.id = b.delivery_id"
    ).fetchone()
    assert row[:3] == ("hard", "5.1.1", 1) and row[3].startswith("bounced later (hard)")
    # The next run finds nothing new in the mailbox and says nothing about it.
    quiet = _invoke(ws, "run", "--at", "2026-11-04T06:20Z")
    assert "bounces" not in quiet.output


def test_an_unreadable_bounce_mailbox_is_reported_and_the_run_still_sends(tmp_path: Path) -> None:
    with SMTPServer() as server:
        ws = _workspace(tmp_path, server)
        (ws.root / "bounces" / "cur").rmdir()
        _invoke(ws, "ingest")
        result = CliRunner().invoke(
            cli, ["--config", str(ws.config_path), "run", "--at", "2026-11-03T06:05Z"]
        )
        assert result.exit_code == 1
        assert "Error: bounces: maildir:bounces:" in result.output and "is not a maildir" in result.output
        assert "daily/1: sent 2" in result.output
        assert len(server.handler.received) == 2


def test_a_message_that_cannot_be_moved_is_reported_and_the_run_still_sends(tmp_path: Path) -> None:
    with SMTPServer() as server:
        ws = _workspace(tmp_path, server)
        box = mailbox.Maildir(str(ws.root / "bounces"), create=False)
        box.add(dsn("nobody@example.org", mid="<stuck@relay.example>"))
        (ws.root / "bounces" / ".processed").write_text("a file where the folder should be")
        _invoke(ws, "ingest")
        result = CliRunner().invoke(
            cli, ["--config", str(ws.config_path), "run", "--at", "2026-11-03T06:05Z"]
        )
        assert result.exit_code == 1, result.output
        assert "Error: bounces: maildir:bounces: cannot move new/" in result.output
        assert "it is recorded and will only be moved next time" in result.output
        assert "daily/1: sent 2" in result.output and len(server.handler.received) == 2


def test_verp_return_path_names_the_delivery_row(tmp_path: Path) -> None:
    with SMTPServer() as server:
        ws = _workspace(tmp_path, server, '\nbounce_address = "bounces@example.org"')
        _send_first_issue(ws)
        db = ws.db()
        rows = dict(db.execute("SELECT email, id FROM deliveries"))
        signer = VerpSigner(SECRET)
        for received in server.handler.received:
            (recipient,) = received.rcpt_tos
            local, _, domain = received.mail_from.partition("@")
            assert domain == "example.org" and local.startswith("bounces+"), received.mail_from
            assert signer.verify(verp_token_of(received.mail_from)) == rows[recipient]
        # A bounce sent to that address needs nothing else to find its subscriber.
        sent = next(r for r in server.handler.received if r.rcpt_tos == ["leaves@example.org"])
        report = dsn("someone-else@relay.example", to=sent.mail_from, status="5.1.1")
        mailbox.Maildir(str(ws.root / "bounces"), create=False).add(report)
        _invoke(ws, "bounces", "process")
        status = dict(db.execute("SELECT email, status FROM subscribers"))
        assert status == {"keeps@example.org": "active", "leaves@example.org": "bounced"}


def test_a_mailed_unsubscribe_names_its_reader_by_token_not_by_from(tmp_path: Path) -> None:
    """The List-Unsubscribe mailto carries the reader's signed token; a request sent from another
    address (a forwarding alias) still unsubscribes the right reader, and only them."""
    with SMTPServer() as server:
        ws = _workspace(tmp_path, server, '\nunsubscribe_mailto = "unsubscribe@news.example.org"')
        _send_first_issue(ws)
        sent = next(r for r in server.handler.received if r.rcpt_tos == ["leaves@example.org"])
    header = str(sent.message["List-Unsubscribe"])
    mailto = header[header.index("<mailto:") + 1 : header.rindex(">")]
    address, _, query = mailto.removeprefix("mailto:").partition("?subject=")
    assert address == "unsubscribe@news.example.org" and query.startswith("unsubscribe%20")
    request = email.message.EmailMessage()
    request["From"] = "alias-of-someone@elsewhere.example"
    request["To"] = address
    request["Subject"] = urllib.parse.unquote(query)
    request["Message-ID"] = "<mailed-unsubscribe-1@elsewhere.example>"
    request.set_content("Please take me off the list.")
    mailbox.Maildir(str(ws.root / "bounces"), create=False).add(request)
    _invoke(ws, "bounces", "process", f"maildir:{ws.root / 'bounces'}")
    db = ws.db()
    statuses = dict(db.execute("SELECT email, status FROM subscribers").fetchall())
    assert statuses == {"keeps@example.org": "active", "leaves@example.org": "unsubscribed"}


def test_a_nesting_bomb_delivered_by_postfix_is_rejected_and_the_run_sends(tmp_path: Path) -> None:
    """A message nested 1000 deep, accepted and delivered into the bounce maildir by a real
    (private, default-configured) Postfix, is moved to `rejected`; the run builds and sends."""
    why = PostfixServer.available()
    if why is not None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))  # short: Postfix's socket paths
    with PostfixServer(root, free_port(), "news.example.org") as postfix:
        with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as smtp:
            smtp.sendmail("someone@attacker.example", ["bounces@news.example.org"], nesting_bomb(1000))
        (delivered,) = postfix.wait_for(1)
        assert b"mx.test.invalid" in delivered  # it really went through Postfix
        ws = make_workspace(tmp_path / "ws")
        add_readers(ws, {"a@example.org": None, "b@example.org": None})
        grow_feed(
            ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4)
        )
        with ws.config_path.open("a", encoding="utf-8") as file:
            file.write(f'\n[bounces]\nsource = "maildir:{postfix.maildir}"\n')
        run = CliRunner().invoke(cli, ["--config", str(ws.config_path), "run", "--at", "2026-11-03T06:05Z"])
        assert run.exit_code == 0, run.output
        assert "built daily/1" in run.output and "daily/1: sent 2" in run.output
        assert "0 new reports; 1 rejected: nested 1000 deep (limit 20)" in run.output
        assert postfix.messages() == []
        rejected = mailbox.Maildir(str(postfix.maildir), create=False).get_folder("rejected")
        assert [rejected.get_bytes(k) for k in rejected.iterkeys()] == [delivered]
        # The next run finds the mailbox empty and says nothing about it.
        quiet = CliRunner().invoke(cli, ["--config", str(ws.config_path), "run", "--at", "2026-11-03T06:20Z"])
        assert quiet.exit_code == 0 and "bounces" not in quiet.output, quiet.output
