"""`digest verify ISSUE --maillog FILE` against a real private Postfix relaying to an aiosmtpd
sink that refuses one domain (5.1.1, so Postfix bounces) and defers another: every reader is
delivered, deferred, bounced or unknown to the relay, and the bounces are recorded like DSNs —
only for readers whose delivery row's Message-ID is the one in the log."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup
from postfix_server import PostfixServer
from smtp_server import Handler, SMTPServer, free_port

from digest.cli import cli
from digest.verify import read_maillog
from subscribers.store import add_subscriber

GONE = ("ann@gone.example", "bob@gone.example")  # the sink refuses them: Postfix bounces
SLOW = "cal@slow.example"  # the sink says 451: Postfix defers


def sink_policy(address: str, attempt: int) -> str | None:
    if address.endswith("@gone.example"):
        return f"550 5.1.1 <{address}>: no such user"
    if address.endswith("@slow.example"):
        return "451 4.3.0 mailbox busy, try later"
    return None


@pytest.fixture
def relay(tmp_path: Path):
    """(Postfix, the sink it relays everything to)."""
    why = PostfixServer.available()
    if why is not None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))  # socket paths must stay short
    with SMTPServer(Handler(rcpt_policy=sink_policy)) as sink:
        settings = {
            "relayhost": f"[127.0.0.1]:{sink.port}",
            "default_transport": "smtp",
            "smtp_tls_security_level": "none",
            "smtp_helo_name": "mx.test.invalid",
        }
        with PostfixServer(root, free_port(), "local.invalid", settings=settings) as postfix:
            yield postfix, sink


def wait_for_log(log: Path, count: int, timeout: float = 60.0) -> str:
    """The log once it has ``count`` delivery status lines (Postfix works asynchronously)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if sum(1 for line in text.splitlines() if " status=" in line and " to=<" in line) >= count:
            return text
        time.sleep(0.2)
    raise AssertionError(f"postfix logged too few outcomes:\n{text[-3000:]}")


def invoke(setup: Setup, *args: str):
    return CliRunner().invoke(cli, ["--config", str(setup.config_file), *args])


def test_verify_puts_every_reader_in_one_place_and_records_relay_bounces(tmp_path: Path, relay) -> None:
    postfix, _sink = relay
    setup = make_setup(tmp_path / "ws", subscribers=6)
    for email in (*GONE, SLOW):
        add_subscriber(setup.db, email=email)
    sent = invoke(setup, "send", "1", "--transport", postfix.url)
    assert sent.exit_code == 0, sent.output
    assert "sent 9, failed 0" in sent.output  # Postfix accepted all nine; the sink decides later
    wait_for_log(postfix.log, 9)
    # A row whose Message-ID is not the one in the log: the log says nothing about that reader.
    setup.db.execute(
        "UPDATE deliveries SET message_id = '<someone.else@example.org>' WHERE email = ?", [GONE[1]]
    )

    result = invoke(setup, "verify", "1", "--maillog", str(postfix.log), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    print("\nverify counts:", report["counts"])
    assert report["counts"] == {"delivered": 6, "deferred": 1, "bounced": 1, "unknown": 1, "not_sent": 0}
    outcome = {r["email"]: r for r in report["readers"]}
    assert outcome[GONE[0]]["outcome"] == "bounced" and outcome[GONE[0]]["dsn"] == "5.1.1"
    assert outcome[GONE[1]]["outcome"] == "unknown"
    assert outcome[SLOW]["outcome"] == "deferred"
    assert report["marked_bounced"] == [GONE[0]]

    # Recorded like a DSN: a hard bounce row for the delivery, the subscriber bounced (hard_limit 1).
    bounces = list(setup.db.query("SELECT * FROM bounces"))
    assert [(b["kind"], b["status_code"], b["issue_id"]) for b in bounces] == [("hard", "5.1.1", 1)]
    assert setup.status_of(GONE[0]) == "bounced"
    assert setup.status_of(GONE[1]) == "active"  # no matching Message-ID: nothing done
    assert setup.status_of(SLOW) == "active"
    events = setup.db.execute(
        "SELECT count(*) FROM events e JOIN subscribers s ON s.id = e.subscriber_id"
        " WHERE s.email = ? AND e.kind = 'hard_bounce'",
        [GONE[0]],
    ).fetchone()[0]
    assert events == 1

    # Reading the log again records nothing twice.
    again = invoke(setup, "verify", "1", "--maillog", str(postfix.log))
    assert again.exit_code == 0, again.output
    assert "6 delivered, 1 deferred, 1 bounced, 1 unknown, 0 not sent" in again.output
    assert "0 bounces recorded (1 recorded before)" in again.output
    assert setup.db.execute("SELECT count(*) FROM bounces").fetchone()[0] == 1


def test_verify_refuses_a_file_that_is_not_a_postfix_log(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=2)
    missing = invoke(setup, "verify", "1", "--maillog", str(tmp_path / "nope.log"))
    assert missing.exit_code == 1 and "cannot read the mail log" in missing.output
    assert "give --maillog the file Postfix logs to" in missing.output  # says what to do
    assert "Traceback" not in missing.output
    other = tmp_path / "other.log"
    other.write_text("Dec  6 10:00:00 host sshd[12]: Accepted publickey for root\n")
    wrong = invoke(setup, "verify", "1", "--maillog", str(other))
    assert wrong.exit_code == 1 and "no Postfix lines" in wrong.output


def test_maillog_outcome_is_the_best_line_of_each_recipient() -> None:
    lines = [
        "2026-12-06T10:00:00.1+00:00 mx postfix/cleanup[10]: 4AbC1: message-id=<m1@example.org>",
        "2026-12-06T10:00:01.1+00:00 mx postfix/smtp[11]: 4AbC1: to=<a@x.example>, relay=r, dsn=4.3.0,"
        " status=deferred (host r said: 451 4.3.0 busy)",
        "2026-12-06T10:05:01.1+00:00 mx postfix/smtp[11]: 4AbC1: to=<a@x.example>, relay=r, dsn=2.0.0,"
        " status=sent (250 2.0.0 ok)",
        "Dec  6 10:00:02 mx postfix-test-25/smtp[12]: 4AbC1: to=<B@x.example>, relay=r, dsn=5.1.1,"
        " status=bounced (host r said: 550 5.1.1 no such user (in reply to RCPT TO command))",
        "Dec  6 10:00:03 mx postfix/qmgr[13]: 4AbC1: removed",
    ]
    log = read_maillog(lines)
    sent = log.outcome("<m1@example.org>", "a@x.example")
    assert sent is not None and sent.status == "sent" and sent.dsn == "2.0.0"
    bounced = log.outcome("m1@example.org", "b@x.example")
    assert bounced is not None and bounced.status == "bounced" and "no such user" in bounced.reply
    assert log.outcome("<m2@example.org>", "a@x.example") is None
