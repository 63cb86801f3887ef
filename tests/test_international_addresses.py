"""International addresses (RFC 6531): accepted and normalised at `add`, import and sign-up
(the sign-up form's own test is in test_signup_web.py), refused over RFC 5321's octet limits,
and sent with SMTPUTF8 through a relay that offers it; through one that does not, those
readers fail alone with the reason and the run goes on. Maildir and mbox take them as they are.
"""

from __future__ import annotations

import json
import mailbox
import unicodedata
from contextlib import closing
from email import message_from_string, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup
from smtp_server import Handler, SMTPServer
from store_switch import store_at

from digest.cli import cli
from subscribers.model import InvalidValue, normalize_email

# Valid international addresses, as a reader types them, and as digest stores them.
INTERNATIONAL = {
    "юзер@екзампл.ком": "юзер@xn--80ajglhfv.xn--j1aef",
    "ñoñó@example.tld": "ñoñó@example.tld",
    unicodedata.normalize("NFD", "ñoñó@example.tld"): "ñoñó@example.tld",  # NFC
    "ÑOÑÓ@Example.TLD": "ñoñó@example.tld",
    "用户@例子.广告": "用户@xn--fsqu00a.xn--4rr70v",
    "अजय@डाटा.भारत": "अजय@xn--c2bd1gb.xn--h2brj9c",
    "квіточка@пошта.укр": "квіточка@xn--80a1acn3a.xn--j1amh",
    "δοκιμή@παράδειγμα.δοκιμή": "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp",
    "Dörte@Sörensen.example.com": "dörte@xn--srensen-90a.example.com",
    "יוניקוד@דוגמה.ישראל": "יוניקוד@xn--6dbbec0c.xn--4dbrk0ce",
    "二ノ宮@黒川.日本": "二ノ宮@xn--5rtw95l.xn--wgv71a",
    "θσερ@εχαμπλε.ψομ": "θσερ@xn--mxahbxey0c.xn--xxaf0a",
    "chloé+news@example.org": "chloé+news@example.org",
    "mañana.o'neil@example.org": "mañana.o'neil@example.org",
    "я" * 32 + "@example.org": "я" * 32 + "@example.org",  # 64 octets: the most a local part may have
}
# Over RFC 5321's limits (local part 64 octets, address 254), counted in octets.
TOO_LONG = {
    "a" * 65 + "@example.org": "65 octets",
    "a!" + "b" * 63 + "@example.org": "65 octets",
    "x" * 65 + "@bücher.example": "65 octets",
    "я" * 33 + "@example.org": "66 octets",
    "ü" * 30 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 62 + ".org": "too long",  # 225 chars, 255 octets
    "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".org": "too long",
}


@pytest.mark.parametrize(("typed", "stored"), INTERNATIONAL.items())
def test_international_addresses_are_accepted_and_normalised(typed: str, stored: str) -> None:
    assert normalize_email(typed) == stored


@pytest.mark.parametrize(("typed", "why"), TOO_LONG.items())
def test_over_long_addresses_are_refused(typed: str, why: str) -> None:
    with pytest.raises(InvalidValue, match=why):
        normalize_email(typed)


def test_add_and_import_take_international_addresses(run_cli, workspace: Path) -> None:
    assert run_cli("subscribers", "add", "Юзер@екзампл.ком").exit_code == 0
    typed = [t for t in INTERNATIONAL if t != "Юзер@екзампл.ком"]
    Path("people.csv").write_text("email\n" + "\n".join(typed) + "\n" + "a" * 65 + "@example.org\n")
    result = run_cli("subscribers", "import", "people.csv", "--skip-invalid", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    stored = set(INTERNATIONAL.values())
    # Three spellings are one address already stored or read (NFD/NFC, case), the long one is refused.
    assert (report["added"], report["invalid"]) == (len(stored) - 1, 1)
    listed = json.loads(run_cli("subscribers", "list", "--json").output)
    assert {r["email"] for r in listed} == stored


# ---------------------------------------------------------------- sending

ASCII_READERS = 6
INTERNATIONAL_READERS = ["ñoñó@example.tld", "юзер@xn--80ajglhfv.xn--j1aef", "二ノ宮@xn--5rtw95l.xn--wgv71a"]


@pytest.fixture
def mixed(tmp_path: Path) -> Setup:
    setup = make_setup(tmp_path / "ws", subscribers=ASCII_READERS)
    for address in INTERNATIONAL_READERS:
        result = CliRunner().invoke(
            cli, ["--config", str(setup.config_file), "subscribers", "add", address, "--name", "Ñandú"]
        )
        assert result.exit_code == 0, result.output
    return setup


def to_address(data: bytes) -> str:
    """The address in a message's To: header, read as UTF-8 (RFC 6532)."""
    message = message_from_string(data.decode("utf-8"), policy=policy.SMTPUTF8)
    return message["To"].addresses[0].addr_spec


def send(setup: Setup, url: str):
    return CliRunner().invoke(cli, ["--config", str(setup.config_file), "send", "1", "--transport", url])


def test_a_relay_with_smtputf8_gets_every_reader(mixed: Setup) -> None:
    with SMTPServer(Handler(), smtputf8=True) as server:
        result = send(mixed, server.url)
    assert result.exit_code == 0, result.output
    got = server.handler.per_recipient()
    assert len(got) == ASCII_READERS + len(INTERNATIONAL_READERS)
    assert all(got[a] == 1 for a in INTERNATIONAL_READERS)
    rows = mixed.rows()
    assert {r["status"] for r in rows.values()} == {"sent"}
    for received in server.handler.received:
        [to] = received.rcpt_tos
        if to in INTERNATIONAL_READERS:
            assert to_address(received.data) == to  # UTF-8 in the header (RFC 6532)


def test_a_relay_without_smtputf8_fails_those_readers_alone(mixed: Setup) -> None:
    with SMTPServer(Handler()) as server:
        result = send(mixed, server.url)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    got = server.handler.per_recipient()
    assert sorted(got) == sorted(f"reader{i}@example.net" for i in range(ASCII_READERS))
    assert server.handler.rcpt_attempts.keys().isdisjoint(INTERNATIONAL_READERS)  # never tried
    rows = mixed.rows()
    for address in INTERNATIONAL_READERS:
        assert rows[address]["status"] == "failed"
        assert "relay does not accept international addresses" in rows[address]["last_error"]
        assert mixed.status_of(address) == "active"  # not a bounce: the reader did nothing wrong
    assert sum(r["status"] == "sent" for r in rows.values()) == ASCII_READERS


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_maildir_and_mbox_take_them_as_they_are(mixed: Setup, kind: str) -> None:
    target = mixed.path / f"out-{kind}"
    result = send(mixed, f"{kind}:{target}")
    assert result.exit_code == 0, result.output
    box = mailbox.Maildir(str(target), create=False) if kind == "maildir" else mailbox.mbox(str(target))
    found = set()
    for key in box.iterkeys():
        found.add(to_address(box.get_bytes(key)))
    assert set(INTERNATIONAL_READERS) <= found
    assert len(found) == ASCII_READERS + len(INTERNATIONAL_READERS)


@pytest.mark.parametrize("smtputf8", [True, False])
def test_a_confirmation_to_an_international_address(
    run_cli, edit_config, workspace: Path, smtputf8: bool
) -> None:
    """Transactional mail (the outbox) goes the same way: with SMTPUTF8 it arrives, addressed in
    UTF-8; without, that one message fails with the reason and the ASCII one still goes."""
    with SMTPServer(Handler(), smtputf8=smtputf8) as server:
        edit_config('transport = "maildir:outbox"', f'transport = "{server.url}"')
        for address in ("ñoñó@example.tld", "plain@example.org"):
            assert run_cli("subscribers", "add", address, "--pending").exit_code == 0
    got = server.handler.per_recipient()
    assert got["plain@example.org"] == 1
    with closing(store_at(workspace / "digest.db")) as conn:
        status, error = conn.execute(
            "SELECT status, last_error FROM outbox WHERE email = 'ñoñó@example.tld'"
        ).fetchone()
    if smtputf8:
        assert (status, got["ñoñó@example.tld"]) == ("sent", 1)
        [received] = [r for r in server.handler.received if r.rcpt_tos == ["ñoñó@example.tld"]]
        assert to_address(received.data) == "ñoñó@example.tld"
    else:
        assert status == "failed" and "relay does not accept international addresses" in error
        assert "ñoñó@example.tld" not in got
