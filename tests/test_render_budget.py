"""The clipping budget: Gmail clips at ~102 KB of the message as sent, so the HTML part is
measured as it goes on the wire (quoted-printable or base64, the shorter), with the longest
values a reader can fill in, not as decoded text."""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_render_support import PERIOD_END, add_article, big_issue, make_store

from digest.cli import cli
from digest.compose.build import compose_issue
from digest.errors import DigestError
from digest.mail.message import build_message
from digest.mail.transports.memory import outbox
from digest.render.size_budget import html_budget_size, wire_size
from digest.render.variants import render_issue
from digest.render.wire import link_room
from subscribers.store import add_subscriber

RECIPIENT = {
    "subscriber_id": 1,
    "name": "Ада Лавлейс",
    "email": "ada@example.org",
    "unsubscribe_url": "https://news.harbour-gazette.example/unsubscribe/" + "x" * 80,
    "preferences_url": "https://news.harbour-gazette.example/preferences/" + "y" * 80,
}

_GREEK = [
    "λιμάνι",
    "συμβούλιο",
    "φράγμα",
    "παλίρροια",
    "μηχανικοί",
    "μετρήσεις",
    "κάτοικοι",
    "κόστος",
    "ψαράδες",
    "αγορά",
]


def _html_part_on_the_wire(message: bytes) -> bytes:
    """The HTML part's body bytes exactly as sent (still encoded)."""
    start = message.index(b"Content-Type: text/html")
    body = message.index(b"\r\n\r\n", start) + 4
    end = message.index(b"\r\n--=_digest_", body)
    return message[body:end]


def non_latin_issue(tmp_path: Path, count: int = 80):
    config, db = make_store(tmp_path / "ws")
    rng = random.Random(7)
    for i in range(count):
        add_article(
            db,
            title=" ".join(rng.choice(_GREEK) for _ in range(9)) + f" {i}",
            category=["World", "Technology", "Science", "Culture"][i % 4],
            published_at=PERIOD_END - timedelta(minutes=5 * i + 1),
            source="Λιμενική Εφημερίδα",
            summary=" ".join(rng.choice(_GREEK) for _ in range(60)) + ".",
        )
    issue = compose_issue(db, config, "big", period_end=PERIOD_END).issue
    assert issue is not None
    return config, db, issue


def _part_encoding(message: bytes, kind: str) -> bytes:
    start = message.index(b"Content-Type: text/" + kind.encode())
    return re.search(rb"Content-Transfer-Encoding: ([\w-]+)", message[start:]).group(1)


def test_a_non_latin_part_goes_base64_and_the_budget_counts_what_is_sent(tmp_path: Path) -> None:
    config, db, issue = non_latin_issue(tmp_path, 20)
    rendered = render_issue(db, config, issue["id"])
    message = build_message(config, issue, rendered, RECIPIENT)
    wire = _html_part_on_the_wire(message)
    assert _part_encoding(message, "html") == b"base64"
    # Quoted-printable would have taken half as much again.
    assert wire_size(rendered.html) > 1.4 * len(wire), (wire_size(rendered.html), len(wire))
    # The budget is the most a fill can reach: never below what is sent, not far above.
    budget = html_budget_size(rendered.html, url_chars=link_room(config.publication.base_url))
    assert len(wire) <= budget < len(wire) + 3000, (budget, len(wire))  # an address may be 254 × "&#x27;"


def test_a_greek_issue_of_150_stories_carries_as_many_as_the_bytes_allow(tmp_path: Path) -> None:
    config, db, issue = non_latin_issue(tmp_path, 150)
    rendered = render_issue(db, config, issue["id"])
    carried = 150 - rendered.trimmed
    wire = _html_part_on_the_wire(build_message(config, issue, rendered, RECIPIENT))
    print(f"Greek issue: {carried} of 150 stories, HTML part {len(wire):,} bytes as sent")
    assert len(wire) <= config.render.max_html_bytes
    # Before: 20 stories, in quoted-printable (97,021 bytes); base64 carries 33 in 95,326.
    assert carried >= 30, carried


def test_a_reader_named_with_200_emoji_gets_the_issue_within_the_budget_as_sent(tmp_path: Path) -> None:
    config, db = make_store(tmp_path / "ws")
    big_issue(config, db, 400)
    add_subscriber(db, "emoji@example.org", name="\U0001f600" * 200, editions=["big"])
    result = CliRunner().invoke(
        cli, ["--config", str(config.source), "send", "1", "--transport", "memory:budget"]
    )
    assert result.exit_code == 0, result.output
    (sent,) = outbox("budget")
    html_part = _html_part_on_the_wire(sent.message)
    # The greeting shows the name cut for display ("Hello, " and 56 of the 200 emoji, 64 in all).
    assert "\U0001f600" * 50 in sent.parsed().get_body(("html",)).get_content()
    # Before: 101,531 bytes: 200 emoji are 2,400 in quoted-printable, the budget kept 200 a field.
    print(f"200-emoji reader: HTML part {len(html_part):,} bytes as sent")
    assert len(html_part) <= config.render.max_html_bytes, len(html_part)


def test_a_trimmed_non_latin_issue_fits_the_budget_as_sent(tmp_path: Path) -> None:
    config, db, issue = non_latin_issue(tmp_path)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed > 0
    message = build_message(config, issue, rendered, RECIPIENT)
    html_part = _html_part_on_the_wire(message)
    print(f"200-emoji reader: HTML part {len(html_part):,} bytes as sent")
    assert len(html_part) <= config.render.max_html_bytes, len(html_part)
    # Not trimmed to nothing: the budget is used.
    assert len(html_part) > 0.8 * config.render.max_html_bytes
    decoded = message_from_bytes(message, policy=policy.default).get_body(("html",)).get_content()
    assert "<h3" in decoded


def _six_stories(tmp_path: Path, long_summary: str):
    """Six stories in two sections; the newest carries ``long_summary`` straight into the
    store (as a row ingested before summaries were cut by characters would)."""
    config, db = make_store(tmp_path / "ws")
    for i in range(6):
        add_article(
            db,
            title=f"Story {i} about the {['harbour', 'council', 'ferry', 'school', 'market', 'tide'][i]}",
            category=["World", "Science"][i % 2],
            published_at=PERIOD_END - timedelta(minutes=10 * i + 1),
            summary=long_summary if i == 0 else f"An ordinary summary of story {i}.",
        )
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    return config, db, issue


def test_one_long_word_in_a_stored_summary_is_cut_and_every_story_stays(tmp_path: Path) -> None:
    config, db, issue = _six_stories(tmp_path, "x" * 200_000)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed == 0  # was 6: "here are 0 of 6 stories"
    assert "Here are 6 stories." in rendered.text
    assert all(f"Story {i} about" in rendered.html for i in range(6))
    assert html_budget_size(rendered.html) <= config.render.max_html_bytes
    assert "x" * 41 not in rendered.html and "x" * 41 not in rendered.text.replace("\n", "")
    assert "…" in rendered.text


def _replace_story(db, issue: dict, story_id: int, **fields) -> dict:
    snapshot = json.loads(issue["snapshot"])
    for section in snapshot["categories"]:
        for article in section["articles"]:
            if article["id"] == story_id:
                article.update(fields)
    db["issues"].update(issue["id"], {"snapshot": json.dumps(snapshot)})
    return db["issues"].get(issue["id"])


def test_a_story_too_big_with_its_extras_is_shown_without_them(tmp_path: Path) -> None:
    config, db, issue = _six_stories(tmp_path, "A short one.")
    newest = db.execute("SELECT id FROM articles ORDER BY published_at DESC LIMIT 1").fetchone()[0]
    # A frozen card that lists 2,000 other outlets.
    covered = [{"source": f"Outlet {n}", "url": f"https://outlet{n}.example/{'p' * 40}"} for n in range(2000)]
    issue = _replace_story(db, issue, newest, also_covered=covered)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed == 0 and "Here are 6 stories." in rendered.text
    assert "Story 0 about" in rendered.html and "Outlet 1" not in rendered.html
    assert html_budget_size(rendered.html) <= config.render.max_html_bytes


def test_a_story_too_big_to_fit_alone_goes_to_the_web_version_and_the_others_stay(tmp_path: Path) -> None:
    config, db, issue = _six_stories(tmp_path, "A short one.")
    newest = db.execute("SELECT id FROM articles ORDER BY published_at DESC LIMIT 1").fetchone()[0]
    issue = _replace_story(db, issue, newest, title="Huge story " + "endless " * 30_000)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed == 1  # was 6: "here are 0 of 6 stories"
    assert "Here are 5 of 6 stories" in rendered.text
    assert "Huge story" not in rendered.html
    assert all(f"Story {i} about" in rendered.html for i in range(1, 6))
    assert html_budget_size(rendered.html) <= config.render.max_html_bytes


def test_an_issue_that_could_carry_none_of_its_stories_is_an_error_not_a_send(tmp_path: Path) -> None:
    config, db = make_store(tmp_path / "ws")
    add_article(db, title="The only story", category="World", published_at=PERIOD_END - timedelta(minutes=5))
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    story = db.execute("SELECT id FROM articles").fetchone()[0]
    issue = _replace_story(db, issue, story, title="endless " * 30_000)
    with pytest.raises(DigestError) as info:
        render_issue(db, config, issue["id"])
    assert str(info.value).startswith("issue daily/1: none of its 1 articles fits in an email")
