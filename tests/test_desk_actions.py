"""The desk's actions against a real `digest web serve`: each button changes the draft through
the same function the CLI calls, and a form loaded before the last change is refused."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from desk_support import EDITOR, build_draft, call, desk_workspace, sign_in
from web_process import SECRET, messages_to, start_web

from digest.editors import signin_link


@pytest.fixture
def desk(tmp_path: Path):
    """A served workspace with a four-story draft daily/1 and a signed-in editor."""
    ws = desk_workspace(tmp_path / "ws")
    build_draft(ws)
    web = start_web(ws.config_file)
    db = ws.db()
    link = signin_link(db, ws.config, SECRET.encode(), EDITOR)
    db.close()
    session = sign_in(web.url, web.url + urlsplit(link).path)
    yield ws, web, session
    web.stop()


def _ids(ws) -> dict[str, int]:
    db = ws.db()
    try:
        return {title: i for i, title in db.execute("SELECT id, title FROM articles")}
    finally:
        db.close()


def _issue(ws) -> dict:
    db = ws.db()
    try:
        return next(db.query("SELECT * FROM issues WHERE edition = 'daily' AND number = 1"))
    finally:
        db.close()


def _post(session, ws, action: str, **form: str):
    version = str(_issue(ws)["version"])
    answer = session.post(
        f"/desk/issues/daily/1/{action}", {"csrf": session.csrf, "version": version, **form}
    )
    assert answer.status == 303, answer.body
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return answer, query


def _order(ws) -> list[str]:
    db = ws.db()
    try:
        rows = db.execute(
            "SELECT a.title FROM issue_articles ia JOIN articles a ON a.id = ia.article_id"
            " WHERE ia.issue_id = (SELECT id FROM issues WHERE edition = 'daily' AND number = 1)"
            " AND ia.dropped = 0 ORDER BY ia.position"
        )
        return [r[0] for r in rows]
    finally:
        db.close()


def test_drop_restore_move_lead_edit_and_fields(desk) -> None:
    ws, _web, session = desk
    ids = _ids(ws)
    assert _order(ws) == ["Desk story 1", "Desk story 2", "Desk story 3", "Desk story 4"]

    _, said = _post(session, ws, "drop", article=str(ids["Desk story 2"]))
    assert "dropped" in said["done"][0]
    assert _order(ws) == ["Desk story 1", "Desk story 3", "Desk story 4"]
    page = session.get("/desk/issues/daily/1")
    assert "Restore" in page.body and "Desk story 2" in page.body
    _post(session, ws, "restore", article=str(ids["Desk story 2"]))
    assert "Desk story 2" in _order(ws)

    _post(session, ws, "down", article=str(ids["Desk story 1"]))
    assert _order(ws)[:2] == ["Desk story 2", "Desk story 1"]
    _post(session, ws, "up", article=str(ids["Desk story 1"]))
    assert _order(ws)[:2] == ["Desk story 1", "Desk story 2"]
    _, said = _post(session, ws, "up", article=str(ids["Desk story 1"]))  # already first
    assert "error" in said and _order(ws)[0] == "Desk story 1"

    _post(session, ws, "lead", article=str(ids["Desk story 4"]))
    assert _issue(ws)["lead_article_id"] == ids["Desk story 4"]

    _post(
        session,
        ws,
        "edit",
        article=str(ids["Desk story 3"]),
        title="Desk story 3",
        summary="The editor's own words.",
        category="World",
    )
    db = ws.db()
    assert db.execute(
        "SELECT editor_summary, editor_title FROM articles WHERE id = ?", [ids["Desk story 3"]]
    ).fetchone() == ("The editor's own words.", None)
    db.close()

    preheader = _issue(ws)["preheader"]
    _post(session, ws, "fields", subject="A subject by hand", preheader=preheader, note="Hello readers")
    issue = _issue(ws)
    assert issue["subject"] == "A subject by hand" and issue["note"] == "Hello readers"
    assert issue["subject_set"] == "A subject by hand" and issue["preheader_set"] is None  # left alone
    _post(session, ws, "fields", subject="", preheader=preheader, note="Hello readers")
    issue = _issue(ws)
    assert issue["subject_set"] is None and issue["subject"].startswith("Daily Briefing #1")

    db = ws.db()
    actions = [r[0] for r in db.execute("SELECT action FROM editor_changes ORDER BY id")]
    editors = {r[0] for r in db.execute("SELECT editor FROM editor_changes")}
    db.close()
    assert actions[:2] == ["drop", "restore"] and editors == {EDITOR}


def test_a_stale_form_is_refused_and_changes_nothing(desk) -> None:
    ws, _web, session = desk
    ids = _ids(ws)
    loaded = str(_issue(ws)["version"])
    _post(session, ws, "drop", article=str(ids["Desk story 1"]))  # another editor, meanwhile
    before = _order(ws)
    answer = session.post(
        "/desk/issues/daily/1/drop",
        {"csrf": session.csrf, "version": loaded, "article": str(ids["Desk story 3"])},
    )
    assert answer.status == 303
    assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["this issue changed; reload"]
    assert _order(ws) == before
    shown = session.get(answer.headers["location"])
    assert "this issue changed; reload" in shown.body


def test_approve_unapprove_test_and_discard(desk) -> None:
    ws, _web, session = desk
    _post(session, ws, "approve")
    assert _issue(ws)["approved_at"]
    assert "Unapprove" in session.get("/desk/issues/daily/1").body
    _post(session, ws, "unapprove")
    assert not _issue(ws)["approved_at"]

    _, said = _post(session, ws, "test")
    assert EDITOR in said["done"][0]
    [test] = messages_to(ws.path / "outbox", EDITOR)[-1:]
    assert "[TEST]" in str(test["Subject"])

    answer, said = _post(session, ws, "discard")
    assert answer.headers["location"].startswith("/desk?")
    db = ws.db()
    assert db.execute("SELECT count(*) FROM issues").fetchone()[0] == 0
    db.close()
    assert session.get("/desk/issues/daily/1").status == 404


def test_actions_need_the_csrf_token(desk) -> None:
    ws, web, session = desk
    ids = _ids(ws)
    version = str(_issue(ws)["version"])
    answer = session.post(
        "/desk/issues/daily/1/drop", {"version": version, "article": str(ids["Desk story 1"])}
    )
    assert answer.status == 403
    assert len(_order(ws)) == 4
    stranger = call(f"{web.url}/desk/issues/daily/1/drop", "POST", {"version": version, "article": "1"})
    assert stranger.status == 404


def test_regenerate_summary_asks_the_model_again(tmp_path: Path) -> None:
    """With llm-echo (a real llm plugin, no network) the summary is the prompt's "raw" text: a
    prompt changed after the draft was built shows once **Regenerate summary** is pressed."""
    pytest.importorskip("llm_echo")
    home = {"LLM_USER_PATH": str(tmp_path / "llm-home")}
    ws = desk_workspace(tmp_path / "ws")
    first = """engine = "llm"\nmodel = "echo"\nprompt = '{"raw": "First take: $title."}'"""
    ws.edit_config('engine = "feed"', first)
    os.environ.update(home)
    try:
        build_draft(ws)
    finally:
        del os.environ["LLM_USER_PATH"]
    ws.edit_config("First take", "Second take")
    web = start_web(ws.config_file, extra_env=home)
    try:
        db = ws.db()
        link = signin_link(db, ws.config, SECRET.encode(), EDITOR)
        db.close()
        session = sign_in(web.url, web.url + urlsplit(link).path)
        page = session.get("/desk/issues/daily/1")
        assert "First take: Desk story 1." in page.body and "Regenerate summary" in page.body
        _, said = _post(session, ws, "regenerate", article=str(_ids(ws)["Desk story 1"]))
        assert "a new summary from echo" in said["done"][0], said
        page = session.get("/desk/issues/daily/1")
        assert "Second take: Desk story 1." in page.body and "First take: Desk story 1." not in page.body
    finally:
        web.stop()


def test_edit_stores_only_what_the_editor_changed_in_the_form(tmp_path: Path) -> None:
    """The Edit form is filled with what the page shows: the model's summary, or none for a
    dropped story. Saving a new title must not pin the model's words (or an empty summary)
    as the editor's own."""
    pytest.importorskip("llm_echo")
    home = {"LLM_USER_PATH": str(tmp_path / "llm-home")}
    ws = desk_workspace(tmp_path / "ws")
    ws.edit_config(
        'engine = "feed"', """engine = "llm"\nmodel = "echo"\nprompt = '{"raw": "Echo: $title."}'"""
    )
    os.environ.update(home)
    try:
        build_draft(ws)
    finally:
        del os.environ["LLM_USER_PATH"]
    ids = _ids(ws)
    one, two = ids["Desk story 1"], ids["Desk story 2"]
    assert ws.run_cli("articles", "edit", str(two), "--summary", "The editor's own words.").exit_code == 0
    web = start_web(ws.config_file, extra_env=home)
    try:
        db = ws.db()
        link = signin_link(db, ws.config, SECRET.encode(), EDITOR)
        category = db.execute("SELECT category FROM articles WHERE id = ?", [one]).fetchone()[0]
        db.close()
        session = sign_in(web.url, web.url + urlsplit(link).path)
        assert "Echo: Desk story 1." in session.get("/desk/issues/daily/1").body
        form = {"summary": "Echo: Desk story 1.", "category": category}
        _post(session, ws, "edit", article=str(one), title="A sharper title", **form)
        _post(session, ws, "drop", article=str(two))
        _post(session, ws, "edit", article=str(two), title="Two, retitled", summary="", category=category)
    finally:
        web.stop()
    db = ws.db()
    try:
        rows = dict(db.execute("SELECT id, editor_summary FROM articles WHERE id IN (?, ?)", [one, two]))
    finally:
        db.close()
    assert rows == {one: None, two: "The editor's own words."}


def test_no_regenerate_button_without_llm(desk) -> None:
    ws, _, session = desk
    assert "Regenerate summary" not in session.get("/desk/issues/daily/1").body
    _, said = _post(session, ws, "regenerate", article=str(_ids(ws)["Desk story 1"]))
    assert 'engine = "llm"' in said["error"][0]


def test_the_page_frames_the_email_under_a_strict_policy(desk) -> None:
    _, _, session = desk
    page = session.get("/desk/issues/daily/1?scheme=dark")
    policy = page.headers["content-security-policy"]
    assert "frame-src 'self'" in policy and "script-src" not in policy and "<script" not in page.body
    assert 'class="frames scheme-dark"' in page.body and page.body.count("<iframe") == 2
    email = session.get("/desk/issues/daily/1/email")
    assert email.status == 200 and "Desk story 1" in email.body
    framed = email.headers["content-security-policy"]
    assert "default-src 'none'" in framed and "frame-ancestors 'self'" in framed and "sandbox" in framed
    assert email.headers["x-frame-options"] == "SAMEORIGIN" and email.headers["cache-control"] == "no-store"
