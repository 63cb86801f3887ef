"""`digest subscribers` through the CLI on a real database file, and the store API others call."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils
from store_switch import store_at

from digest.delivery.ledger import forget_reader
from subscribers.events import subscriber_events
from subscribers.model import email_hash, normalize_email
from subscribers.store import (
    add_subscriber,
    confirm,
    eligible_subscribers,
    get_subscriber,
    mark_bounced,
    set_preferences,
    unsubscribe,
)
from subscribers.tokens import verify_token

SECRET = b"test-secret-not-for-production"


def _db(workspace: Path) -> sqlite_utils.Database:
    return store_at(workspace / "digest.db")


def _dump(db: sqlite_utils.Database) -> str:
    """Every row of every table, as text (what a look into the database would show)."""
    return "\n".join(str(row) for table in db.table_names() for row in db.execute(f'SELECT * FROM "{table}"'))


def _show(run_cli, email: str) -> dict:
    result = run_cli("subscribers", "show", email, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_list_show(run_cli, workspace: Path) -> None:
    result = run_cli(
        "subscribers", "add", "Alice@Example.COM", "--name", "Alice Liddell",
        "--edition", "DAILY", "--category", "science", "--timezone", "europe/berlin",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "alice@example.com (active)" in result.output
    data = _show(run_cli, "ALICE@example.com")
    assert data["email"] == "alice@example.com"
    assert data["editions"] == ["daily"]  # the configured spelling
    assert data["categories"] == ["Science"]
    assert data["timezone"] == "Europe/Berlin"
    assert [e["kind"] for e in data["events"]] == ["subscribe"]
    assert data["events"][0]["source"] == "cli"
    unsubscribe_token = data["unsubscribe_url"].removeprefix("http://localhost:8080/unsubscribe/")
    assert verify_token(SECRET, unsubscribe_token, "unsubscribe") == data["id"]
    preferences_token = data["preferences_url"].removeprefix("http://localhost:8080/preferences/")
    assert verify_token(SECRET, preferences_token, "preferences") == data["id"]

    text = run_cli("subscribers", "show", "alice@example.com")
    assert "unsubscribe_url:" in text.output and "preferences_url:" in text.output

    listing = run_cli("subscribers", "list")
    assert "alice@example.com" in listing.output and "Alice Liddell" in listing.output


def test_case_insensitive_duplicate_is_refused(run_cli, workspace: Path) -> None:
    assert run_cli("subscribers", "add", "Alice@Example.COM").exit_code == 0
    result = run_cli("subscribers", "add", "alice@example.com")
    assert result.exit_code == 1
    assert "already on the list" in result.output
    assert _db(workspace).execute("SELECT count(*) FROM subscribers").fetchone()[0] == 1


def test_domain_is_stored_in_idna_form(run_cli) -> None:
    assert run_cli("subscribers", "add", "Jurgen@Bücher.example").exit_code == 0
    assert _show(run_cli, "jurgen@bücher.example")["email"] == "jurgen@xn--bcher-kva.example"
    # A non-ASCII local part (RFC 6531) is kept in NFC; it is mailed with SMTPUTF8.
    assert run_cli("subscribers", "add", "Jürgen@Bücher.example").exit_code == 0
    assert _show(run_cli, "jürgen@bücher.example")["email"] == "jürgen@xn--bcher-kva.example"
    assert normalize_email("a@BÜCHER.example") == "a@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-address"], "not a valid address"),
        (["bob@localhost"], "not a valid address"),
        (["bob@example.org\r\nBcc: eve@example.org"], "line break"),
        (["bob@example.org\x00"], "control character"),
        (["bob@example.org", "--name", "Bob\nBcc: eve@example.org"], "name contains a line break"),
        (["bob@example.org", "--name", "Bob\rX"], "name contains a line break"),
        (["bob@example.org", "--timezone", "Mars/Olympus"], "not an IANA zone"),
        (["bob@example.org", "--timezone", "Europe/Berlin\n"], "line break"),
        (["bob@example.org", "--edition", "hourly"], "unknown edition 'hourly'"),
        (["bob@example.org", "--category", "Sci\nence"], "line break"),
    ],
)
def test_add_rejects_bad_input_with_one_line(run_cli, workspace: Path, args: list[str], message: str) -> None:
    result = run_cli("subscribers", "add", *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert _db(workspace).execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_pending_then_confirm(run_cli) -> None:
    result = run_cli("subscribers", "add", "bob@example.org", "--pending", "--no-email")
    assert result.exit_code == 0, result.output
    assert "(pending)" in result.output
    link = result.output.split("Confirmation link to send them: ")[1].strip()
    token = link.removeprefix("http://localhost:8080/confirm/")
    subscriber_id = verify_token(SECRET, token, "confirm")
    assert _show(run_cli, "bob@example.org")["id"] == subscriber_id

    result = run_cli("subscribers", "confirm", "BOB@example.org")
    assert result.exit_code == 0 and "Confirmed" in result.output
    data = _show(run_cli, "bob@example.org")
    assert data["status"] == "active" and data["confirmed_at"]
    assert run_cli("subscribers", "confirm", "bob@example.org").output.startswith(
        "bob@example.org is already"
    )


def test_unsubscribe_resubscribe_and_the_consent_record(run_cli) -> None:
    run_cli("subscribers", "add", "carol@example.org")
    result = run_cli("subscribers", "unsubscribe", "Carol@Example.org")
    assert result.exit_code == 0 and "Unsubscribed carol@example.org" in result.output
    data = _show(run_cli, "carol@example.org")
    assert data["status"] == "unsubscribed" and data["unsubscribed_at"]
    assert "already unsubscribed" in run_cli("subscribers", "unsubscribe", "carol@example.org").output

    confirm_result = run_cli("subscribers", "confirm", "carol@example.org")
    assert confirm_result.exit_code == 1 and "resubscribe" in confirm_result.output

    result = run_cli("subscribers", "resubscribe", "carol@example.org")
    assert result.exit_code == 0 and "Resubscribed" in result.output
    data = _show(run_cli, "carol@example.org")
    assert data["status"] == "active" and data["unsubscribed_at"] is None
    assert [(e["kind"], e["source"]) for e in data["events"]] == [
        ("subscribe", "cli"),
        ("unsubscribe", "cli"),
        ("resubscribe", "cli"),
    ]
    assert data["events"][1]["detail"] == {"from": "active"}


def test_set_preferences(run_cli) -> None:
    run_cli("subscribers", "add", "dan@example.org")
    result = run_cli(
        "subscribers", "set", "dan@example.org", "--edition", "weekly", "--category", "World",
        "--category", "culture", "--timezone", "America/New_York", "--name", "Dan",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = _show(run_cli, "dan@example.org")
    assert data["editions"] == ["weekly"]
    assert data["categories"] == ["World", "Culture"]
    assert data["timezone"] == "America/New_York"
    assert data["name"] == "Dan"
    event = data["events"][-1]
    assert event["kind"] == "preferences"
    assert event["detail"]["categories"] == {"from": None, "to": ["World", "Culture"]}
    assert event["detail"]["name"] == "changed"  # the consent record holds no names

    run_cli("subscribers", "set", "dan@example.org", "--all-categories", "--timezone", "")
    data = _show(run_cli, "dan@example.org")
    assert data["categories"] is None and data["timezone"] is None
    assert "No change" in run_cli("subscribers", "set", "dan@example.org", "--all-categories").output
    bad = run_cli("subscribers", "set", "dan@example.org", "--timezone", "Nowhere/Land")
    assert bad.exit_code == 1 and "IANA" in bad.output
    missing = run_cli("subscribers", "set", "nobody@example.org", "--name", "X")
    assert missing.exit_code == 1 and "no subscriber" in missing.output


def test_list_filters_and_json(run_cli) -> None:
    run_cli("subscribers", "add", "a@example.org", "--edition", "daily", "--category", "World")
    run_cli("subscribers", "add", "b@example.org", "--edition", "weekly")
    run_cli("subscribers", "add", "c@example.org", "--pending")

    def emails(*args: str) -> list[str]:
        result = run_cli("subscribers", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["email"] for row in json.loads(result.output)]

    assert emails() == ["a@example.org", "b@example.org", "c@example.org"]
    assert emails("--status", "pending") == ["c@example.org"]
    assert emails("--edition", "daily") == ["a@example.org", "c@example.org"]
    assert emails("--category", "science") == ["b@example.org", "c@example.org"]
    assert emails("--status", "bounced") == []
    assert json.loads(run_cli("subscribers", "list", "--json", "--status", "bounced").output) == []


def test_stats(run_cli) -> None:
    run_cli("subscribers", "add", "a@example.org")
    run_cli("subscribers", "add", "b@example.org", "--pending")
    run_cli("subscribers", "unsubscribe", "a@example.org")
    stats = json.loads(run_cli("subscribers", "stats", "--json").output)
    assert stats["total"] == 2
    assert stats["by_status"] == {"pending": 1, "active": 0, "unsubscribed": 1, "bounced": 0}
    assert stats["last_30_days"]["unsubscribe"] == 1
    text = run_cli("subscribers", "stats").output
    assert "unsubscribed: 1" in text


def _issue_with_delivery(workspace: Path, subscriber_id: int, email: str) -> None:
    conn = _db(workspace)
    conn.execute(
        "INSERT INTO issues (id, edition, number, period_start, period_end, subject, created_at)"
        " VALUES (1, 'daily', 1, '2026-01-01T00:00:00+00:00', '2026-01-02T00:00:00+00:00', 's', 'x')"
    )
    conn.execute(
        "INSERT INTO deliveries (issue_id, subscriber_id, email, status, last_error, updated_at)"
        " VALUES (1, ?, ?, 'failed', ?, 'x')",
        [subscriber_id, email, f"550 5.1.1 <{email}>: mailbox unavailable"],
    )
    conn.conn.close()


def test_remove_erases_personal_data_and_suppresses(run_cli, workspace: Path) -> None:
    run_cli("subscribers", "add", "erin@example.org", "--name", "Erin")
    erin = _show(run_cli, "erin@example.org")
    _issue_with_delivery(workspace, erin["id"], "erin@example.org")

    refused = run_cli("subscribers", "remove", "erin@example.org", input="y\n")
    assert refused.exit_code == 1 and _show(run_cli, "erin@example.org")
    assert "no terminal to confirm on; add --yes" in refused.output  # no prompt read from a pipe
    result = run_cli("subscribers", "remove", "ERIN@example.org", "--yes")
    assert result.exit_code == 0, result.output

    conn = _db(workspace)
    assert conn.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0
    [delivery] = conn.query("SELECT * FROM deliveries")
    assert delivery["email"] is None and delivery["subscriber_id"] is None
    assert "erin@example.org" not in delivery["last_error"]
    digest_ = email_hash("erin@example.org")
    assert conn.execute("SELECT reason FROM suppressions WHERE email_hash = ?", [digest_]).fetchone()
    events = list(conn.query("SELECT kind, email_hash, detail FROM events ORDER BY id"))
    assert [e["kind"] for e in events] == ["subscribe", "remove"]
    assert {e["email_hash"] for e in events} == {digest_}
    dump = _dump(conn)
    assert "erin@example.org" not in dump and "Erin" not in dump
    conn.conn.close()

    assert run_cli("subscribers", "show", "erin@example.org").exit_code == 1
    again = run_cli("subscribers", "add", "Erin@Example.org")
    assert again.exit_code == 1 and "--resubscribe" in again.output
    # A later import reports it as suppressed and does not re-add it.
    Path("people.csv").write_text("email,name\nerin@example.org,Erin\n", encoding="utf-8")
    imported = run_cli("subscribers", "import", "people.csv")
    assert "0 added" in imported.output and "1 suppressed" in imported.output
    assert run_cli("subscribers", "show", "erin@example.org").exit_code == 1

    back = run_cli("subscribers", "add", "erin@example.org", "--resubscribe")
    assert back.exit_code == 0, back.output
    assert _show(run_cli, "erin@example.org")["id"] > erin["id"]  # an old link never names the newcomer


def test_removed_id_is_never_reused(workspace: Path) -> None:
    from subscribers.store import remove_subscriber

    db = store_at(workspace / "digest.db")
    first = add_subscriber(db, "one@example.org")
    last = add_subscriber(db, "two@example.org")
    remove_subscriber(db, last["id"], forget_deliveries=forget_reader)
    newcomer = add_subscriber(db, "three@example.org")
    assert newcomer["id"] > last["id"] > first["id"]


def test_unknown_subscriber_commands_fail_cleanly(run_cli) -> None:
    for command in ("show", "unsubscribe", "resubscribe", "confirm", "remove"):
        result = run_cli("subscribers", command, "ghost@example.org")
        assert result.exit_code == 1, (command, result.output)
        assert "no subscriber 'ghost@example.org'" in result.output


# ---------------------------------------------------------------- the store API (delivery, web)


def test_eligible_subscribers(workspace: Path) -> None:
    db = store_at(workspace / "digest.db")
    everyone = add_subscriber(db, "all@example.org")
    daily_world = add_subscriber(db, "dw@example.org", editions=["daily"], categories=["World"])
    weekly = add_subscriber(db, "weekly@example.org", editions=["weekly"])
    science = add_subscriber(db, "sci@example.org", categories=["Science"])
    pending = add_subscriber(db, "p@example.org", status="pending")
    gone = add_subscriber(db, "gone@example.org")
    unsubscribe(db, gone["id"], source="web", detail={"method": "one-click"})

    def ids(edition: str, categories: list[str]) -> list[int]:
        return [s["id"] for s in eligible_subscribers(db, edition, categories)]

    assert ids("daily", ["World", "Culture"]) == [everyone["id"], daily_world["id"]]
    assert ids("daily", ["Science"]) == [everyone["id"], science["id"]]
    assert ids("weekly", ["Science"]) == [everyone["id"], weekly["id"], science["id"]]
    assert pending["id"] not in ids("daily", ["World"])
    row = next(iter(eligible_subscribers(db, "daily", ["World"])))
    assert row["categories"] is None and isinstance(row["attributes"], dict)


def test_eligible_subscribers_match_categories_case_insensitively(workspace: Path) -> None:
    """As variant_key does: a Technology reader gets an issue whose articles say technology."""
    from digest.render.variants import variant_key

    db = store_at(workspace / "digest.db")
    tech = add_subscriber(db, "tech@example.org", categories=["Technology"])
    other = add_subscriber(db, "other@example.org", categories=["Sport"])
    found = [s for s in eligible_subscribers(db, "daily", ["technology", "World"])]
    assert [s["id"] for s in found] == [tech["id"]]
    assert variant_key(found[0]["categories"], ["technology", "World"]) == '["technology"]'
    assert other["id"] not in [s["id"] for s in eligible_subscribers(db, "daily", ["TECHNOLOGY"])]


def test_eligible_subscribers_streams_past_a_page(workspace: Path) -> None:
    from subscribers import store

    db = store_at(workspace / "digest.db")
    for i in range(store.PAGE + 5):
        db.execute(
            "INSERT INTO subscribers (email, status, created_at, updated_at) VALUES (?, 'active', 'x', 'x')",
            [f"u{i}@example.org"],
        )
    ids = [s["id"] for s in eligible_subscribers(db, "daily", ["World"])]
    assert len(ids) == store.PAGE + 5 and ids == sorted(ids)


def test_status_changes_record_events(workspace: Path) -> None:
    db = store_at(workspace / "digest.db")
    at = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    sub = add_subscriber(db, "f@example.org", status="pending", now=at)
    assert confirm(db, sub["id"], source="web", now=at) is True
    assert confirm(db, sub["id"], source="web", now=at) is False
    mark_bounced(db, sub["id"], detail="550 5.1.1 no such user", now=at)
    assert get_subscriber(db, sub["id"])["status"] == "bounced"
    assert confirm(db, sub["id"], source="web") is False  # an old confirm link does not re-add
    assert unsubscribe(db, sub["id"], source="web") is True
    changes = set_preferences(db, sub["id"], categories=["World"], timezone="Asia/Tokyo", source="web")
    assert changes == {"categories": (None, ["World"]), "timezone": (None, "Asia/Tokyo")}
    assert set_preferences(db, sub["id"], categories=["World"], source="web") == {}
    events = subscriber_events(db, sub["id"])
    assert [(e["kind"], e["source"]) for e in events] == [
        ("subscribe", "cli"),
        ("confirm", "web"),
        ("bounce", "bounce"),
        ("unsubscribe", "web"),
        ("preferences", "web"),
    ]
    assert events[1]["at"] == "2026-02-01T09:30:00+00:00"
    assert events[2]["detail"] == {"from": "active", "detail": "550 5.1.1 no such user"}
    with pytest.raises(ValueError):
        unsubscribe(db, sub["id"], source="somewhere")


def test_the_canonical_address_folds_provider_spellings_for_rate_limits_only() -> None:
    from subscribers.model import canonical_address

    gmail = ["v.ictim@gmail.com", "Victim+1@gmail.com", "vic.tim+x@googlemail.com", "VICTIM@GMAIL.COM"]
    assert {canonical_address(a) for a in gmail} == {"victim@gmail.com"}
    assert canonical_address("a.b+news@outlook.com") == "a.b@outlook.com"  # dots matter there
    assert canonical_address("me-shopping@yahoo.co.uk") == "me@yahoo.co.uk"
    assert canonical_address("me-too@example.org") == "me-too@example.org"
    assert canonical_address("Ann+list@Example.org") == "ann@example.org"
    assert canonical_address("+tag@example.org") == "+tag@example.org"


def test_an_over_long_local_part_is_refused_when_added_or_imported(workspace: Path, run_cli) -> None:
    """RFC 5321's 64 octets before the @ (counted in UTF-8: 33 Cyrillic letters are 66): refused
    at the door, not failed on every issue for ever. An international address is fine."""
    long_local = "я" * 33 + "@example.org"
    added = run_cli("subscribers", "add", long_local)
    assert added.exit_code == 1 and "66 octets long" in added.output, added.output
    people = workspace / "people.csv"
    people.write_text(f"email\n{long_local}\nok@example.org\n", encoding="utf-8")
    imported = run_cli("subscribers", "import", str(people))
    assert imported.exit_code == 1 and "line 2" in imported.output, imported.output
    assert run_cli("subscribers", "add", "jürgen@example.org").exit_code == 0
    idn = run_cli("subscribers", "add", "jurgen@exämple.org")
    assert idn.exit_code == 0 and "jurgen@xn--exmple-cua.org" in idn.output, idn.output
