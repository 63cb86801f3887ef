"""Helpers for the bounce tests: a workspace with VERP and a mailto address, the fixtures,
mailboxes to drop them into, DSNs made on the fly. (No tests here.)"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from conftest import new_workspace
from store_switch import store_at

from digest.cli import cli
from digest.mail.message_ids import MessageIds
from digest.mail.verp import VerpSigner
from subscribers.tokens import make_token

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"

# Fixture file → (address it is about, expected kind, the subscriber's status afterwards).
EXPECTED = {
    "dsn-failed-5.1.1.eml": ("gone@example.com", "hard", "bounced"),
    "dsn-delayed-4.4.7.eml": ("slow@example.com", "soft", "active"),
    "dsn-policy-5.7.1.eml": ("strict@example.com", "soft", "active"),
    "exim-failed.eml": ("nobody-here@example.net", "hard", "bounced"),
    "qmail-failed.eml": ("vanished@example.net", "hard", "bounced"),
    "arf-complaint.eml": ("complainer@example.com", "complaint", "unsubscribed"),
    "mailed-unsubscribe.eml": ("leaver@example.com", "unsubscribe", "unsubscribed"),
    "out-of-office.eml": ("holiday@example.com", "other", "active"),
    "altered-verp.eml": ("forged-target@example.com", "other", "active"),
}
SECRET = b"test-secret-not-for-production"  # DIGEST_SECRET in every test (conftest)
# The fixtures written to the bounce address, made genuine: sent to the VERP address of the
# delivery row of the reader they are about (a report without it acts on nobody).
TO_VERP = ("dsn-failed-5.1.1.eml", "dsn-delayed-4.4.7.eml", "dsn-policy-5.7.1.eml", "exim-failed.eml")
TO_VERP += ("qmail-failed.eml", "arf-complaint.eml")

CONFIG = """
[publication]
name = "Bounce Test"
from = "Bounce Test <digest@news.example.org>"
base_url = "https://news.example.org"
postal_address = "1 Test Street, Testville"

[delivery]
transport = "maildir:outbox"
bounce_address = "bounces@news.example.org"
unsubscribe_mailto = "unsubscribe@news.example.org"

[editions.daily]
schedule = "0 7 * * *"
"""


@dataclass
class BounceWorkspace:
    """A config with VERP and a mailto address, its database, and the fixture subscribers."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "digest.toml"

    def db(self):
        return store_at(self.root / "digest.db")

    def invoke(self, *args: str):
        return CliRunner().invoke(cli, ["--config", str(self.config_path), *args])

    def status(self, email: str) -> str:
        return self.db().execute("SELECT status FROM subscribers WHERE email = ?", [email]).fetchone()[0]

    def snapshot(self) -> tuple:
        """Everything a run may change: subscribers, events, bounces, processed messages."""
        db = self.db()
        return tuple(
            db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("subscribers", "events", "bounces", "bounce_messages", "deliveries")
        )


def make_bounce_workspace(root: Path, extra_config: str = "") -> BounceWorkspace:
    """The fixture readers (ids 1, 2... in EXPECTED's order), each sent issue 1 (delivery row
    ids 1, 2... in the same order), which is what :func:`fixture_bytes` reports about."""
    readers = [{"email": address, "status": "active"} for address, _kind, _status in EXPECTED.values()]
    new_workspace(root, config=CONFIG + extra_config, subscribers=readers)
    ids = MessageIds(SECRET, "news.example.org")
    db = store_at(root / "digest.db")
    stamp = "2026-11-03T06:00:00+00:00"
    issue = db.execute(
        "INSERT INTO issues (edition, number, period_start, period_end, subject, status, created_at)"
        " VALUES ('daily', 100, ?, ?, 'Daily', 'sent', ?)",
        ["2026-10-01T00:00:00+00:00", "2026-10-02T00:00:00+00:00", stamp],
    ).lastrowid
    for n, (address, _kind, _status) in enumerate(EXPECTED.values(), start=1):
        (subscriber_id,) = db.execute("SELECT id FROM subscribers WHERE email = ?", [address]).fetchone()
        delivery = db.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, email, status, updated_at, sent_at, message_id)"
            " VALUES (?, ?, ?, 'sent', ?, ?, ?)",
            [issue, subscriber_id, address, stamp, stamp, ids.make(issue, subscriber_id)],
        ).lastrowid
        assert subscriber_id == delivery == n, "fixture_bytes() relies on these ids"
    db.close()
    return BounceWorkspace(root)


def fixture_bytes() -> dict[str, bytes]:
    """The fixtures as genuine reports to a :func:`make_bounce_workspace`: the bounces and the
    complaint sent to their reader's VERP address, the mailed unsubscribe carrying their token."""
    verp = VerpSigner(SECRET)
    out = {}
    for n, name in enumerate(EXPECTED, start=1):
        data = (FIXTURES / name).read_bytes()
        if name in TO_VERP:
            data = data.replace(
                b"bounces@news.example.org", f"bounces+{verp.token(n)}@news.example.org".encode()
            )
        if name == "mailed-unsubscribe.eml":
            token = make_token(SECRET, n, "unsubscribe")
            data = data.replace(b"Subject: unsubscribe\n", f"Subject: unsubscribe {token}\n".encode())
        out[name] = data
    return out


def fill_maildir(path: Path, messages: list[bytes]) -> mailbox.Maildir:
    box = mailbox.Maildir(str(path), create=True)
    for data in messages:
        box.add(data)
    return box


def fill_mbox(path: Path, messages: list[bytes]) -> None:
    box = mailbox.mbox(str(path), create=True)
    for data in messages:
        box.add(data)
    box.flush()
    box.close()


def dsn(
    recipient: str,
    *,
    to: str = "bounces@news.example.org",
    action: str = "failed",
    status: str = "5.1.1",
    original_id: str | None = None,
    mid: str = "<dsn@relay.example>",
) -> bytes:
    """An RFC 3464 report about ``recipient``, sent to ``to`` (a VERP address, say)."""
    quoted = ""
    if original_id:
        quoted = (
            "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"From: digest@news.example.org\r\nTo: {recipient}\r\nMessage-ID: {original_id}\r\n\r\n"
        )
    return (
        f"From: MAILER-DAEMON@relay.example\r\nTo: {to}\r\nSubject: Delivery Status Notification\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nIt did not work.\r\n\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        f"{quoted}--b--\r\n"
    ).encode()


def reader_dsn(recipient: str, **kwargs: str) -> bytes:
    """A genuine :func:`dsn` about a fixture reader of :func:`make_bounce_workspace`: sent to the
    VERP address of that reader's delivery row (a report without it acts on nobody)."""
    delivery_id = [address for address, _kind, _status in EXPECTED.values()].index(recipient) + 1
    return dsn(recipient, to=f"bounces+{VerpSigner(SECRET).token(delivery_id)}@news.example.org", **kwargs)


def nesting_bomb(depth: int, *, mid: str = "<nested-bomb@attacker.example>") -> bytes:
    """A message whose MIME parts nest ``depth`` deep (1000: 68 KB), each a multipart/mixed."""
    head = (
        "From: someone@attacker.example\r\nTo: bounces@news.example.org\r\nSubject: nested\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
    )
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return (head + opening + "Content-Type: text/plain\r\n\r\nx\r\n" + closing).encode()
