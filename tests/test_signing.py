"""DKIM: over-signed headers, Feedback-ID, and the OpenSSL signer matching dkimpy byte for byte."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from mail_checks import dkim_key

from digest.config import Config
from digest.mail.message import build_message
from digest.mail.signing import DkimSigner, dkim_signer, signed_header_list
from digest.render.variants import RenderedVariant

ISSUE = {"id": 7, "edition": "daily", "subject": "Daily #7"}
WHO = {
    "email": "ada@example.net",
    "name": "Ada Lovelace",
    "unsubscribe_url": "https://harbour.example/unsubscribe/1.abcDEF_-123",
    "preferences_url": "https://harbour.example/preferences/1.xyz",
    "subscriber_id": 1,
}
RENDERED = RenderedVariant(
    variant="*", subject="Daily #7 · Tide tables", preheader="", html="<p>Tides</p>", text="Tides", trimmed=0
)


@pytest.fixture
def signed(tmp_path: Path):
    """(config, DNS lookup) for a throwaway RSA key; Reply-To set."""
    key, record = dkim_key(tmp_path)
    c = Config()
    c.publication.name = "Harbour Notes: Weekly!"
    c.publication.from_address = "Harbour Notes <news@harbour.example>"
    c.publication.reply_to = "Desk <desk@harbour.example>"
    c.publication.base_url = "https://harbour.example"
    c.dkim.domain, c.dkim.selector, c.dkim.key_file = "harbour.example", "s2026", str(key)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"s2026._domainkey.harbour.example." else None

    return c, dns


def h_list(data: bytes) -> list[str]:
    signature = message_from_bytes(data, policy=policy.default)["DKIM-Signature"]
    return [h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")]


def test_every_listed_header_is_signed_once_more_than_it_occurs(signed) -> None:
    c, dns = signed
    data = build_message(c, ISSUE, RENDERED, WHO)
    assert dkim.verify(data, dnsfunc=dns)
    listed = h_list(data)
    for name in ("cc", "sender", "in-reply-to", "references", "list-help"):
        assert listed.count(name) == 1, name
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-archive",
        "mime-version",
        "content-type",
        "feedback-id",
    ):
        assert listed.count(name) == 2, name


@pytest.mark.parametrize(
    "added",
    [
        b"Subject: You won a prize\r\n",
        b"List-Unsubscribe: <https://evil.example/u>\r\n",
        b"Reply-To: thief@evil.example\r\n",
        b"From: Bank <bank@evil.example>\r\n",
    ],
)
def test_adding_a_second_copy_of_a_signed_header_breaks_the_signature(signed, added: bytes) -> None:
    c, dns = signed
    data = build_message(c, ISSUE, RENDERED, WHO)
    assert dkim.verify(data, dnsfunc=dns)
    head, _, rest = data.partition(b"\r\nTo: ")
    assert not dkim.verify(head + b"\r\n" + added.rstrip(b"\r\n") + b"\r\nTo: " + rest, dnsfunc=dns)
    assert not dkim.verify(added + data, dnsfunc=dns)


def test_absent_headers_are_listed_once_so_adding_one_breaks_the_signature() -> None:
    without = signed_header_list([(b"From", b"x"), (b"Subject", b"y")])
    assert without.count(b"reply-to") == 1 and without.count(b"subject") == 2 and without.count(b"to") == 1
    assert signed_header_list([(b"Reply-To", b"x")]).count(b"reply-to") == 2


ABSENT = [
    b"Reply-To: thief@evil.example",
    b"Cc: victim@example.org",
    b"Sender: Bank <bank@evil.example>",
    b"In-Reply-To: <order-1234@shop.example>",
    b"References: <order-1234@shop.example>",
    b"List-Archive: <https://evil.example/archive>",
    b"List-Help: <https://evil.example/help>",
    b"List-Post: <mailto:all@evil.example>",
    b"List-Subscribe: <https://evil.example/join>",
    b"List-Owner: <mailto:owner@evil.example>",
    b"Content-Transfer-Encoding: base64",
]


@pytest.mark.parametrize("added", ABSENT, ids=lambda h: h.split(b":")[0].decode())
def test_adding_a_header_the_message_lacks_breaks_the_signature(signed, added: bytes) -> None:
    c, dns = signed
    c.publication.reply_to = ""  # the default: no Reply-To, so one added on the way must fail
    data = build_message(c, ISSUE, PERSONAL, WHO)
    assert dkim.verify(data, dnsfunc=dns)
    head, _, rest = data.partition(b"\r\nTo: ")
    # Before: Reply-To, Cc, Sender, In-Reply-To, References, List-Help... added still verified.
    assert not dkim.verify(head + b"\r\n" + added + b"\r\nTo: " + rest, dnsfunc=dns)
    assert not dkim.verify(added + b"\r\n" + data, dnsfunc=dns)


def test_signed_relaxed_relaxed_with_list_archive_and_long_headers_folded(signed) -> None:
    c, dns = signed
    c.delivery.unsubscribe_mailto = "leave@harbour.example"
    data = build_message(c, ISSUE, PERSONAL, {**WHO, "name": "Ada Augusta King, Countess of Lovelace " * 2})
    signature = message_from_bytes(data, policy=policy.default)["DKIM-Signature"]
    assert "c=relaxed/relaxed" in re.sub(r"\s", "", signature)
    assert h_list(data).count("list-archive") == 2
    head = data.split(b"\r\n\r\n", 1)[0]
    # Before: List-Unsubscribe was one line of 209 octets.
    for line in head.split(b"\r\n"):
        value = line.split(b": ", 1)[-1].strip()
        assert len(line) <= 78 or b" " not in value, line  # over 78 only with no space to fold at
    assert re.search(rb"\r\nList-Unsubscribe: <https://[^\r]*>,\r\n <mailto:", data)
    assert dkim.verify(data, dnsfunc=dns)
    # A relay that re-wraps whitespace (spaces before line ends, a header refolded) keeps it valid.
    body_at = data.index(b"\r\n\r\n", data.index(b"\r\nTo: ")) + 4
    rewrapped = data[:body_at] + data[body_at:].replace(b"\r\n", b" \r\n")
    assert dkim.verify(rewrapped.replace(b">,\r\n <mailto:", b">, <mailto:"), dnsfunc=dns)


def test_feedback_id_names_campaign_edition_and_publication(signed) -> None:
    c, _ = signed
    msg = message_from_bytes(build_message(c, ISSUE, RENDERED, WHO), policy=policy.default)
    assert msg["Feedback-ID"] == "issue-7:daily:harbour-notes-weekly"


def test_the_openssl_signer_writes_exactly_what_dkimpy_writes(signed) -> None:
    c, dns = signed
    fast = dkim_signer(c)
    assert fast is not None and fast._rsa is not None
    slow = DkimSigner(fast.domain, fast.selector, fast.key)
    object.__setattr__(slow, "_rsa", None)  # dkimpy's own RSA
    key_file, c.dkim.key_file = c.dkim.key_file, ""
    unsigned = build_message(c, ISSUE, RENDERED, WHO)
    c.dkim.key_file = key_file
    assert unsigned.startswith(b"To: ")
    for _ in range(3):  # t= is the current second: retry if the clock ticked between the two
        second = int(time.time())
        a, b = fast.sign(unsigned), slow.sign(unsigned)
        if int(time.time()) == second:
            break
    assert a == b
    assert dkim.verify(a, dnsfunc=dns)


# ---------------------------------------------------------------- the prepared signer of fills

P = {f: f"__DIGEST_{f.upper()}__" for f in ("name", "email", "unsubscribe_url", "preferences_url")}
PERSONAL = RenderedVariant(
    variant="*",
    subject="Daily #7 · Tide tables",
    preheader="",
    html=(
        f"<p>Hello {P['name']},</p>\n<p>{'Tides and  cranes. ' * 400}</p>\n"
        f'<a href="{P["unsubscribe_url"]}">Unsubscribe</a> <a href="{P["preferences_url"]}">Prefs</a>\n'
        f"<p>Sent to {P['email']}</p>"
    ),
    text=f"Hello {P['name']},\n\nTides.\t Cranes.  \n\nUnsubscribe: {P['unsubscribe_url']}\n",
    trimmed=0,
)
READERS = [
    WHO,
    {**WHO, "email": "bo@example.net", "name": "", "subscriber_id": 2},
    {
        **WHO,
        "email": "zoe@example.net",
        "name": 'Zoë "the Pilot" Ångström-Łukasiewicz ' * 3,
        "subscriber_id": 3,
    },
    {**WHO, "email": "x@example.net", "name": "Tab\tand  spaces ", "subscriber_id": 4},
    {**WHO, "email": "ñoñó@xn--exmple-cua.org", "name": "Ñandú", "subscriber_id": 5},  # RFC 6532 To:
]


def unsigned_part(message: bytes) -> bytes:
    """``message`` without the DKIM-Signature field in front (the fill writes To: first)."""
    assert message.startswith(b"DKIM-Signature: ")
    return message[message.index(b"\r\nTo: ") + 2 :]


def test_each_fill_is_signed_without_dkimpy_and_exactly_as_dkimpy_signs_it(signed) -> None:
    from digest.mail.message import prepare_message

    c, dns = signed
    prepared = prepare_message(c, ISSUE, PERSONAL)
    assert prepared._signing is not None  # the prepared signer, not a parse per message
    slow = DkimSigner(prepared.signer.domain, prepared.signer.selector, prepared.signer.key)
    object.__setattr__(slow, "_rsa", None)  # dkimpy parses, canonicalises and signs
    for reader in READERS:
        for _ in range(3):  # t= is the current second: retry if the clock ticked between the two
            second = int(time.time())
            fast = prepared.fill(reader)
            slow_signed = slow.sign(unsigned_part(fast))
            if int(time.time()) == second:
                break
        assert fast == slow_signed, reader["email"]
        assert dkim.verify(fast, dnsfunc=dns), reader["email"]
        assert h_list(fast).count("to") == 2 and h_list(fast).count("list-unsubscribe") == 2


def test_a_body_not_ending_in_one_crlf_falls_back_to_dkimpy_canonicalisation(signed) -> None:
    import dataclasses

    from digest.mail.message import prepare_message

    c, dns = signed
    prepared = prepare_message(c, ISSUE, PERSONAL)
    # Simple canonicalisation drops trailing empty lines: hashing the bytes as they are would be wrong.
    padded = dataclasses.replace(
        prepared, segments=[*prepared.segments[:-1], prepared.segments[-1] + b"\r\n"]
    )
    assert padded._signing is None
    message = padded.fill(WHO)
    assert message.endswith(b"--\r\n\r\n") and dkim.verify(message, dnsfunc=dns)
    assert prepared.signer.prepare((b"To",), b"X: y\r\n\r\n", [b"a", b"\r\n"]) is None  # empty-line body
    assert prepared.signer.prepare((b"To",), b"X: y\r\n\r\n", [b"a", b"b"]) is None  # no final CRLF
    # Relaxed body canonicalisation would change these: hashed as they are, they would not verify.
    assert prepared.signer.prepare((b"To",), b"X: y\r\n\r\n", [b"a  b", b"\r\n"]) is None
    assert prepared.signer.prepare((b"To",), b"X: y\r\n\r\n", [b"a \r\nb", b"\r\n"]) is None


@pytest.mark.parametrize(
    "value",
    [
        b"plain value",
        b" lead and trail ",
        b"tab\there",
        b"two  spaces",
        b"=?UTF-8?B?QQ==?=\r\n =?UTF-8?B?Qg==?=",
    ],
)
def test_relaxed_value_is_dkimpys_relaxed_canonicalisation(value: bytes) -> None:
    from dkim.canonicalization import Relaxed

    from digest.mail.signing import relaxed_value

    ((_, expected),) = Relaxed.canonicalize_headers([(b"X", value)])
    assert relaxed_value(value) + b"\r\n" == expected
