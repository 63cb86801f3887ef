"""Helpers for the bounce tests: a workspace with VERP and a mailto address, the fixtures,
mailboxes to drop them into, DSNs made on the fly. (No tests here.)"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from conftest import new_workspace

from digest.cli import cli
from digest.store import open_store

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
        return open_store(self.root / "digest.db")

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
    readers = [{"email": address, "status": "active"} for address, _kind, _status in EXPECTED.values()]
    new_workspace(root, config=CONFIG + extra_config, subscribers=readers)
    return BounceWorkspace(root)


def fixture_bytes() -> dict[str, bytes]:
    return {name: (FIXTURES / name).read_bytes() for name in EXPECTED}


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
