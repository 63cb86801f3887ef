"""The per-send guards (digest.delivery.guard): a send whose hard bounces pass [bounces]
bounce_rate, or whose complaints pass complaint_rate, pauses with every unsent row queued,
exits 1 and says why; `digest send ISSUE --resume` sends on to the end. Against aiosmtpd,
with bounce reports read by `digest bounces process` from a maildir.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bounce_support import FIXTURES, SECRET, fill_maildir
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup
from smtp_server import Handler, SMTPServer

import digest.delivery.worker
from digest.cli import cli
from digest.mail.verp import VerpSigner

READERS = 300


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest.delivery.worker, "RETRY_BACKOFF_SECONDS", 0.01)


def invoke(setup: Setup, *args: str):
    return CliRunner().invoke(cli, ["--config", str(setup.config_file), *args])


def statuses(setup: Setup) -> dict[str, int]:
    return dict(
        setup.db.execute(
            "SELECT status, count(*) FROM deliveries WHERE issue_id = ? GROUP BY status", [setup.issue["id"]]
        ).fetchall()
    )


def reader_number(address: str) -> int:
    return int(address.removeprefix("reader").partition("@")[0])


def refuse_every_tenth(address: str, attempt: int) -> str | None:
    """A relay whose directory lacks one reader in ten."""
    return "550 5.1.1 no such user here" if reader_number(address) % 10 == 9 else None


def test_hard_bounces_over_the_line_pause_the_send_and_resume_sends_the_rest(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=READERS)
    with SMTPServer(Handler(rcpt_policy=refuse_every_tenth)) as server:
        paused = invoke(setup, "send", "1", "--transport", server.url)
        first = statuses(setup)
        delivered_before_resume = len(server.handler.received)
        resumed = invoke(setup, "send", "1", "--transport", server.url, "--resume")
    # Paused: exit 1, one line saying the rate and the line, everyone unsent still queued.
    assert paused.exit_code == 1, paused.output
    assert "Traceback" not in paused.output
    assert "issue 1 paused: hard bounces are" in paused.output
    assert "over the line of [bounces] bounce_rate = 5%" in paused.output
    assert "--resume" in paused.output
    assert set(first) <= {"sent", "failed", "queued"}, first
    tried = first.get("sent", 0) + first["failed"]
    assert 100 <= tried < READERS and first["queued"] == READERS - tried
    assert first["failed"] * 100 > 5 * tried
    assert delivered_before_resume == first["sent"]
    # --resume: on purpose, to the end.
    assert resumed.exit_code == 0, resumed.output
    assert statuses(setup) == {"sent": READERS * 9 // 10, "failed": READERS // 10}
    assert len(server.handler.received) == READERS * 9 // 10
    print(f"paused after {tried} tried ({first['failed']} hard bounces), {first['queued']} queued")


def test_the_first_bounces_of_a_small_list_pause_nothing(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=40)  # under min_sample (100)
    with SMTPServer(Handler(rcpt_policy=refuse_every_tenth)) as server:
        result = invoke(setup, "send", "1", "--transport", server.url)
    assert result.exit_code == 0, result.output
    assert statuses(setup) == {"sent": 36, "failed": 4}


def test_complaints_over_the_line_pause_the_rest_of_the_send(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=READERS)
    text = setup.config_file.read_text(encoding="utf-8")
    verp = '[delivery]\nbounce_address = "bounces@news.example.org"\nretries = 0\n'
    setup.config_file.write_text(text.replace("[delivery]\n", verp, 1), encoding="utf-8")

    def later_for_the_second_half(address: str, attempt: int) -> str | None:
        return "451 4.3.0 try again later" if reader_number(address) >= READERS // 2 else None

    with SMTPServer(Handler(rcpt_policy=later_for_the_second_half)) as server:
        first = invoke(setup, "send", "1", "--transport", server.url)
    assert first.exit_code == 0, first.output
    assert statuses(setup) == {"sent": READERS // 2, "deferred": READERS // 2}
    # One reader of the 150 marks it as spam: 0.67 %, over Gmail's 0.3 %.
    (delivery_id,) = setup.db.execute(
        "SELECT id FROM deliveries WHERE email = 'reader7@example.net'"
    ).fetchone()
    complaint = (FIXTURES / "arf-complaint.eml").read_bytes()
    complaint = complaint.replace(b"complainer@example.com", b"reader7@example.net").replace(
        b"To: bounces@news.example.org",
        f"To: bounces+{VerpSigner(SECRET).token(delivery_id)}@news.example.org".encode(),
    )
    fill_maildir(tmp_path / "reports", [complaint])
    processed = invoke(setup, "bounces", "process", f"maildir:{tmp_path / 'reports'}")
    assert processed.exit_code == 0, processed.output
    assert setup.status_of("reader7@example.net") == "unsubscribed"

    with SMTPServer(Handler()) as server:
        paused = invoke(setup, "send", "1", "--transport", server.url)
        assert paused.exit_code == 1, paused.output
        assert "issue 1 paused: complaints are 0.7% (1 of 150 delivered)" in paused.output
        assert "[bounces] complaint_rate = 0.3%" in paused.output
        assert server.handler.received == []
        assert statuses(setup) == {"sent": READERS // 2, "queued": READERS // 2}
        resumed = invoke(setup, "send", "1", "--transport", server.url, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert statuses(setup) == {"sent": READERS}
    assert len(server.handler.received) == READERS // 2
