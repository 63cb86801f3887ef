"""Transports come from a registry and are asked what they can do, never named by scheme.

A transport registered only in this file (``relayapi:``, standing in for an HTTP mail API)
gets the same https base-URL refusal and size limit as SMTP; the in-memory transport
takes a real `digest send` into its outbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup

from digest.cli import cli
from digest.config import load_config
from digest.doctor.setup import check_base_url
from digest.doctor.transport import check_transport
from digest.errors import DigestError
from digest.mail.transports import Capabilities, open_transport, parse_transport_url
from digest.mail.transports.files import MaildirTransport, MboxTransport
from digest.mail.transports.memory import MemoryTransport, clear_outboxes, outbox
from digest.mail.transports.registry import TRANSPORTS, transport_class
from digest.mail.transports.smtp import SMTPTransport


class RelayAPI(MemoryTransport):
    """A stand-in for an HTTP mail API: it sends real mail and takes messages up to 4 KB."""

    capabilities: ClassVar[Capabilities] = Capabilities(sends_real_mail=True, forks_ok=False, size_limit=4000)


@pytest.fixture(autouse=True)
def empty_outboxes():
    clear_outboxes()
    yield
    clear_outboxes()


@pytest.fixture
def relay_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRANSPORTS, "relayapi", RelayAPI)


def invoke(setup: Setup, *args: str):
    return CliRunner().invoke(cli, ["--config", str(setup.config_file), *args])


def public_base_url(setup: Setup, url: str) -> None:
    """Set ``publication.base_url`` in the workspace's file."""
    text = setup.config_file.read_text()
    setup.config_file.write_text(text.replace('"https://news.example.org"', f'"{url}"'))


def test_the_registry_finds_each_scheme_and_opens_it(tmp_path: Path) -> None:
    for url, kind in [
        ("smtp://mail.example.org:587?starttls=true", SMTPTransport),
        ("SMTPS://mail.example.org", SMTPTransport),
        ("maildir:outbox", MaildirTransport),
        ("mbox:digest.mbox", MboxTransport),
        ("memory:tests", MemoryTransport),
    ]:
        assert transport_class(url) is kind, url
    setup_config = load_config(make_setup(tmp_path, subscribers=1).config_file)
    for url, kind in [("maildir:outbox", MaildirTransport), ("memory:", MemoryTransport)]:
        transport = open_transport(url, setup_config)
        assert isinstance(transport, kind)
        transport.close()
    assert parse_transport_url("memory:").describe() == "memory:default"


def test_an_unknown_scheme_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DigestError, match=r"unknown transport scheme 'ftp' in 'ftp://host'; use smtp://"):
        transport_class("ftp://user:secret@host")
    setup = make_setup(tmp_path, subscribers=2)
    result = invoke(setup, "send", "1", "--transport", "ftp://user:secret@host/x")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "unknown transport scheme 'ftp'" in lines[0], result.output
    assert "secret" not in result.output and "Traceback" not in result.output
    assert setup.rows() == {}  # nothing frozen, nothing sent
    assert setup.db.execute("SELECT status FROM issues WHERE id = 1").fetchone()[0] == "draft"


def test_the_memory_transport_takes_a_real_send_into_its_outbox(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, subscribers=6)
    result = invoke(setup, "send", "1", "--transport", "memory:news", "--concurrency", "3")
    assert result.exit_code == 0, result.output
    assert "via memory:news: sent 6, failed 0" in result.output
    kept = outbox("news")
    assert sorted(m.recipient for m in kept) == sorted(s["email"] for s in setup.subscribers)
    for sent in kept:
        message = sent.parsed()
        assert message["To"] and sent.recipient in message["To"]
        assert message["Subject"] and message["List-Unsubscribe"].startswith("<https://news.example.org/")
    assert {r["status"] for r in setup.rows().values()} == {"sent"}
    assert outbox("default") == []  # outboxes are kept apart by name


def test_a_registered_transport_that_sends_real_mail_refuses_a_non_https_base_url(
    tmp_path: Path, relay_api: None
) -> None:
    setup = make_setup(tmp_path, subscribers=3)
    public_base_url(setup, "http://localhost:8080")
    result = invoke(setup, "send", "1", "--transport", "relayapi:live")
    assert result.exit_code == 1, result.output
    assert "is not https" in result.output and "Traceback" not in result.output
    assert outbox("live") == []
    # As for SMTP; a transport that keeps mail only warns and sends.
    smtp = invoke(setup, "send", "1", "--transport", "smtp://127.0.0.1:9")
    assert smtp.exit_code == 1 and "is not https" in smtp.output
    kept = invoke(setup, "send", "1", "--transport", "memory:local")
    assert kept.exit_code == 0 and "is not https" in kept.output and len(outbox("local")) == 3
    # The doctor fails the base URL for it too (only a warning for a memory transport).
    config = load_config(setup.config_file)
    config.delivery.transport = "relayapi:live"
    assert check_base_url(config).status == "fail"
    config.delivery.transport = "memory:local"
    assert check_base_url(config).status == "warn"


def test_a_registered_transports_size_limit_stops_the_send_before_a_byte_leaves(
    tmp_path: Path, relay_api: None
) -> None:
    setup = make_setup(tmp_path, subscribers=3)
    result = invoke(setup, "send", "1", "--transport", "relayapi:live")
    assert result.exit_code == 1, result.output
    assert "accepts at most 4000 bytes" in result.output and "Traceback" not in result.output
    assert outbox("live") == []
    assert {r["status"] for r in setup.rows().values()} == {"queued"}


def test_the_doctor_runs_the_transports_own_check(tmp_path: Path, relay_api: None) -> None:
    setup = make_setup(tmp_path, subscribers=1)
    config = load_config(setup.config_file)
    config.delivery.transport = "memory:"
    check = check_transport(config)
    assert (check.status, check.detail) == (
        "warn",
        "memory:default keeps mail in the memory of the sending process; no mail leaves it",
    )
    config.delivery.transport = "relayapi:live"  # declares no check: nothing to try
    assert check_transport(config).status == "ok"
    config.delivery.transport = "ftp://host"
    assert check_transport(config).status == "fail"
