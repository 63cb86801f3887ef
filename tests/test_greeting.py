"""The greeting: ``[render] greeting`` with the reader's first name (a ``first_name`` attribute,
else the name's first word), ``greeting_anonymous`` without one; filled per reader at send time
in bytes rendered once per variant."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from test_render_support import fixture_issue, make_store

from digest.mail.message import build_message
from digest.render.personalise import PLACEHOLDERS, greeting, personalise
from digest.render.variants import render_issue

PAIR = ("Good morning, {first_name}!", "Good morning!")


def test_the_first_name_comes_from_the_attribute_else_the_names_first_word() -> None:
    assert greeting("Ada Lovelace", {}, PAIR) == "Good morning, Ada!"
    assert greeting("Countess Lovelace", {"first_name": "Ada"}, PAIR) == "Good morning, Ada!"
    assert greeting("", {}, PAIR) == "Good morning!"
    assert greeting("  ", {"first_name": " "}, PAIR) == "Good morning!"
    assert greeting("ada@example.org", {}, PAIR) == "Good morning!"  # an address is not a name
    assert greeting("Ada Lovelace", {}, ("Dear {name},", "Dear reader,")) == "Dear Ada Lovelace,"


def test_the_greeting_is_escaped_in_html_and_plain_in_text() -> None:
    rendered = f"<p>{PLACEHOLDERS['greeting']}</p>"
    fields = {"name": "<b>Al</b> & co"}
    html = personalise(rendered, fields, html=True, greeting_pair=PAIR)
    assert html == "<p>Good morning, &lt;b&gt;Al&lt;/b&gt;!</p>"
    assert personalise(rendered, fields, html=False, greeting_pair=PAIR) == "<p>Good morning, <b>Al</b>!</p>"


def test_each_reader_gets_their_greeting_in_the_bytes_sent(tmp_path: Path) -> None:
    config, db = make_store(tmp_path / "ws")
    config.render.greeting, config.render.greeting_anonymous = PAIR
    issue = fixture_issue(config, db)
    rendered = render_issue(db, config, issue["id"])
    base = {"unsubscribe_url": "https://x.example/u/t", "preferences_url": "https://x.example/p/t"}
    readers = {
        "ada@example.org": {"name": "Countess Lovelace", "attributes": {"first_name": "Ada"}},
        "bob@example.org": {"name": "Bob Smith", "attributes": "{}"},
        "cy@example.org": {"name": "", "attributes": None},
    }
    seen = {}
    for address, reader in readers.items():
        raw = build_message(config, issue, rendered, {**base, **reader, "email": address, "subscriber_id": 1})
        message = email.message_from_bytes(raw, policy=email.policy.SMTP)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        seen[address] = text.splitlines()[3]
        assert "Reader" not in text and "Reader" not in html and seen[address] in html
    assert seen == {
        "ada@example.org": "Good morning, Ada! Here are 5 stories.",
        "bob@example.org": "Good morning, Bob! Here are 5 stories.",
        "cy@example.org": "Good morning! Here are 5 stories.",
    }
