"""The message builder: MIME structure, headers, encodings, placeholders, DKIM, spam score."""

from __future__ import annotations

import re
import shutil
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

import dkim
import pytest
from delivery_fixtures import make_setup
from mail_checks import dkim_key, spamassassin

from digest.config import Config
from digest.errors import DigestError
from digest.mail.message import build_message, format_address, message_id, prepare_message
from digest.mail.message_ids import message_ids
from digest.render.personalise import PLACEHOLDERS, personalise
from digest.render.variants import RenderedVariant, render_issue
from subscribers.links import subscriber_links
from subscribers.tokens import load_secret

P = PLACEHOLDERS
ISSUE = {"id": 7, "edition": "daily", "subject": "Daily #7"}


def config(**delivery: str) -> Config:
    c = Config()
    c.publication.name = "Harbour Notes"
    c.publication.from_address = "Harbour Notes <news@harbour.example>"
    c.publication.base_url = "https://harbour.example"
    for key, value in delivery.items():
        setattr(c.delivery, key, value)
    return c


def recipient(**over: object) -> dict:
    base = {
        "email": "ada@example.net",
        "name": "Ada Lovelace",
        "unsubscribe_url": "https://harbour.example/unsubscribe/1.abcDEF_-123",
        "preferences_url": "https://harbour.example/preferences/1.xyz",
        "subscriber_id": 1,
    }
    base.update(over)
    return base


def variant(html: str, text: str, subject: str = "Daily #7 · Tide tables") -> RenderedVariant:
    return RenderedVariant(variant="*", subject=subject, preheader="", html=html, text=text, trimmed=0)


def parse(data: bytes):
    return message_from_bytes(data, policy=policy.default)


def fill(text: str, who: dict, *, html: bool) -> str:
    return personalise(text, who, html=html)


def test_structure_and_list_headers() -> None:
    c = config(unsubscribe_mailto="leave@harbour.example")
    r = variant(f"<p>Hi {P['name']}</p>", f"Hi {P['name']}\n")
    data = build_message(c, ISSUE, r, recipient())
    msg = parse(data)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["To"] == "Ada Lovelace <ada@example.net>"
    assert msg["From"] == "Harbour Notes <news@harbour.example>"
    assert message_ids(c).verify(msg["Message-ID"]) == (7, 1)
    assert msg["List-Unsubscribe"] == (
        "<https://harbour.example/unsubscribe/1.abcDEF_-123>, "
        "<mailto:leave@harbour.example?subject=unsubscribe%201.abcDEF_-123>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime is not None
    # Each header on one line, every line well under 998 octets, CRLF throughout.
    head = data.split(b"\r\n\r\n", 1)[0]
    for name in (b"List-Unsubscribe:", b"List-Unsubscribe-Post:", b"List-Id:", b"Message-ID:", b"To:"):
        assert len([h for h in head.split(b"\r\n") if h.startswith(name)]) == 1
    assert all(len(line) < 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_message_id_is_signed_and_unique_per_call() -> None:
    # Stable per ledger row because the ledger stores it; each new one has its own nonce.
    c = config()
    assert message_id(c, 7, 1) != message_id(c, 7, 1)
    assert message_ids(c).verify(message_id(c, 7, 1)) == (7, 1)
    assert re.fullmatch(r"<[^<>@\s]+@harbour\.example>", message_id(c, 7, 1))


def test_placeholders_survive_quoted_printable_wherever_they_sit() -> None:
    # Long lines, placeholders at the wrap column, non-ASCII next to them, '=' signs,
    # lines starting with '.' and 'From ', trailing spaces: the decoded parts must be exactly
    # the rendering with the fields filled in.
    long_html = (
        "<table><tr><td>"
        + "x" * 67
        + f'<a href="{P["unsubscribe_url"]}">é</a>'
        + "=" * 30
        + P["name"]
        + P["email"]
        + "</td></tr></table>\n"
        + ".starts with a dot\nFrom the harbour\ntrailing space   \n"
        + "ü" * 120
        + f"{P['preferences_url']}\n"
    )
    long_text = "\n".join(
        [
            "a" * 74 + P["name"],
            "Read: " + P["unsubscribe_url"] + " or " + P["preferences_url"],
            ". a dot line",
            "From here on",
            "tab\there\t",
            "end",
        ]
    )
    people = [
        recipient(
            name='Zoë "Z" <Ünïcode> & Sons, a rather long name ' + "ß" * 40,
            unsubscribe_url="https://harbour.example/unsubscribe/" + "A" * 120,
        ),
        # Values whose wrapped lines would start with "." or "From ".
        recipient(
            name=".dotted From name",
            unsubscribe_url="https://harbour.example/unsubscribe/" + "A" * 37 + "." + "B" * 80,
            preferences_url="https://harbour.example/p/" + "C" * 47 + "From " + "D" * 70,
        ),
        recipient(name="From Mars", email="from@example.net"),
        recipient(name="x" * 73 + "é" + ".y" * 30),
    ]
    for who in people:
        data = build_message(config(), ISSUE, variant(long_html, long_text), who)
        msg = parse(data)
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        assert html.replace("\r\n", "\n") == fill(long_html, who, html=True)
        assert text.replace("\r\n", "\n") == fill(long_text, who, html=False)
        body = data.split(b"\r\n\r\n", 1)[1]
        for line in body.split(b"\r\n"):
            assert len(line) <= 76, line
            assert not line.startswith(b"."), line
            assert not line.startswith(b"From "), line


def test_placeholders_survive_base64_wherever_they_sit(tmp_path: Path) -> None:
    # Greek goes base64; a fill encodes only around its values, so every alignment (values of
    # 1, 2, 3... bytes), placeholders side by side, at the very start and end, must decode to
    # the rendering with the fields filled in, and signed fills must verify.
    greek = "Καλημέρα από το λιμάνι, παλίρροια και ψαράδες. " * 40
    html = (
        f"{P['name']}<p>{greek}</p>{P['name']}{P['email']}<p>α</p>{P['unsubscribe_url']}"
        f"<p>{greek[:7]}</p>\n{greek}{P['preferences_url']}"
    )
    text = f"{P['name']}\n{greek}\n{P['unsubscribe_url']}{P['preferences_url']}\nτέλος"
    key, record = dkim_key(tmp_path)
    c = config()
    c.dkim.domain, c.dkim.selector, c.dkim.key_file = "harbour.example", "s1", str(key)
    prepared = prepare_message(c, ISSUE, variant(html, text))
    assert prepared._signing is not None  # signed on the fast path: base64 is relaxed-invariant
    for name in ["", "Å", "Åb", "Zoë", "Ωμέγα & <Σία>", "x" * 70, "€" * 64]:
        who = recipient(name=name, email=f"{'a' * (1 + len(name) % 5)}@example.net")
        data = prepared.fill(who)
        assert dkim.verify(data, dnsfunc=lambda n, timeout=5: record), name
        msg = parse(data)
        for kind, source, is_html in (("html", html, True), ("plain", text, False)):
            part = msg.get_body((kind,))
            assert part["Content-Transfer-Encoding"] == "base64"
            assert part.get_content().replace("\r\n", "\n") == fill(source, who, html=is_html), name
        body = data.split(b"\r\n\r\n", 1)[1]
        assert all(len(line) <= 76 for line in body.split(b"\r\n"))


def test_a_prepared_variant_fills_cheaply_and_gives_the_same_bytes_as_build_message() -> None:
    c = config()
    r = variant(f"<p>{P['name']}</p>", f"{P['name']}\n")
    prepared = prepare_message(c, ISSUE, r)
    a = prepared.fill(recipient())
    b = build_message(c, ISSUE, r, recipient())
    strip_date = re.compile(rb"\r\n(Date|Message-ID): [^\r]*")  # the Message-ID's nonce is new each time
    assert strip_date.sub(b"", a) == strip_date.sub(b"", b)
    other = prepared.fill(recipient(email="bob@example.net", name="Bob", subscriber_id=2))
    assert parse(other)["To"] == "Bob <bob@example.net>"
    assert message_ids(c).verify(parse(other)["Message-ID"]) == (7, 2)


def test_non_ascii_subject_and_names_are_rfc2047_encoded() -> None:
    subject = "Tägliche Übersicht #7 · Gezeiten, Häfen und Schiffe — " + "ñ" * 40
    data = build_message(config(), ISSUE, variant("<p>x</p>", "x"), recipient(name="Zoë Ünïcode"))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    data = build_message(
        config(), ISSUE, variant("<p>x</p>", "x", subject=subject), recipient(name="Zoë Ünïcode")
    )
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for word in re.findall(r"=\?[^?]+\?[BQ]\?[^?]*\?=", head):
        assert len(word) <= 75
    msg = parse(data)
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "Zoë Ünïcode"
    raw_subject = re.search(r"Subject: (.*?)\r\n(?! )", head, re.S).group(1)
    assert str(make_header(decode_header(raw_subject))) == subject


def test_header_injection_is_impossible() -> None:
    evil = recipient(name="Eve\r\nBcc: victim@example.com\r\n", unsubscribe_url="https://harbour.example/u/1")
    data = build_message(config(), ISSUE, variant("<p>x</p>", "x", subject="Hi\r\nBcc: x@example.com"), evil)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", head, re.M)
    assert parse(data)["To"].addresses[0].addr_spec == "ada@example.net"
    with pytest.raises(DigestError):
        build_message(config(), ISSUE, variant("x", "x"), recipient(email="a@b.example>\r\nBcc: c@d.example"))
    with pytest.raises(DigestError):
        build_message(
            config(), ISSUE, variant("x", "x"), recipient(unsubscribe_url="https://x.example/a>\r\nX: y")
        )


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x1b", "\x7f"])
def test_an_address_with_a_control_character_is_refused(char: str) -> None:
    email = f"ada{char}lovelace@example.net"
    with pytest.raises(DigestError, match="not an email address"):
        build_message(config(), ISSUE, variant("x", "x"), recipient(email=email))
    prepared = prepare_message(config(), ISSUE, variant("x", "x"))
    with pytest.raises(DigestError):
        prepared.fill(recipient(email=email))
    assert format_address("Ada", "ada.lovelace@example.net") == "Ada <ada.lovelace@example.net>"


def test_a_reply_to_that_is_no_address_says_what_to_write() -> None:
    c = config()
    c.publication.reply_to = "the desk"
    with pytest.raises(
        DigestError, match=r"publication\.reply_to = 'the desk' is not an address; use \"Name <"
    ):
        prepare_message(c, ISSUE, variant("x", "x"))


def test_test_messages_get_a_test_subject_prefix() -> None:
    data = build_message(config(), ISSUE, variant("x", "x", subject="Daily"), recipient(), test=True)
    assert parse(data)["Subject"] == "[TEST] Daily"


@pytest.fixture
def dkim_config(tmp_path: Path) -> tuple[Config, bytes]:
    key, record = dkim_key(tmp_path)
    c = config()
    c.dkim.domain, c.dkim.selector, c.dkim.key_file = "harbour.example", "s2026", str(key)
    return c, record


def test_dkim_signature_verifies_and_covers_the_required_headers(dkim_config) -> None:
    c, record = dkim_config

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"s2026._domainkey.harbour.example." else None

    data = build_message(c, ISSUE, variant(f"<p>{P['name']}</p>", f"{P['name']}"), recipient())
    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=dns)
    signature = parse(data)["DKIM-Signature"]
    signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")}
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    } <= signed
    tampered = data.replace(b"unsubscribe/1.abcDEF", b"unsubscribe/2.abcDEF")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_missing_dkim_key_file_is_a_clear_error(tmp_path: Path) -> None:
    c = config()
    c.dkim.domain, c.dkim.selector, c.dkim.key_file = "harbour.example", "s", str(tmp_path / "nope.pem")
    with pytest.raises(DigestError, match=r"dkim\.key_file"):
        build_message(c, ISSUE, variant("x", "x"), recipient())


def test_spamassassin_scores_a_real_issue_low(tmp_path: Path) -> None:
    if shutil.which("spamassassin") is None:
        pytest.skip("spamassassin is not installed")
    setup = make_setup(tmp_path / "ws", subscribers=2)
    sub = setup.subscribers[1]
    rendered = render_issue(setup.db, setup.config, setup.issue["id"], "*")
    links = subscriber_links(setup.config, load_secret(setup.config), sub)
    who = {**links, "email": sub["email"], "name": sub["name"], "subscriber_id": sub["id"]}
    score, rules, report = spamassassin(
        build_message(setup.config, setup.issue, rendered, who), tmp_path / "home"
    )
    assert score <= 1.0, report.split("Content analysis details")[-1]
    assert all(float(points) <= 1.0 for points, _ in rules), rules


def test_the_fast_fill_escapes_exactly_like_personalise() -> None:
    # fill() calls personalise() once and HTML-escapes its values itself; both must agree.
    tricky = [
        'Zoë "Z" <b>&amp;</b> O\'Neil',
        "Tab\there\r\nnew line",
        "",
        "  spaced  ",
        "https://harbour.example/u/1.a-b_c?x=1&y=<2>",
    ]
    html = "".join(f"[{P[f]}]" for f in ("name", "email", "unsubscribe_url", "preferences_url"))
    for value in tricky:
        who = recipient(name=value, unsubscribe_url="https://harbour.example/u/1", preferences_url=value)
        who["email"] = "ada@example.net"
        msg = parse(build_message(config(), ISSUE, variant(html, html), who))
        assert msg.get_body(("html",)).get_content().rstrip("\r\n") == fill(html, who, html=True)
        assert msg.get_body(("plain",)).get_content().rstrip("\r\n") == fill(html, who, html=False)
