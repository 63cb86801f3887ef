"""The send engine under a hostile relay and an impatient operator (issue #10), against real
aiosmtpd servers: envelope senders per row, skipped rows, message-level refusals, exits."""

from __future__ import annotations

from pathlib import Path

import pytest
from delivery_fixtures import AFTER, Setup, make_setup
from smtp_server import Handler, SMTPServer

import digest.verp
from digest.deliver import deliver_issue


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "ws", subscribers=12)


def send(setup: Setup, server, **kwargs):
    return deliver_issue(
        setup.db, setup.config, setup.issue["id"], transport_url=server.url, now=AFTER, **kwargs
    )


@pytest.mark.parametrize("pipelining", [True, False])
def test_envelope_sender_comes_from_return_path_per_row(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, pipelining: bool
) -> None:
    # A stand-in for #13's VERP addresses: the row id in the local part, so a wrong row shows.
    monkeypatch.setattr(
        digest.verp.ReturnPath, "for_delivery", lambda self, delivery_id: f"bounces+{delivery_id}@example.org"
    )
    with SMTPServer(Handler(pipelining=pipelining)) as server:
        report = send(setup, server, concurrency=2)
    assert report.sent == 12
    rows = setup.rows()
    assert len(server.handler.received) == 12
    for got in server.handler.received:
        (rcpt,) = got.rcpt_tos
        assert got.mail_from == f"bounces+{rows[rcpt]['id']}@example.org"
