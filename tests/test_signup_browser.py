"""A reader's whole path in headless Chromium (Debian's, driven by Playwright), against `digest web serve`.

Sign up with the form, open the confirmation link from the maildir and press confirm,
then unsubscribe from the link in a delivered issue. The subscriber's status is checked
in the database after each step. Skips only when Chromium (or Playwright) is missing.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_switch import store_at
from test_web import _article
from web_process import link_in, make_workspace, messages_to, start_web

from digest.config import load_config
from digest.store.database import open_store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

EMAIL = "browser-reader@example.org"


def _status(db_path: Path) -> str | None:
    db = store_at(db_path, migrate=False)
    try:
        row = db.execute("SELECT status FROM subscribers WHERE email = ?", [EMAIL]).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def _deliver_an_issue(config_path: Path, base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose an issue from invented articles and deliver it to the maildir, as `digest send` would."""
    from digest.compose.build import compose_issue
    from digest.delivery import deliver_issue

    monkeypatch.setenv("DIGEST_BASE_URL", base_url)
    config = load_config(config_path)
    db = open_store(config.store)
    end = datetime.now(UTC).replace(microsecond=0)
    db["articles"].insert_all([_article(n, "World", end - timedelta(hours=n + 1)) for n in range(3)])
    issue = compose_issue(db, config, next(iter(config.editions)), period_end=end).issue
    assert issue is not None
    report = deliver_issue(db, config, issue["id"])
    assert report is not None
    db.close()


def test_sign_up_confirm_and_unsubscribe_in_a_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    config_path = make_workspace(tmp_path / "ws")
    db_path = config_path.parent / "digest.db"
    web = start_web(config_path)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            page = browser.new_page()

            page.goto(f"{web.url}/subscribe")
            page.get_by_label("Email address").fill(EMAIL)
            page.get_by_role("button", name="Subscribe").click()
            page.wait_for_load_state()
            assert page.get_by_role("heading", name="Check your inbox").is_visible()
            assert _status(db_path) == "pending"

            [confirmation] = messages_to(web.maildir(), EMAIL)
            page.goto(link_in(confirmation, "confirm"))
            assert _status(db_path) == "pending"  # opening the link changes nothing
            page.get_by_role("button", name="Yes, subscribe me").click()
            page.wait_for_load_state()
            assert page.get_by_role("heading", name="Subscription confirmed").is_visible()
            assert _status(db_path) == "active"

            _deliver_an_issue(config_path, web.url, monkeypatch)
            mails = messages_to(web.maildir(), EMAIL)
            issue_mail = [m for m in mails if "Welcome" not in str(m["Subject"])][-1]
            text = issue_mail.get_body(preferencelist=("plain",)).get_content()
            unsubscribe_url = re.search(rf"{re.escape(web.url)}/unsubscribe/\S+", text).group(0)
            page.goto(unsubscribe_url)
            assert _status(db_path) == "active"
            page.get_by_role("button").filter(has_text=re.compile("unsubscribe", re.IGNORECASE)).first.click()
            page.wait_for_load_state()
            assert _status(db_path) == "unsubscribed"
            browser.close()
    finally:
        web.stop()
