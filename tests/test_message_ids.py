"""Message-IDs: unique across workspaces and database resets, the same for one ledger row
across a resume, and still the proof a bounce needs to act on its reader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup

from digest.cli import cli
from digest.mail.message_ids import MessageIds
from digest.mail.transports.memory import clear_outboxes, outbox
from digest.store.database import transaction


@pytest.fixture(autouse=True)
def empty_outboxes():
    clear_outboxes()
    yield
    clear_outboxes()


def _send(setup: Setup, name: str, *args: str) -> list[str]:
    result = CliRunner().invoke(
        cli, ["--config", str(setup.config_file), "send", "1", "--transport", f"memory:{name}", *args]
    )
    assert result.exit_code == 0, result.output
    return [str(m.parsed()["Message-ID"]) for m in outbox(name)]


def test_message_ids_never_repeat_across_workspaces_or_a_database_reset(tmp_path: Path) -> None:
    # The tests' workspaces share one secret (DIGEST_SECRET), as a workspace does before and
    # after its database is reset: the same issue and subscriber ids, the same key.
    first = make_setup(tmp_path / "one", subscribers=6)
    other = make_setup(tmp_path / "two", subscribers=6)
    reset = make_setup(tmp_path / "three", subscribers=6)
    ids = _send(first, "one") + _send(other, "two") + _send(reset, "three")
    assert len(ids) == 18
    # Before: issue 1 to subscriber 1 had one Message-ID in "one" and "three" (6 repeats).
    assert len(set(ids)) == 18


def test_a_row_keeps_its_message_id_and_a_report_quoting_it_finds_its_reader(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=3)
    secret = os.environ["DIGEST_SECRET"].encode()
    sent = _send(setup, "first")
    stored = {r["message_id"] for r in setup.rows().values()}
    assert set(sent) == stored
    ids = MessageIds(secret, "")
    for row in setup.rows().values():
        assert ids.verify(row["message_id"]) == (setup.issue["id"], row["subscriber_id"])
        # Any altered character (the nonce included) is nobody's.
        mid = row["message_id"]
        nonce_at = mid.index(".", mid.index(".", len("<digest.") + 1) + 1) + 1
        altered = mid[:nonce_at] + ("0" if mid[nonce_at] != "0" else "1") + mid[nonce_at + 1 :]
        assert ids.verify(altered) is None
    # A resume re-sends a queued row with the Message-ID it was claimed with.
    with transaction(setup.db):
        setup.db.execute("UPDATE deliveries SET status = 'queued'")
        setup.db.execute("UPDATE issues SET status = 'sending'")
    again = _send(setup, "again")
    assert sorted(again) == sorted(sent)


def test_a_message_id_made_before_the_random_part_still_names_its_reader() -> None:
    from subscribers.tokens import TokenSigner

    secret = os.environ["DIGEST_SECRET"].encode()
    mac = TokenSigner(secret).digest("message-id", "7.42")[:16].hex()  # MAC over ISSUE.SUBSCRIBER
    ids = MessageIds(secret, "news.example.org")
    assert ids.verify(f"<digest.7.42.{mac}@news.example.org>") == (7, 42)
    assert ids.verify(f"<digest.7.43.{mac}@news.example.org>") is None
