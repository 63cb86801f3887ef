"""Transactional mail leaves with the bounce address as its return path, and a hard bounce of a
confirmation marks the pending reader bounced (aiosmtpd on loopback, a DSN in a real maildir)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bounce_support import dsn, fill_maildir, make_bounce_workspace
from smtp_server import Handler, SMTPServer

from digest.store.database import iso


def test_a_bounced_confirmation_marks_the_pending_reader_bounced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    with SMTPServer(Handler()) as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        added = ws.invoke("subscribers", "add", "typo@example.net", "--pending")
        assert added.exit_code == 0, added.output
        confirmed = ws.invoke("subscribers", "add", "kept@example.net", "--pending")
        assert confirmed.exit_code == 0, confirmed.output
        welcomed = ws.invoke("subscribers", "confirm", "kept@example.net")
        assert welcomed.exit_code == 0, welcomed.output
    received = server.handler.received
    assert [(r.rcpt_tos, r.mail_from) for r in received] == [
        (["typo@example.net"], "bounces@news.example.org"),
        (["kept@example.net"], "bounces@news.example.org"),
        (["kept@example.net"], "bounces@news.example.org"),
    ]
    assert all(str(r.message["From"]) == "Bounce Test <digest@news.example.org>" for r in received)
    assert ws.status("typo@example.net") == "pending"

    confirmation_id = str(received[0].message["Message-ID"])
    fill_maildir(tmp_path / "bounces", [dsn("typo@example.net", original_id=confirmation_id)])
    processed = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert processed.exit_code == 0, processed.output
    assert "1 hard" in processed.output and "marked bounced: 1" in processed.output
    assert ws.status("typo@example.net") == "bounced"
    assert ws.status("kept@example.net") == "active"
    db = ws.db()
    events = db.execute(
        "SELECT e.kind, e.source FROM events e JOIN subscribers s ON s.id = e.subscriber_id"
        " WHERE s.email = 'typo@example.net' ORDER BY e.id"
    ).fetchall()
    assert ("hard_bounce", "bounce") in events and ("bounce", "bounce") in events

    # No longer pending: a run after pending_days neither removes nor re-mails it.
    with SMTPServer(Handler()) as later:
        monkeypatch.setenv("DIGEST_TRANSPORT", later.url)
        run = ws.invoke("run", "--at", iso(datetime.now(UTC) + timedelta(days=40)))
    assert run.exit_code == 0, run.output
    assert all(r.rcpt_tos != ["typo@example.net"] for r in later.handler.received)
    assert ws.status("typo@example.net") == "bounced"


def test_without_a_bounce_address_transactional_mail_uses_the_from_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    text = ws.config_path.read_text().replace('bounce_address = "bounces@news.example.org"\n', "")
    ws.config_path.write_text(text)
    with SMTPServer(Handler()) as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        added = ws.invoke("subscribers", "add", "plain@example.net", "--pending")
        assert added.exit_code == 0, added.output
    assert [r.mail_from for r in server.handler.received] == ["digest@news.example.org"]
