"""`/desk/stats` against a real `digest web serve`: the charts of `digest stats --html` for a
signed-in editor, a 404 for anyone else, and a policy that lets nothing but inline styles in."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from desk_support import EDITOR, build_draft, call, desk_workspace, sign_in
from web_process import SECRET, start_web

from digest.editors import signin_link


@pytest.fixture
def desk(tmp_path: Path):
    """A served workspace with a draft and a signed-in editor."""
    ws = desk_workspace(tmp_path / "ws")
    build_draft(ws)
    web = start_web(ws.config_file)
    db = ws.db()
    link = signin_link(db, ws.config, SECRET.encode(), EDITOR)
    db.close()
    session = sign_in(web.url, web.url + urlsplit(link).path)
    yield web, session
    web.stop()


def test_an_editor_sees_the_charts(desk) -> None:
    _, session = desk
    assert 'href="/desk/stats"' in session.get("/desk").body
    page = session.get("/desk/stats?days=7")  # nothing sent yet: the list size and its days
    assert page.status == 200
    assert page.body.count("<svg") == 2 and "<script" not in page.body.lower()
    assert '<a href="/desk">← The desk</a>' in page.body
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'unsafe-inline'" in csp and "script" not in csp
    assert page.headers["cache-control"] == "no-store"


def test_anyone_else_gets_a_404(desk) -> None:
    web, _ = desk
    answer = call(web.url + "/desk/stats")
    assert answer.status == 404
    assert "<svg" not in answer.body
