"""`digest send` through a real Postfix (a private instance on a loopback port) into a maildir:
every reader gets one message, and its DKIM signature still verifies after the hop."""

from __future__ import annotations

import tempfile
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from delivery_fixtures import make_setup
from mail_checks import dkim_key
from postfix_server import PostfixServer
from smtp_server import free_port

from digest.cli import cli


@pytest.fixture
def postfix(tmp_path: Path):
    why = PostfixServer.available()
    if why is not None:
        pytest.skip(why)
    # A short root: Postfix's unix sockets live under the queue folder, and a socket path
    # may not pass 107 bytes (pytest's tmp_path can be that long already).
    root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    with PostfixServer(root, free_port(), "example.net") as server:
        yield server


def test_digest_send_hands_the_issue_to_postfix_and_dkim_verifies_after_the_hop(
    tmp_path: Path, postfix: PostfixServer
) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=6)
    key, record = dkim_key(tmp_path)
    toml = setup.config_file
    toml.write_text(
        toml.read_text() + f'\n[dkim]\ndomain = "example.org"\nselector = "s1"\nkey_file = "{key}"\n'
    )
    result = CliRunner().invoke(
        cli, ["--config", str(toml), "send", "1", "--transport", postfix.url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "sent 6, failed 0" in result.output
    delivered = postfix.wait_for(6)
    assert len(delivered) == 6

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"s1._domainkey.example.org." else None

    readers = set()
    for raw in delivered:
        msg = message_from_bytes(raw, policy=policy.default)
        assert "mx.test.invalid" in str(msg["Received"])  # it really went through Postfix
        assert msg["Return-Path"] == "<digest@example.org>"
        assert dkim.verify(raw, dnsfunc=dns), raw[:600]
        readers.add(msg["To"].addresses[0].addr_spec)
    assert readers == {s["email"] for s in setup.subscribers}
