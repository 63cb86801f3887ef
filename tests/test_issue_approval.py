"""Approval through `digest run --at`: the draft is built and a signed review link mailed to
every editor ahead of the send time, an unapproved issue is held (or sent as built with
on_timeout = "send"), an approved one is sent; issues list shows the state."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Workspace

from digest.compose.review_links import verify_review_token
from digest.mail.transports.memory import clear_outboxes, outbox
from digest.schedule.scheduler import review_trigger
from subscribers.tokens import InvalidToken, TokenSigner, load_secret

EDITORS = ["ann@harbour.example", "bob@harbour.example"]
READERS = ["reader1@example.org", "reader2@example.org"]

CONFIG = """
[publication]
name = "The Harbour Gazette"
from = "The Harbour Gazette <news@harbour.example>"
base_url = "https://news.harbour.example"
postal_address = "4 Quay Lane, Port Elwyn"
timezone = "UTC"
editors = ["ann@harbour.example", "bob@harbour.example"]

[delivery]
transport = "memory:approval"

[editions.daily]
title = "Daily"
schedule = "0 7 * * *"
window = "1d"
approval = "required"
review_before = "2h"
"""

ARTICLES = [
    {
        "title": f"Story {n}",
        "url": f"https://harbour.example/{n}",
        "category": "World",
        "published": f"2026-01-22T{8 + n:02d}:00:00Z",
    }
    for n in range(3)
]


@pytest.fixture
def ws(make_workspace) -> Workspace:
    clear_outboxes()
    return make_workspace(config=CONFIG, articles=ARTICLES, subscribers=READERS)


def _mail_to(addresses: list[str]) -> list[Any]:
    return [m for m in outbox("approval") if m.recipient in addresses]


def _run(ws: Workspace, at: str) -> Any:
    return ws.run_cli("run", "--at", at)


def _review_link(message: Any) -> str:
    body = message.parsed().get_body(("plain",)).get_content()
    return re.search(r"https://\S+/desk/issues/daily/1\?review=\S+", body).group(0)


def test_held_until_approved_then_sent(ws: Workspace) -> None:
    early = _run(ws, "2026-01-23T04:30Z")  # before the review time: nothing yet
    assert early.exit_code == 0 and not outbox("approval"), early.output
    review = _run(ws, "2026-01-23T05:15Z")
    assert review.exit_code == 0, review.output
    assert "built daily/1" in review.output and "review link mailed to 2 editors" in review.output
    mails = _mail_to(EDITORS)
    assert sorted(m.recipient for m in mails) == EDITORS
    secret = load_secret(ws.config)
    issue_id = json.loads(ws.run_cli("issues", "show", "daily/1", "--json").output)["id"]
    for message in mails:
        link = _review_link(message)
        assert verify_review_token(secret, link.split("review=")[1]) == (issue_id, message.recipient)
        assert message.parsed()["Subject"].startswith("Review daily/1: ")
    state = json.loads(ws.run_cli("issues", "list", "--json").output)[0]["state"]
    assert state == "awaiting approval"

    for at in ("2026-01-23T07:00Z", "2026-01-23T07:20Z", "2026-01-23T20:00Z"):  # also past the catch-up
        held = _run(ws, at)
        assert held.exit_code == 1, held.output
        assert (
            "daily/1 waits for approval (review: https://news.harbour.example/desk/issues/daily/1)"
            in held.output
        )
        assert "Overdue" not in held.output
    assert not _mail_to(READERS) and len(_mail_to(EDITORS)) == 2  # reviews mailed once

    refused = ws.run_cli("send", "daily/1")  # by hand: not without approval either
    assert refused.exit_code == 1 and "daily/1 waits for approval" in refused.output
    assert ws.run_cli("send", "daily/1", "--to", "ann@harbour.example").exit_code == 0  # a test copy is fine
    assert "Approved daily/1" in ws.run_cli("issues", "approve", "daily/1").output
    assert json.loads(ws.run_cli("issues", "list", "--json").output)[0]["state"] == "approved"
    sent = _run(ws, "2026-01-23T20:05Z")
    assert sent.exit_code == 0 and "daily/1: sent 2" in sent.output, sent.output
    assert sorted(m.recipient for m in _mail_to(READERS)) == READERS
    assert len(_mail_to(EDITORS)) == 3  # the two reviews and ann's test copy
    assert json.loads(ws.run_cli("issues", "list", "--json").output)[0]["state"] == "sent"
    actions = [
        c["action"]
        for c in json.loads(ws.run_cli("issues", "history", "daily/1", "--json").output)["changes"]
    ]
    assert actions == ["approve"]
    # a sent issue stays as it went out: an article edit changes only issues built after
    before = ws.run_cli("issues", "show", "daily/1", "--json").output
    edited = ws.run_cli("articles", "edit", "1", "--title", "Renamed later")
    assert edited.exit_code == 0 and "remade" not in edited.output
    assert ws.run_cli("issues", "show", "daily/1", "--json").output == before


def test_an_edit_after_approval_withdraws_it(ws: Workspace) -> None:
    _run(ws, "2026-01-23T05:15Z")
    ws.run_cli("issues", "approve", "daily/1")
    dropped = ws.run_cli("issues", "drop", "daily/1", "1")
    assert dropped.exit_code == 0 and "approval is withdrawn" in dropped.output
    assert ws.run_cli("issues", "unapprove", "daily/1").exit_code == 1  # nothing to take back
    held = _run(ws, "2026-01-23T07:05Z")
    assert held.exit_code == 1 and "waits for approval" in held.output


def test_unapprove_takes_it_back(ws: Workspace) -> None:
    _run(ws, "2026-01-23T05:15Z")
    ws.run_cli("issues", "approve", "daily/1")
    assert "Unapproved daily/1" in ws.run_cli("issues", "unapprove", "daily/1").output
    assert _run(ws, "2026-01-23T07:05Z").exit_code == 1 and not _mail_to(READERS)


def test_on_timeout_send_goes_out_as_built_and_says_so(ws: Workspace) -> None:
    ws.edit_config('review_before = "2h"', 'review_before = "2h"\non_timeout = "send"')
    _run(ws, "2026-01-23T05:15Z")
    result = _run(ws, "2026-01-23T07:05Z")
    assert result.exit_code == 0, result.output
    assert 'daily/1 was not approved; sent as built (on_timeout = "send")' in result.output
    assert sorted(m.recipient for m in _mail_to(READERS)) == READERS


def test_the_review_link_is_signed_for_review_only(ws: Workspace) -> None:
    _run(ws, "2026-01-23T05:15Z")
    secret = load_secret(ws.config)
    token = _review_link(_mail_to(EDITORS)[0]).split("review=")[1]
    issue_id, expires, editor, mac = token.split(".")
    for forged in (
        f"{int(issue_id) + 1}.{expires}.{editor}.{mac}",  # another issue
        f"{issue_id}.{int(expires) + 86400}.{editor}.{mac}",  # a longer life
        f"{issue_id}.{expires}.{editor[:-2]}AA.{mac}",  # another editor
    ):
        with pytest.raises(InvalidToken):
            verify_review_token(secret, forged)
    with pytest.raises(InvalidToken, match="expired"):
        verify_review_token(secret, token, now=datetime(2099, 1, 1, tzinfo=UTC))
    reader_token = TokenSigner(secret).token(1, "unsubscribe")  # a reader's link is no review link
    with pytest.raises(InvalidToken):
        verify_review_token(secret, reader_token)


def test_a_discarded_review_draft_is_not_built_again(ws: Workspace) -> None:
    _run(ws, "2026-01-23T05:15Z")
    assert ws.run_cli("issues", "discard", "daily/1").exit_code == 0
    later = _run(ws, "2026-01-23T07:05Z")
    assert later.exit_code == 0 and "was discarded" in later.output, later.output
    assert not _mail_to(READERS)


def test_the_scheduler_runs_an_edition_that_waits_for_approval_every_quarter_hour(ws: Workspace) -> None:
    config = ws.config
    trigger = review_trigger(config.edition("daily"))
    assert trigger is not None
    first = trigger.get_next_fire_time(None, datetime(2026, 1, 23, 5, 0, tzinfo=UTC))
    assert trigger.get_next_fire_time(first, first) - first == timedelta(minutes=15)
    config.editions["daily"].approval = "none"
    assert review_trigger(config.edition("daily")) is None


def test_the_review_draft_is_built_after_an_ingest(ws: Workspace) -> None:
    feed = ws.path / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Port</title><link>https://port.example/</link>'
        "<item><title>Ferry timetable changes on Monday</title><link>https://port.example/ferry</link>"
        "<guid>ferry-1</guid><pubDate>Fri, 23 Jan 2026 04:00:00 +0000</pubDate></item>"
        "</channel></rss>",
        encoding="utf-8",
    )
    added = ws.run_cli("feeds", "add", str(feed), "--category", "World")
    assert added.exit_code == 0, added.output
    review = _run(ws, "2026-01-23T05:15Z")
    assert review.exit_code == 0 and "ingested 1 new" in review.output, review.output
    shown = json.loads(ws.run_cli("issues", "show", "daily/1", "--json").output)
    titles = [a["title"] for c in shown["categories"] for a in c["articles"]]
    assert "Ferry timetable changes on Monday" in titles
