"""The editor's desk from the command line: drop, restore, add, lead, move, subject, rebuild,
discard, lock, history, article edits; against a real workspace through the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import Workspace

from digest.compose import editing
from digest.localtime import next_fire_time
from digest.mail.transports.memory import clear_outboxes, outbox
from digest.render.variants import render_issue
from digest.store.database import iso, utcnow

CONFIG = """
[publication]
name = "The Harbour Gazette"
from = "The Harbour Gazette <news@harbour.example>"
base_url = "https://news.harbour.example"
postal_address = "4 Quay Lane, Port Elwyn"
timezone = "UTC"

[delivery]
transport = "memory:desk"

[editions.daily]
title = "Daily"
schedule = "0 7 * * *"
window = "1d"
order = ["World", "Science"]
subject = "{title} #{number}: {headline}"
"""


def _article(n: int, category: str, hour: int, day: int = 22) -> dict[str, Any]:
    return {
        "title": f"Story {n} about the harbour",
        "url": f"https://harbour.example/{n}",
        "category": category,
        "summary": f"Summary of story {n}.",
        "published": f"2026-01-{day:02d}T{hour:02d}:00:00Z",
    }


ARTICLES = [
    _article(1, "World", 8),
    _article(2, "World", 10),
    _article(3, "World", 12),
    _article(4, "Science", 9),
    _article(5, "Science", 11),
]
OUTSIDE = _article(6, "Science", 9, day=10)  # far outside the window


@pytest.fixture
def ws(make_workspace) -> Workspace:
    ws = make_workspace(config=CONFIG, articles=[*ARTICLES, OUTSIDE])
    built = ws.run_cli("issues", "build", "daily", "--date", "2026-01-23")
    assert built.exit_code == 0 and "Built issue daily/1 with 5 articles" in built.output, built.output
    return ws


def _show(ws: Workspace, name: str = "daily/1") -> dict[str, Any]:
    result = ws.run_cli("issues", "show", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _ids(shown: dict[str, Any]) -> dict[str, list[int]]:
    return {c["name"]: [a["id"] for a in c["articles"]] for c in shown["categories"]}


def _ok(ws: Workspace, *args: str) -> str:
    result = ws.run_cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


def _refused(ws: Workspace, *args: str) -> str:
    before = _show(ws)
    result = ws.run_cli(*args)
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output, result.output
    after = _show(ws)
    assert after["version"] == before["version"] and after["categories"] == before["categories"]
    return result.output


def test_a_dropped_story_leaves_the_email_text_and_web_version_and_is_listed_as_dropped(
    ws: Workspace,
) -> None:
    assert _ids(_show(ws)) == {"World": [3, 2, 1], "Science": [5, 4]}
    assert "daily/1: dropped 2" in _ok(ws, "issues", "drop", "daily/1", "2")
    shown = _show(ws)
    assert _ids(shown) == {"World": [3, 1], "Science": [5, 4]}
    assert [d["id"] for d in shown["dropped"]] == [2]
    assert "[2] dropped: Story 2 about the harbour" in _ok(ws, "issues", "show", "daily/1")
    db = ws.db()
    rendered = render_issue(db, ws.config, shown["id"])
    assert "Story 2 about" not in rendered.html and "Story 2 about" not in rendered.text
    assert "Story 1 about" in rendered.html and "Story 1 about" in rendered.text
    # restored: back at its place
    assert "restored 2" in _ok(ws, "issues", "restore", "daily/1", "2")
    assert _ids(_show(ws)) == {"World": [3, 2, 1], "Science": [5, 4]}


def test_bad_input_is_one_line_exit_1_and_nothing_changes(ws: Workspace) -> None:
    assert "article 2 is not dropped from daily/1" in _refused(ws, "issues", "restore", "daily/1", "2")
    assert "article 6 is not in daily/1" in _refused(ws, "issues", "drop", "daily/1", "6")
    assert "article 99 not found" in _refused(ws, "issues", "drop", "daily/1", "99")
    assert "no issue daily/7" in _refused(ws, "issues", "drop", "daily/7", "2")
    assert "already in daily/1" in _refused(ws, "issues", "add", "daily/1", "2")
    assert "--to must be 1 to 3" in _refused(ws, "issues", "move", "daily/1", "2", "--to", "4")
    assert "--to must be 1 to 3" in _refused(ws, "issues", "move", "daily/1", "2", "--to", "0")
    _ok(ws, "issues", "drop", "daily/1", "2")
    assert "already dropped" in _refused(ws, "issues", "drop", "daily/1", "2", "3")
    assert _ids(_show(ws))["World"] == [3, 1]  # 3 was not dropped either: all or nothing


def test_add_lead_and_move(ws: Workspace) -> None:
    assert "added 6" in _ok(ws, "issues", "add", "daily/1", "6")
    assert _ids(_show(ws))["Science"] == [5, 4, 6]  # last in its section
    _ok(ws, "issues", "move", "daily/1", "6", "--to", "1")
    _ok(ws, "issues", "move", "daily/1", "1", "--to", "2")
    assert _ids(_show(ws)) == {"World": [3, 1, 2], "Science": [6, 5, 4]}
    assert "article 4 is the lead story" in _ok(ws, "issues", "lead", "daily/1", "4")
    shown = _show(ws)
    leads = [a["id"] for c in shown["categories"] for a in c["articles"] if a.get("lead")]
    assert leads == [4]  # exactly that card, kept in its section
    assert shown["subject"] == "Daily #1: Story 4 about the harbour"  # the lead heads the subject
    assert "already the lead" in _refused(ws, "issues", "lead", "daily/1", "4")
    _ok(ws, "issues", "lead", "daily/1", "--none")
    assert not any(a.get("lead") for c in _show(ws)["categories"] for a in c["articles"])


def test_subject_and_preheader_replace_the_templates_and_reset_goes_back(ws: Workspace) -> None:
    template = _show(ws)["subject"]
    out = _ok(ws, "issues", "subject", "daily/1", "Flood\r\nBcc: x@evil.example", "--preheader", "And more")
    assert "subject:   Flood Bcc: x@evil.example" in out  # one line: no header injection
    shown = _show(ws)
    assert shown["subject"] == "Flood Bcc: x@evil.example" and shown["preheader"] == "And more"
    db = ws.db()
    rendered = render_issue(db, ws.config, shown["id"], '["Science"]')  # a category variant keeps it
    assert rendered.subject == "Flood Bcc: x@evil.example"
    _ok(ws, "issues", "subject", "daily/1", "--reset")
    assert _show(ws)["subject"] == template
    assert "empty" in _refused(ws, "issues", "subject", "daily/1", "  ")


def test_rebuild_keeps_every_choice_and_says_what_changed(ws: Workspace) -> None:
    _ok(ws, "issues", "drop", "daily/1", "2")
    _ok(ws, "issues", "add", "daily/1", "6")
    _ok(ws, "issues", "lead", "daily/1", "4")
    _ok(ws, "issues", "move", "daily/1", "1", "--to", "1")
    _ok(ws, "issues", "subject", "daily/1", "Editor's own subject")
    _ok(ws, "issues", "note", "daily/1", "A note from the desk.")
    # after a fix: one story leaves the window (its date corrected), two new ones arrive
    db = ws.db()
    db.execute("UPDATE articles SET published_at = '2026-01-01T08:00:00+00:00' WHERE id = 3")
    from digest.ingest.articles import add_article

    add_article(db, ws.config, **_article(7, "World", 13))
    add_article(db, ws.config, **_article(8, "Science", 14))
    out = _ok(ws, "issues", "rebuild", "daily/1")
    assert "Rebuilt daily/1: +2 stories, \u22121 no longer in the window" in out
    shown = _show(ws)
    # 7 (newest) goes in at its natural place; 1 stays where the editor put it relative to the rest
    assert _ids(shown) == {"World": [7, 1], "Science": [8, 5, 4, 6]}
    assert [d["id"] for d in shown["dropped"]] == [2]
    assert shown["subject"] == "Editor's own subject" and shown["note"] == "A note from the desk."
    assert [a["id"] for c in shown["categories"] for a in c["articles"] if a.get("lead")] == [4]
    again = _ok(ws, "issues", "rebuild", "daily/1")
    assert "no change in the stories" in again


def test_discard_frees_the_number_and_is_not_latest_or_overdue(ws: Workspace) -> None:
    out = _ok(ws, "issues", "discard", "daily/1")
    assert "Discarded daily/1" in out
    listed = json.loads(_ok(ws, "issues", "list", "--json"))
    assert [(r["number"], r["state"]) for r in listed] == [(1, "discarded")]
    assert "no issues yet" in ws.run_cli("issues", "show", "latest").output
    run = ws.run_cli("run", "--at", "2026-01-23T07:30Z")  # its period: no new issue, nothing overdue
    assert run.exit_code == 0 and "was discarded; none is built" in run.output, run.output
    late = ws.run_cli("run", "--at", "2026-01-24T20:00Z")
    assert "Overdue" not in late.output
    gone = json.loads(_ok(ws, "issues", "history", "daily/1", "--json"))
    assert gone["id"] == listed[0]["id"] and gone["changes"][-1]["action"] == "discard"
    rebuilt = _ok(ws, "issues", "build", "daily", "--date", "2026-01-23")
    assert "Built issue daily/1" in rebuilt  # the number is free again
    history = json.loads(_ok(ws, "issues", "history", str(listed[0]["id"]), "--json"))
    assert [c["action"] for c in history["changes"]] == ["discard"]


def test_discard_moves_later_drafts_down(ws: Workspace) -> None:
    ws.db().execute(
        "INSERT INTO articles (guid, url, title, category, published_at, created_at, updated_at)"
        " VALUES ('g9', 'https://harbour.example/9', 'Day two', 'World',"
        " '2026-01-23T09:00:00+00:00', 'x', 'x')"
    )
    _ok(ws, "issues", "build", "daily", "--date", "2026-01-24")
    _ok(ws, "issues", "discard", "daily/1")
    shown = _show(ws, "daily/1")
    assert shown["period_end"] == "2026-01-24T07:00:00+00:00" and shown["subject"].startswith("Daily #1:")


def test_edits_are_refused_once_sending_started(ws: Workspace, fake_clock) -> None:
    ws.run_cli("subscribers", "add", "reader@example.org")
    stopped = ws.run_cli("send", "daily/1", "--transport", "smtp://127.0.0.1:1")
    assert stopped.exit_code == 1
    for args in (
        ("issues", "drop", "daily/1", "2"),
        ("issues", "subject", "daily/1", "Late"),
        ("issues", "rebuild", "daily/1"),
        ("issues", "approve", "daily/1"),
    ):
        assert "sending has started, so it can no longer change" in _refused(ws, *args)
    assert "sending has started" in _refused(ws, "issues", "discard", "daily/1")


def test_a_stale_version_is_refused(ws: Workspace) -> None:
    db, config = ws.db(), ws.config
    loaded = _show(ws)["version"]
    editing.drop_stories(db, config, "daily/1", [2], "ann@example.org", version=loaded)
    with pytest.raises(editing.StaleIssue, match="this issue changed; reload"):
        editing.drop_stories(db, config, "daily/1", [3], "bob@example.org", version=loaded)
    assert _ids(_show(ws))["World"] == [3, 1]


def test_history_records_what_when_and_who(ws: Workspace) -> None:
    _ok(ws, "issues", "drop", "daily/1", "2")
    editing.set_lead(ws.db(), ws.config, "daily/1", 4, "ann@example.org")
    _ok(ws, "issues", "lock", "daily/1")
    assert "is locked" in _refused(ws, "issues", "rebuild", "daily/1")
    _ok(ws, "issues", "unlock", "daily/1")
    history = json.loads(_ok(ws, "issues", "history", "daily/1", "--json"))
    actions = [(c["action"], c["editor"]) for c in history["changes"]]
    import getpass

    me = getpass.getuser()
    assert actions == [("drop", me), ("lead", "ann@example.org"), ("lock", me), ("unlock", me)]
    assert all(c["at"].startswith("20") for c in history["changes"])
    assert "ann@example.org  lead" in _ok(ws, "issues", "history", "daily/1")


def test_article_edits_win_survive_a_reingest_and_show_both(ws: Workspace) -> None:
    out = _ok(
        ws,
        "articles",
        "edit",
        "2",
        "--title",
        "The editor's title",
        "--category",
        "Science",
        "--summary",
        "Said better.",
        "--byline",
        "A. Writer",
    )
    assert "daily/1 remade with it" in out
    shown = _show(ws)
    card = next(a for c in shown["categories"] for a in c["articles"] if a["id"] == 2)
    assert (card["title"], card["category"], card["summary"], card["author"]) == (
        "The editor's title",
        "Science",
        "Said better.",
        "A. Writer",
    )
    # a re-ingest rewrites the feed's values, never the editor's
    from digest.ingest.articles import add_article

    db = ws.db()
    add_article(db, ws.config, **{**ARTICLES[1], "summary": "The feed changed its summary."})
    data = json.loads(_ok(ws, "articles", "show", "2", "--json"))
    assert data["title"] == "The editor's title"
    assert data["feed"]["title"] == "Story 2 about the harbour"
    assert data["feed"]["summary"] == "The feed changed its summary."
    assert data["editor"]["summary"] == "Said better." and data["editor"]["hidden"] is False
    _ok(ws, "issues", "rebuild", "daily/1")
    assert (
        next(a for c in _show(ws)["categories"] for a in c["articles"] if a["id"] == 2)["summary"]
        == "Said better."
    )
    _ok(ws, "articles", "edit", "2", "--title", "")
    assert json.loads(_ok(ws, "articles", "show", "2", "--json"))["title"] == "Story 2 about the harbour"


def test_hide_keeps_an_article_out_of_every_issue(ws: Workspace) -> None:
    assert "remade daily/1" in _ok(ws, "articles", "hide", "5")
    assert 5 not in _ids(_show(ws))["Science"]
    assert ws.run_cli("articles", "hide", "5").exit_code == 1
    _ok(ws, "articles", "unhide", "5")
    assert _ids(_show(ws))["Science"] == [5, 4]


def test_build_ahead_makes_the_next_scheduled_issue(ws: Workspace) -> None:
    refused = ws.run_cli("issues", "build", "daily", "--date", "2099-01-01")
    assert refused.exit_code == 1 and "--ahead" in refused.output
    ws.db().execute(
        "INSERT INTO articles (guid, url, title, category, published_at, created_at, updated_at)"
        " VALUES ('now', 'https://harbour.example/now', 'Fresh', 'World', ?, 'x', 'x')",
        [iso(utcnow() - timedelta(minutes=1))],
    )
    out = _ok(ws, "issues", "build", "daily", "--ahead")
    assert "Built issue daily/2 with 1 article" in out
    assert json.loads(_ok(ws, "issues", "list", "--json"))[0]["state"] == "draft"


def _insert_article(ws: Workspace, guid: str, title: str, published: datetime) -> None:
    # Straight into the table: add_article would take a time still to come for a bad date.
    ws.db().execute(
        "INSERT INTO articles (guid, url, title, category, published_at, created_at, updated_at)"
        " VALUES (?, ?, ?, 'World', ?, 'x', 'x')",
        [guid, f"https://harbour.example/{guid}", title, iso(published)],
    )


@pytest.mark.parametrize("locked", [False, True])
def test_an_issue_built_ahead_is_rebuilt_at_its_time_unless_locked(make_workspace, locked: bool) -> None:
    clear_outboxes()
    ws = make_workspace(config=CONFIG, subscribers=["reader@example.org"])
    due = next_fire_time(ws.config.edition("daily"), utcnow())
    _insert_article(ws, "early", "Harbour cranes repainted blue", due - timedelta(hours=5))
    assert "Built issue daily/1 with 1 article" in _ok(ws, "issues", "build", "daily", "--ahead")
    if locked:
        _ok(ws, "issues", "lock", "daily/1")
    _insert_article(ws, "late", "Election results from the islands", due - timedelta(hours=1))
    run = ws.run_cli("run", "--at", iso(due + timedelta(minutes=1)))
    assert run.exit_code == 0, run.output
    assert ("Rebuilt daily/1: +1 story" in run.output) is not locked
    subjects = [m.parsed()["Subject"] for m in outbox("desk")]
    body = outbox("desk")[0].parsed().get_body(("plain",)).get_content()
    assert len(subjects) == 1 and ("Election results from the islands" in body) is not locked
