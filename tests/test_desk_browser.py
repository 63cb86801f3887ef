"""An editor's whole path through the desk in headless Chromium (Debian's, driven by Playwright),
against `digest web serve`: sign in from the mailed link, drop a story, make another the lead,
edit a summary, approve; then `digest send` delivers, and every delivered message shows exactly
that. Skips only when Chromium (or Playwright) is missing."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
from desk_support import EDITOR, build_draft, desk_workspace, mailed_signin_link
from web_process import messages_to, start_web

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

READERS = ("reader-one@example.org", "reader-two@example.org")
EDITED = "Written by the editor at the desk."


def _story_ids(ws) -> dict[str, int]:
    db = ws.db()
    try:
        return {title: i for i, title in db.execute("SELECT id, title FROM articles")}
    finally:
        db.close()


def test_an_editor_shapes_and_approves_an_issue_that_readers_then_get(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ws = desk_workspace(tmp_path / "ws", subscribers=READERS)
    ws.edit_config("[editions.daily]\n", '[editions.daily]\napproval = "required"\n')
    build_draft(ws)
    ids = _story_ids(ws)
    web = start_web(ws.config_file)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            page = browser.new_page(viewport={"width": 375, "height": 800})

            page.goto(f"{web.url}/desk/signin")
            page.get_by_label("Your email address").fill(EDITOR)
            page.get_by_role("button", name="Email me a sign-in link").click()
            assert page.get_by_role("heading", name="Check your inbox").is_visible()
            page.wait_for_timeout(300)  # the link leaves after the answer
            page.goto(_poll(lambda: mailed_signin_link(web.maildir())))
            page.get_by_role("button", name="Sign in").click()
            assert page.get_by_role("heading", name="The desk").is_visible()

            assert page.get_by_text("awaiting approval").is_visible()
            page.get_by_role("link", name="daily/1").click()
            page.get_by_role("button", name="Drop: Desk story 2").click()
            assert page.get_by_role("status").inner_text().startswith("daily/1: dropped")
            page.get_by_role("button", name="Make lead: Desk story 3").click()
            story4 = page.locator(f"#story-{ids['Desk story 4']}")
            story4.get_by_text("Edit", exact=True).click()
            story4.get_by_label("Summary").fill(EDITED)
            story4.get_by_role("button", name="Save story").click()
            page.get_by_role("button", name="Approve", exact=True).click()
            assert page.get_by_role("button", name="Unapprove").is_visible()
            browser.close()
    finally:
        web.stop()

    sent = ws.run_cli("send", "daily/1")  # refused without the approval given at the desk
    assert sent.exit_code == 0, sent.output
    for reader in READERS:
        [message] = messages_to(ws.path / "outbox", reader)
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        for body in (text, html, str(message["Subject"])):
            assert "Desk story 2" not in body
        assert EDITED in text and EDITED in html
        assert "The feed's summary of story 4" not in text
    db = ws.db()
    snapshot = json.loads(db.execute("SELECT snapshot FROM issues").fetchone()[0])
    db.close()
    assert snapshot["lead_id"] == ids["Desk story 3"]
    if importlib.util.find_spec("digest.render.lead") is None:
        pytest.xfail("the renderer in this tree does not show the lead story first (the publisher's look)")
    body = text.split("In this issue", 1)[-1]
    positions = {n: body.index(f"Desk story {n}") for n in (1, 3, 4)}
    assert positions[3] < positions[1] < positions[4], positions  # the lead first


def _poll(read, seconds: float = 10):
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
