"""Forged reports cannot clean the list: a report acts on a reader only through our VERP token
or a Message-ID carrying our MAC for that reader, a report naming several readers acts on none
and is held for review, and a mailed unsubscribe without our token only mails a confirmation link.

Each attack is a message in a real maildir, read by `digest bounces process`; the issue it
refers to went out through `digest send` into a maildir transport.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import mailbox
import re
from datetime import timedelta
from pathlib import Path

from bounce_support import dsn
from click.testing import CliRunner
from test_schedule_support import Workspace, article_times, grow_feed, make_workspace, messages, utc

from digest.cli import cli
from digest.mail.verp import VerpSigner
from digest.store.database import transaction
from subscribers.store import add_subscriber
from subscribers.tokens import verify_token

SECRET = b"test-secret-not-for-production"
BASE_URL = "https://news.example.org"
DOMAIN = "example.org"  # of the From address, digest@example.org


def _workspace(tmp_path: Path, readers: int, *, verp: bool = False, send: bool = True) -> Workspace:
    """``readers`` active readers (reader1@… readerN@…) who got issue daily/1, unless ``send`` is off."""
    ws = make_workspace(tmp_path / "ws")
    extra = '\nunsubscribe_mailto = "unsubscribe@example.org"'
    if verp:
        extra += '\nbounce_address = "bounces@example.org"'
    text = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(text.replace('"maildir:outbox"', '"maildir:outbox"' + extra), encoding="utf-8")
    db = ws.db()
    with transaction(db):
        for n in range(1, readers + 1):
            add_subscriber(db, f"reader{n}@example.net", status="active")
    db.close()
    if send:
        grow_feed(
            ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4)
        )
        _invoke(ws, "ingest")
        _invoke(ws, "issues", "build", "daily", "--date", "2026-11-03")
        _invoke(ws, "send", "latest")
    return ws


def _invoke(ws: Workspace, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(ws.config_path), *args])
    assert result.exit_code == 0, result.output
    return result


def _process(ws: Workspace, reports: list[bytes]):
    box = mailbox.Maildir(str(ws.root / "bounces"), create=True)
    for data in reports:
        box.add(data)
    result = _invoke(ws, "bounces", "process", f"maildir:{ws.root / 'bounces'}")
    assert len(box) == 0, "every report is moved to processed"
    return result


def _statuses(ws: Workspace) -> dict[str, int]:
    return dict(ws.db().execute("SELECT status, count(*) FROM subscribers GROUP BY status").fetchall())


def _sent_to(ws: Workspace, address: str) -> email.message.EmailMessage:
    box = mailbox.Maildir(str(ws.outbox), create=False)
    found = []
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        if msg["To"].addresses[0].addr_spec == address:
            found.append(msg)
    assert len(found) == 1, f"{len(found)} messages to {address}"
    return found[0]


def _multi_dsn(
    recipients: list[str], *, to: str = "digest@example.org", mid: str = "<multi@relay.example>"
) -> bytes:
    blocks = "".join(
        f"Final-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" for r in recipients
    )
    return (
        f"From: MAILER-DAEMON@relay.example\r\nTo: {to}\r\nSubject: Undelivered Mail\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nNone of these worked.\r\n\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\n"
        f"{blocks}--b--\r\n"
    ).encode()


def _complaint(
    rcpts: list[str], *, original_id: str = "<spam@elsewhere.example>", mid: str = "<arf@isp.example>"
) -> bytes:
    fields = "".join(f"Original-Rcpt-To: <{r}>\r\n" for r in rcpts)
    return (
        "From: Feedback Loop <fbl@isp.example>\r\nTo: digest@example.org\r\nSubject: Complaint\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nA user marked this as spam.\r\n\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: fbl/1\r\nVersion: 1\r\n{fields}\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: digest@example.org\r\nTo: {', '.join(rcpts)}\r\nSubject: Daily\r\n"
        f"Message-ID: {original_id}\r\n\r\n"
        "Hello.\r\n--b--\r\n"
    ).encode()


def test_a_dsn_naming_500_readers_bounces_none_and_is_held(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 500, send=False)
    result = _process(ws, [_multi_dsn([f"reader{n}@example.net" for n in range(1, 501)])])
    assert _statuses(ws) == {"active": 500}, result.output  # before the fix: 500 bounced
    assert "1 held for review" in result.output
    held = json.loads(_invoke(ws, "bounces", "list", "--held", "--json").output)
    assert len(held) == 1 and held[0]["readers"] == 500 and held[0]["report"] == "<multi@relay.example>"
    assert "names several readers" in held[0]["reason"]
    listing = _invoke(ws, "bounces", "list", "--held").output
    assert "<multi@relay.example>" in listing and "500" in listing
    # The same report again (a second run) changes nothing.
    assert (
        "0 new reports" in _process(ws, [_multi_dsn(["reader1@example.net", "reader2@example.net"])]).output
    )


def test_guessed_message_ids_bounce_nobody_and_a_real_one_bounces_its_reader(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 101)
    issue = ws.db().execute("SELECT id FROM issues").fetchone()[0]
    # The old tag was a hash of public values: base URL, domain, issue id and subscriber id.
    forged = []
    for sid in range(1, 101):
        tag = hashlib.sha256(f"{BASE_URL}|{DOMAIN}|{issue}|{sid}".encode()).hexdigest()[:16]
        original = f"<digest.{issue}.{sid}.{tag}@{DOMAIN}>"
        forged.append(
            dsn(
                f"alias{sid}@forwarded.example",
                to="digest@example.org",
                original_id=original,
                mid=f"<f{sid}@x>",
            )
        )
    # Our Message-ID shape with a tag of the right length but a wrong MAC.
    real_id = str(_sent_to(ws, "reader7@example.net")["Message-ID"])
    wrong = re.sub(r"\.([0-9a-f]+)@", lambda m: "." + "0" * len(m.group(1)) + "@", real_id)
    forged.append(
        dsn("alias7@forwarded.example", to="digest@example.org", original_id=wrong, mid="<wrong@x>")
    )
    result = _process(ws, forged)
    assert _statuses(ws) == {"active": 101}, result.output  # before the fix: 100 bounced
    # A genuine report, quoting the Message-ID reader101 was sent, bounces reader101 only.
    genuine = str(_sent_to(ws, "reader101@example.net")["Message-ID"])
    result = _process(ws, [dsn("forwarded@elsewhere.example", to="digest@example.org", original_id=genuine)])
    assert _statuses(ws) == {"active": 100, "bounced": 1}, result.output
    assert (
        ws.db().execute("SELECT status FROM subscribers WHERE email = 'reader101@example.net'").fetchone()[0]
        == "bounced"
    )


def test_an_address_match_acts_only_with_our_quoted_original(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 3)
    # The reader's own address, but the quoted original is not one we sent them: nothing.
    ours_for_2 = str(_sent_to(ws, "reader2@example.net")["Message-ID"])
    result = _process(
        ws,
        [
            dsn("reader1@example.net", to="digest@example.org", mid="<a@x>"),
            dsn(
                "reader1@example.net",
                to="digest@example.org",
                original_id="<x@elsewhere.example>",
                mid="<b@x>",
            ),
            # Reader 2's Message-ID, reader 3's address: two readers named, held.
            dsn("reader3@example.net", to="digest@example.org", original_id=ours_for_2, mid="<c@x>"),
        ],
    )
    assert _statuses(ws) == {"active": 3}, result.output  # before the fix: 2 bounced
    assert "1 held for review" in result.output


def test_forged_complaints_unsubscribe_nobody(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 4)
    result = _process(
        ws,
        [
            _complaint(["reader1@example.net", "reader2@example.net", "reader3@example.net"]),
            _complaint(["reader4@example.net"], mid="<arf2@isp.example>"),
        ],
    )
    assert _statuses(ws) == {"active": 4}, result.output  # before the fix: 2 unsubscribed
    assert "1 held for review" in result.output
    # A genuine complaint quotes the message we sent that reader: it unsubscribes them.
    genuine = str(_sent_to(ws, "reader4@example.net")["Message-ID"])
    result = _process(
        ws, [_complaint(["reader4@example.net"], original_id=genuine, mid="<arf3@isp.example>")]
    )
    assert _statuses(ws) == {"active": 3, "unsubscribed": 1}, result.output


def test_a_verp_report_acts_on_its_one_reader_and_one_naming_others_is_held(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 4, verp=True)
    db = ws.db()
    rows = dict(db.execute("SELECT email, id FROM deliveries").fetchall())
    token = VerpSigner(SECRET).token(rows["reader1@example.net"])
    verp = f"bounces+{token}@example.org"
    result = _process(
        ws,
        [
            _multi_dsn(["reader2@example.net", "reader3@example.net"], to=verp, mid="<two@x>"),
            dsn("reader4@example.net", to="bounces@example.org", mid="<plain@x>"),
        ],
    )
    assert _statuses(ws) == {"active": 4}, result.output  # before the fix: 2 bounced
    result = _process(ws, [dsn("reader1@example.net", to=verp, mid="<one@x>")])
    assert _statuses(ws) == {"active": 3, "bounced": 1}, result.output


def _mailed_unsubscribe(sender: str, mid: str, subject: str = "unsubscribe") -> bytes:
    return (
        f"From: {sender}\r\nTo: unsubscribe@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}@example.net>\r\n\r\nplease remove me\r\n"
    ).encode()


def test_a_mailed_unsubscribe_without_our_token_mails_a_confirmation_link(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 2, send=False)
    result = _process(ws, [_mailed_unsubscribe("Reader One <reader1@example.net>", "u1")])
    assert _statuses(ws) == {"active": 2}, result.output  # before the fix: 1 unsubscribed
    assert "1 confirmation link mailed" in result.output
    sent = [m for m in messages(ws.outbox)]
    assert [m["To"].addresses[0].addr_spec for m in sent] == ["reader1@example.net"]
    box = mailbox.Maildir(str(ws.outbox), create=False)
    body = email.message_from_bytes(box.get_bytes(next(iter(box.iterkeys()))), policy=email.policy.default)
    text = body.get_body(("plain",)).get_content()
    link = re.search(r"https://news\.example\.org/unsubscribe/(\S+)", text)
    assert link is not None, text
    reader1 = ws.db().execute("SELECT id FROM subscribers WHERE email = 'reader1@example.net'").fetchone()[0]
    assert verify_token(SECRET, link.group(1), "unsubscribe") == reader1
    # A flood of forged requests the same day mails that reader no more; a stranger gets nothing.
    flood = [_mailed_unsubscribe("reader1@example.net", f"u{n}") for n in range(2, 12)]
    flood.append(_mailed_unsubscribe("stranger@elsewhere.example", "s1"))
    result = _process(ws, flood)
    assert len(messages(ws.outbox)) == 1, result.output
    assert _statuses(ws) == {"active": 2}
    # With the signed token (what our List-Unsubscribe mailto carries) it takes effect at once.
    token = re.search(r"/unsubscribe/(\S+)", text).group(1)
    _process(ws, [_mailed_unsubscribe("alias@elsewhere.example", "t1", subject=f"unsubscribe {token}")])
    assert _statuses(ws) == {"active": 1, "unsubscribed": 1}
