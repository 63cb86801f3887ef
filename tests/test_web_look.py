"""The web pages wear the publisher's brand and invite visitors to subscribe (issue #22).

Against a real `digest web serve` (tests/web_process.py), in Debian's Chromium driven by
Playwright at a 375 px phone width, light and dark: the sign-up box is a comfortable tap
target, no page scrolls sideways. Over plain HTTP: the public issue page carries no
personal footer and offers the sign-up form, the archive index has a subscribe box, and
the Atom feed's entries carry the issue's sanitised HTML.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import feedparser
import pytest
from conftest import new_workspace
from test_render_support import png_bytes
from test_web import _article
from web_process import SECRET, WebProcess, make_workspace, start_web

from digest.config import load_config
from digest.store.database import iso, open_store
from subscribers.store import add_subscriber
from subscribers.tokens import make_token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("DIGEST_SHOTS", "")) if os.environ.get("DIGEST_SHOTS") else None
"""Set DIGEST_SHOTS=<folder> to keep the screenshots for a look."""


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode("utf-8")


class Served(NamedTuple):
    """The running server, its sent issue and a reader's preferences page (path)."""

    web: WebProcess
    issue_id: int
    preferences: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`digest web serve` for a workspace with one sent issue (and an accent colour)."""
    config_path = make_workspace(tmp_path_factory.mktemp("look") / "ws")
    text = config_path.read_text("utf-8")
    config_path.write_text(
        re.sub(r"(?m)^\[render\]\n", '[render]\naccent_color = "#8a1c7c"\n', text, count=1)
    )
    config = load_config(config_path)
    db = open_store(config.store)
    from digest.compose.build import compose_issue

    day = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    categories = ["World", "Technology", "Science"]
    db["articles"].insert_all(
        [_article(i, categories[i % 3], day - timedelta(hours=i + 1)) for i in range(6)]
    )
    issue = compose_issue(db, config, next(iter(config.editions)), period_end=day).issue
    assert issue is not None
    db.execute(
        "UPDATE issues SET status = 'sent', frozen_at = ?, sent_at = ? WHERE id = ?",
        [iso(day), iso(day), issue["id"]],
    )
    reader = add_subscriber(db, "reader@example.org", source="cli")
    db.close()
    web = start_web(config_path)
    preferences = f"/preferences/{make_token(SECRET.encode(), reader['id'], 'preferences')}"
    try:
        yield Served(web, issue["id"], preferences)
    finally:
        web.stop()


def test_the_public_issue_page_has_no_personal_footer_and_offers_sign_up(
    served: Served,
) -> None:
    web, issue_id, _ = served
    body = _get(f"{web.url}/issues/{issue_id}")
    assert "Story number 1 about technology" in body
    assert "You get this email because" not in body
    assert "/unsubscribe" not in body and "/preferences" not in body
    assert "View in browser" not in body  # the page it would point to
    assert re.search(r'<form [^>]*action="/subscribe"', body)
    assert re.search(r'<input [^>]*name="email"', body)


def test_the_archive_index_has_a_subscribe_box(served: Served) -> None:
    web, _, _ = served
    body = _get(f"{web.url}/archive")
    assert re.search(r'<form [^>]*action="/subscribe"', body)
    assert re.search(r'<input [^>]*name="email"', body)


def test_feed_entries_carry_the_issues_sanitised_html(served: Served) -> None:
    web, _, _ = served
    xml = _get(f"{web.url}/feed.atom")
    assert '<content type="html">' in xml
    [entry] = feedparser.parse(xml).entries
    html = entry.content[0].value
    assert "Story number 1 about technology" in html
    assert 'href="https://news.example.net/story/1"' in html
    for personal in ("You get this email because", "/unsubscribe", "/preferences", "__DIGEST_"):
        assert personal not in html
    for unsafe in ("<style", "<script", "style=", "display:none", "<form"):
        assert unsafe not in html


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_fit_a_phone_and_the_sign_up_box_is_easy_to_tap(
    served: Served, scheme: str, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    web, issue_id, preferences = served
    shots = SHOTS or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 375, "height": 740}, color_scheme=scheme)
        for name, path in (
            ("subscribe", "/subscribe"),
            ("issue", f"/issues/{issue_id}"),
            ("archive", "/archive"),
            ("preferences", preferences),
        ):
            page.goto(web.url + path)
            page.screenshot(path=str(shots / f"{name}-{scheme}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls {overflow} px sideways at 375 px ({scheme})"
            if name == "preferences":
                continue
            box = page.locator('input[name="email"]').first
            size = box.bounding_box()
            font = page.evaluate("e => parseFloat(getComputedStyle(e).fontSize)", box.element_handle())
            assert size is not None and size["height"] >= 44, f"{path}: email box {size}"
            assert font >= 16, f"{path}: email box text {font} px"
        page.goto(web.url + "/subscribe")
        accent = page.evaluate("getComputedStyle(document.querySelector('button')).backgroundColor")
        if scheme == "light":
            assert accent == "rgb(138, 28, 124)"  # the configured accent_color, #8a1c7c
        browser.close()


def test_pages_show_the_logo_masthead_and_font(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    ws.edit_config(
        "[render]\n", '[render]\nlogo = "logo.png"\nmasthead = "News from the river"\nfont = "serif"\n'
    )
    (ws.path / "logo.png").write_bytes(png_bytes(200, 50, (157, 23, 77)))
    web = start_web(ws.config_file)
    try:
        for path in ("/archive", "/subscribe"):
            body = _get(web.url + path)
            assert re.search(r'<img src="/assets/logo\.png" width="200" height="50" alt="[^"]+">', body)
            assert "News from the river" in body
        css = _get(f"{web.url}/style.css")
        assert "--brand-font: Georgia" in css and "var(--brand-font" in css
    finally:
        web.stop()


def test_the_static_archive_has_the_same_look_and_invitations(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    ws.edit_config("[render]\n", '[render]\nlogo = "logo.png"\n')
    (ws.path / "logo.png").write_bytes(png_bytes(200, 50, (157, 23, 77)))
    db = ws.db()
    from digest.compose.build import compose_issue

    day = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    db["articles"].insert_all([_article(i, "World", day - timedelta(hours=i + 1)) for i in range(3)])
    issue = compose_issue(db, ws.config, next(iter(ws.config.editions)), period_end=day).issue
    assert issue is not None
    db.execute(
        "UPDATE issues SET status = 'sent', frozen_at = ?, sent_at = ? WHERE id = ?",
        [iso(day), iso(day), issue["id"]],
    )
    db.close()
    out = tmp_path / "public"
    result = ws.run_cli("archive", "build", str(out))
    assert result.exit_code == 0, result.output
    base = ws.config.publication.base_url.rstrip("/")
    index = (out / "index.html").read_text()
    assert '<img src="assets/logo.png"' in index
    assert f'action="{base}/subscribe"' in index
    page = (out / "issues" / f"{issue['id']}.html").read_text()
    assert "You get this email because" not in page and "/unsubscribe" not in page
    assert f'action="{base}/subscribe"' in page
    assert '<content type="html">' in (out / "feed.atom").read_text()
