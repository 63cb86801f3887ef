"""Refusals that are about the send, not the readers (issue #27): a relay that refuses our
sender, or gives every reader the same bounce, stops the run with everyone queued and marks
nobody bounced; a full mailbox fails one row; a mass bounce can be undone in bulk."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import AFTER, Setup, make_setup
from postfix_server import PostfixServer
from smtp_server import Handler, SMTPServer, free_port

import digest.delivery.worker
from digest.cli import cli
from digest.delivery import deliver_issue
from digest.mail.transports import TransportError

READERS = 12


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits of a few milliseconds, so retry tests stay quick."""
    monkeypatch.setattr(digest.delivery.worker, "RETRY_BACKOFF_SECONDS", 0.01)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "ws", subscribers=READERS)


def send_cli(setup: Setup, url: str, *extra: str):
    return CliRunner().invoke(
        cli, ["--config", str(setup.config_file), "send", "1", "--transport", url, *extra]
    )


def bounced(setup: Setup) -> int:
    return setup.db.execute("SELECT count(*) FROM subscribers WHERE status = 'bounced'").fetchone()[0]


def statuses(setup: Setup) -> dict[str, int]:
    return dict(
        setup.db.execute(
            "SELECT status, count(*) FROM deliveries WHERE issue_id = ? GROUP BY status", [setup.issue["id"]]
        ).fetchall()
    )


def issue_status(setup: Setup) -> str:
    return setup.db.execute("SELECT status FROM issues WHERE id = ?", [setup.issue["id"]]).fetchone()[0]


def assert_stopped_with_everyone_queued(setup: Setup, result) -> None:
    assert (bounced(setup), statuses(setup)) == (0, {"queued": READERS}), result.output
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert statuses(setup) == {"queued": READERS}
    assert issue_status(setup) == "sending"
    events = setup.db.execute("SELECT count(*) FROM events WHERE kind = 'bounce'").fetchone()[0]
    assert events == 0


# ---------------------------------------------------------------- a relay refusing our sender


@pytest.fixture
def postfix_refusing_sender(request: pytest.FixtureRequest):
    why = PostfixServer.available()
    if why is not None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    settings = {
        # Our sender's domain is one this Postfix knows, and digest@ is not a listed address
        # there: the usual private-relay set-up that refuses a sender nobody registered
        # (Postfix 3.7 answers 5.1.7; older ones and access maps answer 5.1.0).
        "unlisted": {
            "virtual_alias_domains": "example.org",
            "virtual_alias_maps": "inline:{ postmaster@example.org=postmaster@example.net }",
            "smtpd_sender_restrictions": "reject_unlisted_sender",
        },
        "access map": {
            "smtpd_sender_restrictions": (
                "check_sender_access inline:{{ digest@example.org = 550 5.1.0 not allowed to send here }}"
            ),
        },
    }[request.param]
    with PostfixServer(root, free_port(), "example.net", settings=settings) as server:
        yield server


@pytest.mark.parametrize("postfix_refusing_sender", ["unlisted", "access map"], indirect=True)
def test_postfix_refusing_our_sender_stops_the_send_and_bounces_nobody(
    setup: Setup, postfix_refusing_sender: PostfixServer
) -> None:
    result = send_cli(setup, postfix_refusing_sender.url)
    assert_stopped_with_everyone_queued(setup, result)
    assert "refused the sender <digest@example.org>" in result.output
    assert "Sender address rejected" in result.output


def test_a_refusal_naming_our_verp_sender_stops_the_send(setup: Setup) -> None:
    toml = setup.config_file
    toml.write_text(
        toml.read_text().replace("[delivery]", '[delivery]\nbounce_address = "bounces@example.org"')
    )

    def rcpt(address: str, attempt: int) -> str:
        return "550 5.1.0 <BOUNCES+whatever@Example.org>: address not permitted"

    with SMTPServer(Handler(rcpt_policy=rcpt)) as server:
        result = send_cli(setup, server.url)
    assert_stopped_with_everyone_queued(setup, result)


# ---------------------------------------------------------------- the same bounce for everyone


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_the_same_5_1_1_for_every_reader_is_about_the_send(setup: Setup, stage: str) -> None:
    def refuse(address: str, attempt: int) -> str:
        return "550 5.1.1 Mailbox unavailable"

    handler = Handler(**{f"{stage}_policy": refuse})
    with SMTPServer(handler) as server:
        result = send_cli(setup, server.url)
    assert_stopped_with_everyone_queued(setup, result)
    assert "same refusal" in result.output


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_unknown_first_reader_among_good_ones_still_bounces_alone(setup: Setup, concurrency: int) -> None:
    first = setup.subscribers[0]["email"]
    handler = Handler(
        rcpt_policy=lambda a, n: "550 5.1.1 The email account does not exist" if a == first else None
    )
    with SMTPServer(handler) as server:
        report = deliver_issue(
            setup.db,
            setup.config,
            setup.issue["id"],
            transport_url=server.url,
            now=AFTER,
            concurrency=concurrency,
        )
    assert (report.sent, report.failed, report.status) == (READERS - 1, 1, "sent")
    assert setup.status_of(first) == "bounced" and bounced(setup) == 1


def test_an_unknown_reader_named_in_the_reply_bounces_even_before_any_250(setup: Setup) -> None:
    gone = {s["email"] for s in setup.subscribers[:4]}

    def rcpt(address: str, attempt: int) -> str | None:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown" if address in gone else None

    with SMTPServer(Handler(rcpt_policy=rcpt)) as server:
        report = deliver_issue(
            setup.db, setup.config, setup.issue["id"], transport_url=server.url, now=AFTER, concurrency=1
        )
    assert (report.sent, report.failed, report.status) == (READERS - 4, 4, "sent")
    assert bounced(setup) == 4


# ---------------------------------------------------------------- policy refusals under two codes


def test_alternating_550_and_554_5_7_1_stop_the_run_and_fail_nobody(setup: Setup) -> None:
    seen: list[str] = []

    def data(address: str, attempt: int) -> str:
        seen.append(address)
        return "550 5.7.1 Rejected by policy" if len(seen) % 2 else "554 5.7.1 Rejected by policy"

    with SMTPServer(Handler(data_policy=data)) as server, pytest.raises(TransportError, match="same refusal"):
        deliver_issue(
            setup.db, setup.config, setup.issue["id"], transport_url=server.url, now=AFTER, concurrency=1
        )
    assert statuses(setup) == {"queued": READERS}
    assert issue_status(setup) == "sending" and bounced(setup) == 0


# ---------------------------------------------------------------- a full mailbox


def test_a_full_mailbox_after_data_fails_that_row_and_the_send_goes_on(setup: Setup) -> None:
    full = setup.subscribers[0]["email"]
    handler = Handler(data_policy=lambda a, n: "552 5.2.2 Mailbox full" if a == full else None)
    with SMTPServer(handler) as server:
        result = send_cli(setup, server.url)
    assert result.exit_code == 0, result.output
    row = setup.rows()[full]
    assert (row["status"], row["enhanced_code"]) == ("failed", "5.2.2")
    assert statuses(setup) == {"sent": READERS - 1, "failed": 1}
    assert issue_status(setup) == "sent" and setup.status_of(full) == "active"


# ---------------------------------------------------------------- undoing a mass bounce


def test_resubscribe_bounced_by_an_issue_undoes_its_bounces_only(setup: Setup) -> None:
    gone = [s["email"] for s in setup.subscribers[:3]]
    by_hand = setup.subscribers[5]["email"]
    runner = CliRunner()
    base = ["--config", str(setup.config_file)]
    assert runner.invoke(cli, [*base, "subscribers", "bounce", by_hand]).exit_code == 0

    def rcpt(address: str, attempt: int) -> str | None:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown" if address in gone else None

    with SMTPServer(Handler(rcpt_policy=rcpt)) as server:
        report = deliver_issue(
            setup.db, setup.config, setup.issue["id"], transport_url=server.url, now=AFTER, concurrency=1
        )
    assert report.failed == 3 and bounced(setup) == 4

    dry = runner.invoke(cli, [*base, "subscribers", "resubscribe", "--bounced-by", "daily/1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3" in dry.output and bounced(setup) == 4

    done = runner.invoke(cli, [*base, "subscribers", "resubscribe", "--bounced-by", "daily/1"])
    assert done.exit_code == 0, done.output
    assert "Resubscribed 3" in done.output
    assert [setup.status_of(e) for e in gone] == ["active"] * 3
    assert setup.status_of(by_hand) == "bounced"
    for email in gone:
        sid = setup.db.execute("SELECT id FROM subscribers WHERE email = ?", [email]).fetchone()[0]
        kind, source, detail = setup.db.execute(
            "SELECT kind, source, detail FROM events WHERE subscriber_id = ? ORDER BY id DESC LIMIT 1", [sid]
        ).fetchone()
        assert (kind, source) == ("resubscribe", "cli")
        assert "undo" in json.loads(detail)["detail"] and "daily/1" in json.loads(detail)["detail"]
    # Their rows of that issue go out again on the next send.
    assert statuses(setup)["queued"] == 3 and issue_status(setup) == "sending"
    again = runner.invoke(cli, [*base, "subscribers", "resubscribe", "--bounced-by", "daily/1"])
    assert again.exit_code == 0 and "Resubscribed 0" in again.output


def test_resubscribe_needs_an_address_or_bounced_by(setup: Setup) -> None:
    result = CliRunner().invoke(cli, ["--config", str(setup.config_file), "subscribers", "resubscribe"])
    assert result.exit_code != 0 and "--bounced-by" in result.output
