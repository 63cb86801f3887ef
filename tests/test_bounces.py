"""Bounce processing from maildir and mbox: each fixture classified right, thresholds, VERP
tokens, mailed unsubscribes, the CLI; a second run over the same source changes nothing."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from bounce_support import EXPECTED, dsn, fill_maildir, fill_mbox, fixture_bytes, make_bounce_workspace

from digest.config import load_config
from digest.mail.message_ids import MessageIds
from digest.mail.verp import ReturnPath, VerpSigner, verp_token_of
from subscribers.events import subscriber_events
from subscribers.tokens import make_token

SECRET = b"test-secret-not-for-production"


def _kinds_by_subscriber(ws) -> dict[str, list[str]]:
    rows = ws.db().execute(
        "SELECT s.email, b.kind FROM bounces b JOIN subscribers s ON s.id = b.subscriber_id ORDER BY b.id"
    )
    out: dict[str, list[str]] = {}
    for email, kind in rows:
        out.setdefault(email, []).append(kind)
    return out


def _check_fixture_outcomes(ws) -> None:
    kinds = _kinds_by_subscriber(ws)
    for name, (address, kind, status) in EXPECTED.items():
        assert ws.status(address) == status, name
        if name in ("out-of-office.eml", "altered-verp.eml"):
            assert address not in kinds, name  # left alone: no row against the subscriber
        else:
            assert kinds[address] == [kind], name
    db = ws.db()
    others = dict(db.execute("SELECT reason, count(*) FROM bounces WHERE kind = 'other' GROUP BY reason"))
    assert others == {"auto-reply": 1, "altered VERP token": 1}
    codes = dict(
        db.execute(
            "SELECT s.email, b.status_code FROM bounces b JOIN subscribers s ON s.id = b.subscriber_id"
            " WHERE b.kind IN ('hard', 'soft')"
        )
    )
    assert codes["gone@example.com"] == "5.1.1"
    assert codes["slow@example.com"] == "4.4.7"
    assert codes["strict@example.com"] == "5.7.1"
    # The consent record: the report, then the status change, each with its source.
    complainer = db.execute("SELECT id FROM subscribers WHERE email = 'complainer@example.com'").fetchone()[0]
    events = [(e["kind"], e["source"]) for e in subscriber_events(db, complainer)]
    assert events[-2:] == [("complaint", "complaint"), ("unsubscribe", "complaint")]
    leaver = db.execute("SELECT id FROM subscribers WHERE email = 'leaver@example.com'").fetchone()[0]
    assert [(e["kind"], e["source"]) for e in subscriber_events(db, leaver)][-1] == ("unsubscribe", "email")
    gone = db.execute("SELECT id FROM subscribers WHERE email = 'gone@example.com'").fetchone()[0]
    assert [(e["kind"], e["source"]) for e in subscriber_events(db, gone)][-2:] == [
        ("hard_bounce", "bounce"),
        ("bounce", "bounce"),
    ]
    # No address is kept in the bounces table.
    reasons = " ".join(r[0] for r in db.execute("SELECT reason FROM bounces"))
    assert "@" not in reasons


def test_maildir_fixtures_are_classified_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    box = fill_maildir(tmp_path / "bounces", list(fixture_bytes().values()))
    first = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert first.exit_code == 0, first.output
    assert "9 new reports: 3 hard, 2 soft, 1 complaint, 1 unsubscribe, 2 other" in first.output
    assert "(1 altered VERP token, 1 auto-reply)" in first.output
    assert "marked bounced: 3; unsubscribed: 2" in first.output
    _check_fixture_outcomes(ws)
    # Every message moved to the processed folder, bytes unchanged.
    assert len(box) == 0
    processed = box.get_folder("processed")
    assert sorted(processed.get_bytes(k) for k in processed.iterkeys()) == sorted(fixture_bytes().values())
    before = ws.snapshot()
    second = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert second.exit_code == 0, second.output
    assert "0 new reports" in second.output
    assert ws.snapshot() == before


def test_mbox_fixtures_are_remembered_by_message_id(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    fill_mbox(tmp_path / "bounces.mbox", list(fixture_bytes().values()))
    first = ws.invoke("bounces", "process", "mbox:" + str(tmp_path / "bounces.mbox"), "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["kinds"] == {"hard": 3, "soft": 2, "complaint": 1, "unsubscribe": 1, "other": 2}
    assert data["already_processed"] == 0
    _check_fixture_outcomes(ws)
    before = ws.snapshot()
    again = json.loads(
        ws.invoke("bounces", "process", "mbox:" + str(tmp_path / "bounces.mbox"), "--json").output
    )
    assert again["already_processed"] == 9 and again["kinds"]["hard"] == 0
    assert ws.snapshot() == before
    assert len(mailbox.mbox(str(tmp_path / "bounces.mbox"))) == 9  # an mbox is only read


def test_verp_tokens_round_trip_and_refuse_alterations(tmp_path: Path) -> None:
    signer = VerpSigner(SECRET)
    token = signer.token(12345)
    assert len(token) <= 16 and token == token.lower()
    assert signer.verify(token) == 12345
    assert signer.verify(token.upper()) == 12345  # a relay may fold the case of a local part
    body, mac = token.split("-")
    assert signer.verify(f"{body}-{'a' if mac[0] != 'a' else 'b'}{mac[1:]}") is None
    assert signer.verify(f"{int(body, 36) + 1:x}-{mac}") is None
    assert signer.verify("garbage") is None
    assert VerpSigner(b"another-secret-of-enough-length").verify(token) is None
    assert verp_token_of(f"bounces+{token}@news.example.org") == token
    assert verp_token_of("plain@news.example.org") is None


def test_return_path_is_the_from_address_unless_a_bounce_address_is_set(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    config = load_config(ws.config_path)
    path = ReturnPath(config).for_delivery(7)
    local, domain = path.split("@")
    assert domain == "news.example.org" and local.startswith("bounces+")
    assert VerpSigner(SECRET).verify(verp_token_of(path)) == 7
    config.delivery.bounce_address = ""
    assert ReturnPath(config).for_delivery(7) == "digest@news.example.org"
    config.delivery.bounce_address = "bounces+x@news.example.org"
    with pytest.raises(Exception, match="bounce_address"):
        ReturnPath(config)


def _issue_with_deliveries(db, number: int, subscriber_id: int, status: str = "sent") -> tuple[int, int]:
    issue = db.execute(
        "INSERT INTO issues (edition, number, period_start, period_end, subject, status, created_at)"
        " VALUES ('daily', ?, ?, ?, 'Daily', 'sent', '2026-11-01T00:00:00+00:00')",
        [number, f"2026-11-{number:02d}T00:00:00+00:00", f"2026-11-{number + 1:02d}T00:00:00+00:00"],
    ).lastrowid
    delivery = db.execute(
        "INSERT INTO deliveries (issue_id, subscriber_id, email, status, updated_at, sent_at, message_id)"
        " VALUES (?, ?, 'x', ?, '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00', ?)",
        [issue, subscriber_id, status, MessageIds(SECRET, "news.example.org").make(issue, subscriber_id)],
    ).lastrowid
    return issue, delivery


def _verp_dsn(delivery_id: int, recipient: str, *, status: str = "4.2.2", action: str = "delayed") -> bytes:
    token = VerpSigner(SECRET).token(delivery_id)
    return dsn(
        recipient,
        to=f"bounces+{token}@news.example.org",
        status=status,
        action=action,
        mid=f"<dsn.{delivery_id}.{status}@relay.example>",
    )


def test_soft_bounces_on_three_issues_in_a_row_mark_bounced(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    db = ws.db()
    slow = db.execute("SELECT id FROM subscribers WHERE email = 'slow@example.com'").fetchone()[0]
    strict = db.execute("SELECT id FROM subscribers WHERE email = 'strict@example.com'").fetchone()[0]
    slow_rows = [_issue_with_deliveries(db, n, slow) for n in (1, 2, 3, 4)]
    # strict@ got issues 1-4 too; issue 2 reached them without a bounce.
    strict_rows = []
    for issue, _ in slow_rows:
        strict_rows.append(
            db.execute(
                "INSERT INTO deliveries (issue_id, subscriber_id, email, status, updated_at, sent_at)"
                " VALUES (?, ?, 'x', 'sent', '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00')",
                [issue, strict],
            ).lastrowid
        )
    box = tmp_path / "bounces"
    # Two soft bounces: not yet.
    fill_maildir(
        box, [_verp_dsn(slow_rows[0][1], "slow@example.com"), _verp_dsn(slow_rows[1][1], "slow@example.com")]
    )
    assert ws.invoke("bounces", "process", f"maildir:{box}").exit_code == 0
    assert ws.status("slow@example.com") == "active"
    # The same issue bouncing twice does not count twice.
    fill_maildir(box, [_verp_dsn(slow_rows[1][1], "slow@example.com", status="5.7.1", action="failed")])
    assert ws.invoke("bounces", "process", f"maildir:{box}").exit_code == 0
    assert ws.status("slow@example.com") == "active"
    # strict@: issues 1, 3 and 4 soft-bounce, but issue 2 was delivered in between.
    fill_maildir(box, [_verp_dsn(strict_rows[i], "strict@example.com") for i in (0, 2, 3)])
    fill_maildir(box, [_verp_dsn(slow_rows[2][1], "slow@example.com")])
    result = ws.invoke("bounces", "process", f"maildir:{box}")
    assert result.exit_code == 0, result.output
    assert ws.status("slow@example.com") == "bounced"
    assert ws.status("strict@example.com") == "active"
    # Mapped by token to the right delivery rows, not by address.
    mapped = {
        r[0] for r in ws.db().execute("SELECT delivery_id FROM bounces WHERE subscriber_id = ?", [slow])
    }
    assert mapped == {slow_rows[0][1], slow_rows[1][1], slow_rows[2][1]}


def test_thresholds_are_configurable(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws", "\n[bounces]\nhard_limit = 2\nsoft_limit = 1\n")
    db = ws.db()
    gone = db.execute("SELECT id FROM subscribers WHERE email = 'gone@example.com'").fetchone()[0]
    slow = db.execute("SELECT id FROM subscribers WHERE email = 'slow@example.com'").fetchone()[0]
    _, d1 = _issue_with_deliveries(db, 1, gone)
    _, d2 = _issue_with_deliveries(db, 2, slow)
    box = tmp_path / "bounces"
    fill_maildir(
        box,
        [_verp_dsn(d1, "gone@example.com", status="5.1.1", action="failed"), _verp_dsn(d2, "x@y.example")],
    )
    assert ws.invoke("bounces", "process", f"maildir:{box}").exit_code == 0
    assert ws.status("gone@example.com") == "active"  # 1 of 2 hard bounces
    assert ws.status("slow@example.com") == "bounced"  # 1 of 1 soft
    bad = make_bounce_workspace(tmp_path / "bad", "\n[bounces]\nsoft_limit = 0\n")
    result = bad.invoke("bounces", "list")
    assert result.exit_code == 1 and "'bounces.soft_limit' = 0 must be at least 1" in result.output


def test_mailed_unsubscribe_with_a_signed_token_and_forged_ones(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    db = ws.db()
    holiday = db.execute("SELECT id FROM subscribers WHERE email = 'holiday@example.com'").fetchone()[0]
    token = make_token(SECRET, holiday, "unsubscribe")

    def mail(sender: str, subject: str, mid: str, extra: str = "") -> bytes:
        return (
            f"From: {sender}\r\nTo: Unsub <unsubscribe@news.example.org>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{mid}@example.com>\r\n{extra}\r\nplease remove me\r\n"
        ).encode()

    box = tmp_path / "bounces"
    fill_maildir(
        box,
        [
            # From another address (a forwarding alias), the signed token names the subscriber.
            mail("alias@elsewhere.example", f"unsubscribe {token}", "u1"),
            # An altered token and an unknown sender: nobody.
            mail("stranger@elsewhere.example", f"unsubscribe {token[:-1]}A", "u2"),
            # An auto-reply to the mailto address never unsubscribes.
            mail(
                "gone@example.com", "Automatic reply: unsubscribe", "u3", "Auto-Submitted: auto-replied\r\n"
            ),
        ],
    )
    result = ws.invoke("bounces", "process", f"maildir:{box}")
    assert result.exit_code == 0, result.output
    assert ws.status("holiday@example.com") == "unsubscribed"
    assert ws.status("gone@example.com") == "active"
    assert "1 about nobody on the list" in result.output


def test_list_stats_and_marking_by_hand(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    fill_maildir(tmp_path / "bounces", list(fixture_bytes().values()))
    assert ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}").exit_code == 0
    listing = ws.invoke("bounces", "list")
    assert listing.exit_code == 0, listing.output
    assert len(listing.output.splitlines()) == 1 + 9  # the header, then one line per report
    assert any(
        "hard" in line and "5.1.1" in line and "gone@example.com" in line
        for line in listing.output.splitlines()
    )
    rows = json.loads(ws.invoke("bounces", "list", "--json", "--since", "1d").output)
    assert {r["kind"] for r in rows} == {"hard", "soft", "complaint", "unsubscribe", "other"}
    future = ws.invoke("bounces", "list", "--since", "2999-01-01")
    assert future.exit_code == 0 and "No bounce reports since 2999-01-01" in future.output
    bad = ws.invoke("bounces", "list", "--since", "yesterday")
    assert bad.exit_code == 1 and "--since 'yesterday'" in bad.output
    stats = ws.invoke("subscribers", "stats")
    assert "bounced:      3" in stats.output
    assert "complained:   1" in stats.output
    assert "bounce mail:  3 hard, 2 soft in the last 30 days" in stats.output
    marked = ws.invoke("subscribers", "bounce", "HOLIDAY@example.com")
    assert marked.exit_code == 0 and "Marked holiday@example.com bounced." in marked.output
    assert ws.status("holiday@example.com") == "bounced"
    again = ws.invoke("subscribers", "bounce", "holiday@example.com")
    assert "already bounced" in again.output
    left = ws.invoke("subscribers", "bounce", "leaver@example.com")
    assert left.exit_code == 1 and "is unsubscribed" in left.output


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("maildir:nowhere", "is not a maildir"),
        ("mbox:missing.mbox", "is not a file"),
        ("pop3://user@host", "is not maildir:PATH"),
        ("imap://user@mail.example.org/INBOX", "clear text; use imaps:// or add ?starttls=true"),
        ("imaps://mail.example.org/INBOX", "needs a user and a host"),
        ("imaps://user:secret@mail.example.org/INBOX", "put the password in DIGEST_IMAP_PASSWORD"),
        ("imaps://user@mail.example.org/INBOX", "set the IMAP password in DIGEST_IMAP_PASSWORD"),
    ],
)
def test_bad_sources_are_one_line_errors(tmp_path: Path, source: str, message: str) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    before = ws.snapshot()
    result = ws.invoke("bounces", "process", source)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert "secret" not in result.output
    assert ws.snapshot() == before


def test_an_imap_error_names_the_host_and_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ws = make_bounce_workspace(tmp_path / "ws")
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "secret")
    for scheme in ("imaps", "imap"):
        result = ws.invoke("bounces", "process", f"{scheme}://u@127.0.0.1:{port}/INBOX")
        assert result.exit_code == 1, result.output
        assert f"{scheme}://u@127.0.0.1:{port}/INBOX: cannot log in" in result.output
        assert result.output.count("\n") == 1 and "secret" not in result.output


def test_no_source_configured(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    result = ws.invoke("bounces", "process")
    assert result.exit_code == 1 and "no [bounces] source configured" in result.output


def test_a_dsn_without_verp_maps_by_the_quoted_message_id(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    db = ws.db()
    gone = db.execute("SELECT id FROM subscribers WHERE email = 'gone@example.com'").fetchone()[0]
    issue, delivery = _issue_with_deliveries(db, 1, gone)
    # The relay names the address the mail was forwarded to, not the subscriber's.
    sent_id = db.execute("SELECT message_id FROM deliveries WHERE id = ?", [delivery]).fetchone()[0]
    report = dsn("alias@forwarded.example", original_id=sent_id)
    # Signed by us, but not the Message-ID this row was sent with: nobody's.
    other = MessageIds(SECRET, "news.example.org").make(issue, gone)
    assert other != sent_id
    # A Message-ID of our shape without our MAC maps to nobody.
    forged = dsn(
        "alias2@forwarded.example",
        original_id=f"<digest.{issue}.{gone}.{'f' * 32}@news.example.org>",
        mid="<f@x>",
    )
    fill_maildir(tmp_path / "bounces", [report, forged])
    result = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert result.exit_code == 0, result.output
    assert "2 hard" in result.output and "1 about nobody on the list" in result.output
    assert ws.status("gone@example.com") == "bounced"
    row = ws.db().execute(
        "SELECT subscriber_id, delivery_id, issue_id FROM bounces WHERE subscriber_id IS NOT NULL"
    )
    assert row.fetchall() == [(gone, delivery, issue)]
