"""Stories remembered across issues: three days of `digest run --at` for one edition. A story
sent yesterday with nothing new is held back, one with a new outlet or a new number comes
back marked "Update:", a new story is kept; `issues show` lists what was held back and
why, and an editor who adds a held-back story back wins."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import Workspace

from digest.mail.transports.memory import clear_outboxes, outbox

READERS = ["reader1@example.org", "reader2@example.org"]

CONFIG = """
[publication]
name = "The Harbour Gazette"
from = "The Harbour Gazette <news@harbour.example>"
base_url = "https://news.harbour.example"
postal_address = "4 Quay Lane, Port Elwyn"
timezone = "UTC"

[delivery]
transport = "memory:memory"

[compose]
repeat_stories = "update"

[editions.daily]
title = "Daily"
schedule = "0 7 * * *"
window = "1d"
"""


def _article(n: int, day: int, hour: int, source: str, title: str, summary: str) -> dict[str, Any]:
    return {
        "title": title,
        "summary": summary,
        "source": source,
        "url": f"https://{source.lower().replace(' ', '')}.example/{n}",
        "category": "Local",
        "published": f"2026-01-{day:02d}T{hour:02d}:00:00Z",
    }


DREDGING = "Harbour authority approves £24m dredging plan for Port Elwyn"
DREDGING_TEXT = "The harbour authority voted to deepen the main channel in a plan costing £24m."
FERRY = "Ferry strike called off after late-night talks"
FERRY_TEXT = "Unions and Northline Ferries agreed a 4% pay rise, ending the week-long dispute."
STORM = "Storm warning issued for the coast this weekend"
STORM_TEXT = "Forecasters expect gusts of 70mph along the shore on Saturday night."

ARTICLES = [
    # day 1 (daily/1, sent 2026-01-23 07:00)
    _article(1, 22, 9, "Harbour Herald", DREDGING, DREDGING_TEXT),
    _article(2, 22, 10, "Coast FM", FERRY, FERRY_TEXT),
    _article(3, 22, 11, "Harbour Herald", "Library reopens on Quay Street", "Books are back after repairs."),
    # day 2 (daily/2): a late item of the same outlet (held), a new outlet (update), a new story
    _article(4, 23, 9, "Harbour Herald", DREDGING, DREDGING_TEXT),
    _article(5, 23, 10, "Channel Post", FERRY, FERRY_TEXT),
    _article(6, 23, 11, "Coast FM", STORM, STORM_TEXT),
    # day 3 (daily/3): the same outlet with a new number (update), yesterday's storm (held), a new one
    _article(
        7,
        24,
        9,
        "Harbour Herald",
        DREDGING,
        "The harbour authority's £24m plan to deepen the main channel will create 40 jobs.",
    ),
    _article(8, 24, 10, "Coast FM", STORM, STORM_TEXT),
    _article(9, 24, 11, "Channel Post", "Lifeboat crew rescues two kayakers", "Both were unhurt."),
]


@pytest.fixture
def ws(make_workspace) -> Workspace:
    clear_outboxes()
    return make_workspace(config=CONFIG, articles=ARTICLES, subscribers=READERS)


def _show(ws: Workspace, issue: str) -> dict[str, Any]:
    result = ws.run_cli("issues", "show", issue, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _cards(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["url"]: a for c in shown["categories"] for a in c["articles"]}


def _parts(issue_subject: str) -> tuple[str, str]:
    """The text and HTML parts of the issue as the first reader received it."""
    mine = [m for m in outbox("memory") if m.recipient == READERS[0]]
    [message] = [m for m in mine if m.parsed()["Subject"] == issue_subject]
    parsed = message.parsed()
    text, html = (parsed.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))
    return text, html


def test_three_days_repeat_held_update_marked_new_story_kept(ws: Workspace) -> None:
    for day in ("2026-01-23T07:05Z", "2026-01-24T07:05Z"):
        result = ws.run_cli("run", "--at", day)
        assert result.exit_code == 0, result.output

    day2 = _show(ws, "daily/2")
    cards = _cards(day2)
    assert set(cards) == {"https://channelpost.example/5", "https://coastfm.example/6"}
    ferry = cards["https://channelpost.example/5"]
    assert ferry["news"] == "Now also reported by Channel Post"
    assert "news" not in cards["https://coastfm.example/6"]  # a new story, kept as it is
    [held] = day2["held_back"]
    assert held["url"] == "https://harbourherald.example/4" and held["sent_in"] == "daily/1"
    assert "nothing new: no new outlet, number or name" in held["reason"]
    assert day2["dropped"] == []  # held back is not an editor's drop

    text, html = _parts(ws.db()["issues"].get(day2["id"])["subject"])
    assert f"Update: {FERRY}" in text and "Now also reported by Channel Post." in text
    assert DREDGING not in text and "Dredging" not in text
    assert re.search(r"Update: <a [^>]*>Ferry strike called off", html), html
    assert "Now also reported by Channel Post.</p>" in html and "dredging" not in html

    listing = ws.run_cli("issues", "show", "daily/2")
    assert "Held back as already sent (1;" in listing.output
    assert f"[4] {DREDGING}" in listing.output
    assert "sent in daily/1 (“Harbour authority approves £24m" in listing.output

    built = ws.run_cli("run", "--at", "2026-01-25T07:05Z")
    assert built.exit_code == 0, built.output
    day3 = _show(ws, "daily/3")
    cards = _cards(day3)
    assert set(cards) == {"https://harbourherald.example/7", "https://channelpost.example/9"}
    assert cards["https://harbourherald.example/7"]["news"] == "New details: 40"
    assert "news" not in cards["https://channelpost.example/9"]
    assert [(h["url"], h["sent_in"]) for h in day3["held_back"]] == [("https://coastfm.example/8", "daily/2")]


def test_an_editor_who_adds_a_held_back_story_wins(ws: Workspace) -> None:
    assert ws.run_cli("run", "--at", "2026-01-23T07:05Z").exit_code == 0
    built = ws.run_cli("issues", "build", "daily", "--date", "2026-01-24")
    assert built.exit_code == 0 and "1 story held back" in built.output, built.output
    added = ws.run_cli("issues", "add", "daily/2", "4")
    assert added.exit_code == 0, added.output
    shown = _show(ws, "daily/2")
    assert shown["held_back"] == []
    card = _cards(shown)["https://harbourherald.example/4"]
    assert "news" not in card  # nothing new: shown plainly, as the editor asked
    rebuilt = ws.run_cli("issues", "rebuild", "daily/2")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "https://harbourherald.example/4" in _cards(_show(ws, "daily/2"))


@pytest.mark.parametrize(
    ("mode", "shown", "held"),
    [
        (
            "drop",
            {"https://coastfm.example/6"},
            {"https://harbourherald.example/4", "https://channelpost.example/5"},
        ),
        (
            "allow",
            {"https://harbourherald.example/4", "https://channelpost.example/5", "https://coastfm.example/6"},
            set(),
        ),
    ],
)
def test_repeat_stories_drop_and_allow(ws: Workspace, mode: str, shown: set[str], held: set[str]) -> None:
    ws.edit_config('repeat_stories = "update"', f'repeat_stories = "{mode}"')
    assert ws.run_cli("run", "--at", "2026-01-23T07:05Z").exit_code == 0
    assert ws.run_cli("issues", "build", "daily", "--date", "2026-01-24").exit_code == 0
    day2 = _show(ws, "daily/2")
    assert set(_cards(day2)) == shown
    assert {h["url"] for h in day2["held_back"]} == held
    if mode == "drop":
        reasons = {h["url"]: h["reason"] for h in day2["held_back"]}
        assert (
            'repeat_stories = "drop" (Now also reported by Channel Post)'
            in reasons["https://channelpost.example/5"]
        )


def test_a_bad_repeat_stories_value_is_one_line(ws: Workspace) -> None:
    ws.edit_config('repeat_stories = "update"', 'repeat_stories = "sometimes"')
    result = ws.run_cli("issues", "list")
    assert result.exit_code == 1
    assert '\'compose.repeat_stories\' = \'sometimes\' must be "drop", "update" or "allow"' in result.output
    assert "Traceback" not in result.output


def test_a_period_with_only_repeats_builds_no_issue(make_workspace) -> None:
    clear_outboxes()
    ws = make_workspace(config=CONFIG, articles=ARTICLES[:4], subscribers=READERS)
    assert ws.run_cli("run", "--at", "2026-01-23T07:05Z").exit_code == 0
    built = ws.run_cli("issues", "build", "daily", "--date", "2026-01-24")
    assert built.exit_code == 0, built.output
    assert "no issue built: 1 story held back as already sent" in built.output
    assert [i["number"] for i in json.loads(ws.run_cli("issues", "list", "--json").output)] == [1]
