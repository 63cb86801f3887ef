"""The send engine under a hostile relay and an impatient operator (issue #10), against real
aiosmtpd servers: envelope senders per row, skipped rows, message-level refusals, exits."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import AFTER, Setup, make_setup
from smtp_server import Handler, SMTPServer

import digest.delivery.worker
import digest.mail.verp
from digest.cli import cli
from digest.delivery import check_public_base_url, deliver_issue
from digest.errors import DigestError
from digest.mail.transports import TransportError
from subscribers.store import unsubscribe


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits of a few milliseconds, so retry tests stay quick."""
    monkeypatch.setattr(digest.delivery.worker, "RETRY_BACKOFF_SECONDS", 0.01)


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
        digest.mail.verp.ReturnPath,
        "for_delivery",
        lambda self, delivery_id: f"bounces+{delivery_id}@example.org",
    )
    with SMTPServer(Handler(pipelining=pipelining)) as server:
        report = send(setup, server, concurrency=2)
    assert report.sent == 12
    rows = setup.rows()
    assert len(server.handler.received) == 12
    for got in server.handler.received:
        (rcpt,) = got.rcpt_tos
        assert got.mail_from == f"bounces+{rows[rcpt]['id']}@example.org"


# ---------------------------------------------------------------- rows skipped after the freeze


def freeze_with_relay_down(setup: Setup) -> None:
    """A first send while the relay is down: the issue is frozen, every row stays queued."""
    from smtp_server import free_port

    # Through the configured transport (here: a relay that is down), so that the issue
    # remembers no --transport of its own and a later run follows the config file again.
    configured = setup.config.delivery.transport
    setup.config.delivery.retries = 0
    setup.config.delivery.transport = f"smtp://127.0.0.1:{free_port()}"
    with pytest.raises(TransportError):
        deliver_issue(setup.db, setup.config, setup.issue["id"], now=AFTER)
    setup.config.delivery.retries = 3
    setup.config.delivery.transport = configured
    assert {r["status"] for r in setup.rows().values()} == {"queued"}


@pytest.mark.parametrize(
    "gone",
    [range(0, 8), range(4, 9), range(7, 12), (0, 2, 4, 6, 8, 10), range(0, 11)],
    ids=["head", "middle", "end", "every-other", "all-but-last"],
)
@pytest.mark.parametrize("transport", ["smtp", "maildir"])
def test_rows_skipped_after_the_freeze_never_end_a_send(
    setup: Setup, tmp_path: Path, gone, transport: str
) -> None:
    freeze_with_relay_down(setup)
    emails = [s["email"] for s in setup.subscribers]
    for i in gone:
        unsubscribe(setup.db, setup.subscribers[i]["id"], source="web")
    eligible = {e for i, e in enumerate(emails) if i not in set(gone)}
    if transport == "smtp":
        with SMTPServer() as server:
            report = send(setup, server, concurrency=2)
        got = set(server.handler.per_recipient())
    else:
        box = tmp_path / "box"
        report = deliver_issue(
            setup.db, setup.config, setup.issue["id"], transport_url=f"maildir:{box}", now=AFTER
        )
        got = {m["To"].split("<")[-1].rstrip(">") for m in mailbox.Maildir(box, create=False)}
    assert got == eligible
    assert report.sent == len(eligible) and report.skipped == len(set(gone))
    assert report.status == "sent"


# ---------------------------------------------------------------- refusals of the message or session


def queued_only(setup: Setup) -> None:
    assert {r["status"] for r in setup.rows().values()} == {"queued"}
    assert setup.db.execute("SELECT status FROM issues WHERE id = ?", [setup.issue["id"]]).fetchone()[0] == (
        "sending"
    )


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("data", "552 5.3.4 Message size exceeds fixed limit"),
        ("data", "554 5.7.1 Message rejected as spam"),
        ("rcpt", "554 5.7.1 Relay access denied"),
        ("rcpt", "550 5.7.1 Sender not authorised"),
        ("data", "503 5.5.1 Error: bad sequence of commands"),
        ("rcpt", "500 5.5.2 Error: command not recognized"),
    ],
)
def test_a_refusal_of_the_message_or_session_stops_the_run_with_rows_queued(
    setup: Setup, stage: str, reply: str
) -> None:
    handler = Handler(**{f"{stage}_policy": lambda address, attempt: reply})
    with SMTPServer(handler) as server, pytest.raises(TransportError) as caught:
        send(setup, server, concurrency=2)
    assert reply in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not server.handler.received
    queued_only(setup)
    # After the cause is fixed, one more send delivers to everyone.
    with SMTPServer() as server:
        report = send(setup, server)
    assert report.sent == 12 and report.status == "sent"


def test_one_refused_recipient_fails_alone(setup: Setup) -> None:
    refused = setup.subscribers[3]["email"]
    handler = Handler(
        rcpt_policy=lambda address, attempt: (
            "550 5.7.1 Recipient refused by policy" if address == refused else None
        )
    )
    with SMTPServer(handler) as server:
        report = send(setup, server, concurrency=1)
    assert report.sent == 11 and report.failed == 1 and report.status == "sent"
    assert setup.rows()[refused]["status"] == "failed"


def test_the_ehlo_size_limit_is_honoured_before_the_first_byte(setup: Setup) -> None:
    with SMTPServer(size_limit=5000) as server, pytest.raises(TransportError) as caught:
        send(setup, server)
    message = str(caught.value)
    assert "5000" in message and "bytes" in message
    assert not server.handler.received and not server.handler.rcpt_attempts
    queued_only(setup)


def test_retry_failed_requeues_only_failures_not_about_the_mailbox(setup: Setup, tmp_path: Path) -> None:
    emails = [s["email"] for s in setup.subscribers]
    bad_box, policy, gone = emails[0], emails[1], emails[2]
    replies = {bad_box: "550 5.1.1 No such user", policy: "554 5.7.1 Refused for now", gone: "554 5.7.1 Nope"}
    with SMTPServer(Handler(rcpt_policy=lambda a, n: replies.get(a))) as server:
        report = send(setup, server, concurrency=1)
    assert report.failed == 3 and report.status == "sent"
    unsubscribe(setup.db, setup.subscribers[2]["id"], source="web")
    with SMTPServer() as server:
        result = CliRunner().invoke(
            cli,
            ["--config", str(setup.config_file), "send", "1", "--retry-failed", "--transport", server.url],
        )
        assert result.exit_code == 0, result.output
        assert set(server.handler.per_recipient()) == {policy}
    rows = setup.rows()
    assert rows[policy]["status"] == "sent"
    assert rows[bad_box]["status"] == "failed" and rows[gone]["status"] == "failed"
    assert "requeued 1" in result.output


# ---------------------------------------------------------------- the public base URL


@pytest.mark.parametrize(
    "base_url", ["http://news.example.org", "https://localhost:8080", "https://127.0.0.1"]
)
def test_a_real_smtp_send_refuses_a_base_url_that_cannot_work(setup: Setup, base_url: str) -> None:
    setup.config.publication.base_url = base_url
    with SMTPServer() as server, pytest.raises(DigestError) as caught:
        send(setup, server)
    assert "publication.base_url" in str(caught.value)
    assert not server.handler.received
    assert check_public_base_url(setup.config) is not None


def test_maildir_and_test_sends_only_warn_about_the_base_url(setup: Setup, tmp_path: Path) -> None:
    setup.config.publication.base_url = "http://localhost:8080"
    with SMTPServer() as server:
        report = send(setup, server, to=["me@example.org"])
    assert report.sent == 1 and any("publication.base_url" in w for w in report.warnings)
    report = deliver_issue(
        setup.db, setup.config, setup.issue["id"], transport_url=f"maildir:{tmp_path / 'box'}", now=AFTER
    )
    assert report.sent == 12 and any("publication.base_url" in w for w in report.warnings)
    setup.config.publication.base_url = "https://news.example.org"
    assert check_public_base_url(setup.config) is None


# ---------------------------------------------------------------- exit status


def start_send(setup: Setup, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(setup.config_file), "send", "1", "--transport", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_send_exits_128_plus_the_signal(setup: Setup, signum: int, status: int) -> None:
    handler = Handler(delay=0.05)
    with SMTPServer(handler) as server:
        proc = start_send(setup, server.url)
        deadline = time.monotonic() + 60
        while len(handler.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err.decode()
    assert "interrupted" in out.decode()


def test_a_send_stopped_by_the_relay_exits_non_zero(setup: Setup) -> None:
    handler = Handler(data_policy=lambda a, n: "552 5.3.4 Message too big")
    with SMTPServer(handler) as server:
        proc = start_send(setup, server.url)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "552 5.3.4" in err.decode() and "Traceback" not in err.decode()


SEND = [sys.executable, "-m", "digest", "--config"]


# ---------------------------------------------------------------- duplicates after a SIGKILL


@pytest.mark.parametrize("kill_after", [7, 23])
def test_after_a_sigkill_at_most_one_message_per_connection_goes_out_twice(
    tmp_path: Path, kill_after: int
) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=40)
    handler = Handler(delay=0.01)
    with SMTPServer(handler) as server:
        proc = subprocess.Popen(
            [*SEND, str(setup.config_file), "send", "1", "--transport", server.url, "--concurrency", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while len(handler.received) < kill_after and time.monotonic() < deadline:
            time.sleep(0.001)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        again = start_send(setup, server.url)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()
    counts = handler.per_recipient()
    assert set(counts) == {s["email"] for s in setup.subscribers}
    assert sum(n - 1 for n in counts.values()) <= 2  # one in flight per open connection
    assert not list(setup.config.db_path.parent.glob("*.journal"))  # replayed and removed


def test_one_digest_run_delivers_past_a_run_of_skipped_rows(setup: Setup) -> None:
    freeze_with_relay_down(setup)
    for sub in setup.subscribers[:8]:
        unsubscribe(setup.db, sub["id"], source="web")
    result = CliRunner().invoke(
        cli, ["--config", str(setup.config_file), "run", "--at", AFTER.isoformat(), "--edition", "daily"]
    )
    assert result.exit_code == 0, result.output
    box = mailbox.Maildir(setup.config.path("outbox"), create=False)
    got = {m["To"].split("<")[-1].rstrip(">") for m in box}
    assert got == {s["email"] for s in setup.subscribers[8:]}
