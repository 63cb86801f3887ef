"""The desk's door, against a real `digest web serve`: sign-in by a mailed link, the session
cookie, CSRF, and the 404 that everyone else gets.

Every test signs in the way an editor does (the link from the maildir, or the one
`digest editors link` prints) and then tries what an attacker would: forged, expired and
reused links, altered cookies, a form without its CSRF token, a reader's unsubscribe token.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from desk_support import EDITOR, build_draft, call, desk_workspace, mailed_signin_link, sign_in
from web_process import SECRET, messages_to, start_web

from digest.compose.review_links import make_review_token
from digest.editors import session_cookie, signin_link
from digest.store.database import utcnow
from subscribers.tokens import make_token


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """One workspace (an editor, four stories, a draft) served for the whole module."""
    ws = desk_workspace(tmp_path_factory.mktemp("desk") / "ws", append="")
    ws.edit_config(
        'base_url = "http://localhost:8080"', f'base_url = "http://localhost:8080"\neditors = ["{EDITOR}"]'
    )
    build_draft(ws)
    web = start_web(ws.config_file)
    yield ws, web
    web.stop()


def _link(ws, web, **kw) -> str:
    """A sign-in link made as `digest editors link` makes it, on the served address."""
    db = ws.db()
    try:
        link = signin_link(db, ws.config, SECRET.encode(), EDITOR, **kw)
    finally:
        db.close()
    parts = urlsplit(link)
    return web.url + parts.path + (f"?{parts.query}" if parts.query else "")


def test_signs_in_with_the_mailed_link_and_the_cookie_is_locked_down(served) -> None:
    _, web = served
    asked = call(f"{web.url}/desk/signin", "POST", {"email": EDITOR})
    assert asked.status == 200 and "Check your inbox" in asked.body
    link = _wait_for_link(web)
    assert link.startswith(f"{web.url}/desk/signin/")
    opened = call(link)  # a mail scanner's GET uses nothing up
    assert opened.status == 200 and "Sign in" in opened.body
    used = call(link, "POST", {})
    assert used.status == 303 and used.headers["location"] == "/desk"
    [set_cookie] = used.cookies
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/desk" in set_cookie
    assert "Max-Age=43200" in set_cookie and "Secure" not in set_cookie  # http here
    home = call(f"{web.url}/desk", cookie=f"digest_desk={used.cookie('digest_desk')}")
    assert home.status == 200 and "daily/1" in home.body
    assert home.headers["x-robots-tag"].startswith("noindex")
    assert home.headers["referrer-policy"] == "no-referrer"
    assert home.headers["cache-control"] == "no-store"
    assert "script-src" not in home.headers["content-security-policy"]


def test_a_stranger_asking_gets_the_same_page_and_no_mail(served) -> None:
    _, web = served
    asked = call(f"{web.url}/desk/signin", "POST", {"email": "stranger@example.org"})
    assert asked.status == 200 and "Check your inbox" in asked.body
    assert messages_to(web.maildir(), "stranger@example.org") == []


def test_the_review_link_leads_to_sign_in_and_back_to_the_issue(served) -> None:
    ws, web = served
    review = make_review_token(SECRET.encode(), _issue_id(ws), EDITOR)
    answer = call(f"{web.url}/desk/issues/daily/1?review={review}")
    assert answer.status == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == "/desk/signin"
    assert parse_qs(target.query) == {"next": ["/desk/issues/daily/1"], "email": [EDITOR]}
    form = call(web.url + answer.headers["location"])
    assert form.status == 200 and f'value="{EDITOR}"' in form.body

    before = len(_signin_messages(web))
    asked = call(f"{web.url}/desk/signin", "POST", {"email": EDITOR, "next": "/desk/issues/daily/1"})
    assert asked.status == 200
    link = _poll(lambda: _signin_messages(web)[before:] and mailed_signin_link(web.maildir()))
    used = call(link, "POST", {"next": "/desk/issues/daily/1"})
    assert used.status == 303 and used.headers["location"] == "/desk/issues/daily/1"
    page = call(f"{web.url}/desk/issues/daily/1", cookie=f"digest_desk={used.cookie('digest_desk')}")
    assert page.status == 200 and "Desk story 1" in page.body


def test_a_review_link_for_another_issue_or_expired_is_a_404(served) -> None:
    ws, web = served
    other = make_review_token(SECRET.encode(), _issue_id(ws) + 1, EDITOR)
    old = make_review_token(SECRET.encode(), _issue_id(ws), EDITOR, now=utcnow() - timedelta(days=8))
    stranger = make_review_token(SECRET.encode(), _issue_id(ws), "someone@example.org")
    for token in (other, old, stranger, "1.2.3"):
        assert call(f"{web.url}/desk/issues/daily/1?review={token}").status == 404, token


def test_a_next_address_off_the_desk_is_ignored(served) -> None:
    ws, web = served
    for wanted in ("https://evil.example/", "//evil.example/desk", "/desk/../archive", "/archive"):
        used = call(_link(ws, web), "POST", {"next": wanted})
        assert used.status == 303 and used.headers["location"] == "/desk", wanted


def test_a_reused_link_is_refused(served) -> None:
    ws, web = served
    link = _link(ws, web)
    sign_in(web.url, link)
    again = call(link, "POST", {})
    assert again.status == 400 and "used already" in again.body
    assert again.cookie("digest_desk") is None


def test_an_expired_link_is_refused(served) -> None:
    ws, web = served
    link = _link(ws, web, now=utcnow() - timedelta(minutes=16))
    answer = call(link, "POST", {})
    assert answer.status == 400 and "expired" in answer.body
    assert answer.cookie("digest_desk") is None


def test_a_forged_link_is_refused(served) -> None:
    ws, web = served
    link = _link(ws, web)
    editor_id, rest = link.rsplit("/", 1)[1].split(".", 1)
    for forged in (
        link[:-1] + ("A" if link[-1] != "A" else "B"),  # the MAC altered
        link.replace(f"/{editor_id}.", f"/{int(editor_id) + 1}.", 1),  # another editor
        link.rsplit("/", 1)[0] + "/" + rest,  # a piece missing
    ):
        answer = call(forged, "POST", {})
        assert answer.status == 400, forged
        assert answer.cookie("digest_desk") is None
    assert call(link, "POST", {}).status == 303  # the real one still works


def test_a_readers_unsubscribe_token_opens_nothing(served) -> None:
    ws, web = served
    db = ws.db()
    try:
        from subscribers.store import add_subscriber

        reader = add_subscriber(db, "reader@example.org")
    finally:
        db.close()
    token = make_token(SECRET.encode(), reader["id"], "unsubscribe")
    assert call(f"{web.url}/desk/signin/{token}", "POST", {}).status == 400
    assert call(f"{web.url}/desk", cookie=f"digest_desk={token}").status == 404
    assert call(f"{web.url}/desk/issues/daily/1?review={token}").status == 404


def test_nobody_signed_in_gets_the_404_of_a_page_that_does_not_exist(served) -> None:
    _, web = served
    missing = call(f"{web.url}/no-such-page")
    for path in ("/desk", "/desk/issues/daily/1", "/desk/issues/daily/1/email"):
        answer = call(web.url + path)
        assert (answer.status, answer.body) == (404, missing.body), path
    posted = call(f"{web.url}/desk/issues/daily/1/drop", "POST", {"article": "1", "version": "0"})
    assert posted.status == 404


def test_an_altered_cookie_is_refused(served) -> None:
    ws, web = served
    session = sign_in(web.url, _link(ws, web))
    editor_id, issued, nonce, mac = session.cookie.split(".")
    for forged in (
        f"{editor_id}.{issued}.{nonce}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{editor_id}.{int(issued) + 3600}.{nonce}.{mac}",  # a longer life
        f"{int(editor_id) + 1}.{issued}.{nonce}.{mac}",
        f"{editor_id}.{issued}.{nonce}",
    ):
        assert call(f"{web.url}/desk", cookie=f"digest_desk={forged}").status == 404, forged
    assert session.get("/desk").status == 200


def test_a_session_ends_after_twelve_hours(served) -> None:
    ws, web = served
    editor_id = sign_in(web.url, _link(ws, web)).cookie.split(".")[0]
    now = utcnow()
    fresh = session_cookie(SECRET.encode(), int(editor_id), now=now - timedelta(hours=11, minutes=59))
    stale = session_cookie(SECRET.encode(), int(editor_id), now=now - timedelta(hours=12, minutes=1))
    assert call(f"{web.url}/desk", cookie=f"digest_desk={fresh}").status == 200
    assert call(f"{web.url}/desk", cookie=f"digest_desk={stale}").status == 404


def test_a_form_without_this_sessions_csrf_token_is_refused(served) -> None:
    ws, web = served
    session = sign_in(web.url, _link(ws, web))
    other = sign_in(web.url, _link(ws, web))
    assert session.post("/desk/signout", {}).status == 403
    assert session.post("/desk/signout", {"csrf": other.csrf}).status == 403
    refused = call(
        f"{web.url}/desk/signout",
        "POST",
        {"csrf": session.csrf},
        cookie=f"digest_desk={session.cookie}",
        origin="https://evil.example",
    )
    assert refused.status == 403
    assert session.get("/desk").status == 200
    assert session.post("/desk/signout", {"csrf": session.csrf}).status == 303


def test_a_removed_editors_session_ends(served) -> None:
    ws, web = served
    session = sign_in(web.url, _link(ws, web))
    assert ws.run_cli("editors", "remove", EDITOR).exit_code == 0
    try:
        assert session.get("/desk").status == 404
    finally:
        assert ws.run_cli("editors", "add", EDITOR).exit_code == 0


def test_sign_in_requests_are_limited_per_address_and_per_client(tmp_path: Path) -> None:
    ws = desk_workspace(tmp_path / "ws", articles=0)
    web = start_web(ws.config_file)
    try:
        answers = [call(f"{web.url}/desk/signin", "POST", {"email": EDITOR}).status for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        others = [
            call(f"{web.url}/desk/signin", "POST", {"email": f"n{n}@example.org"}).status for n in range(8)
        ]
        assert others == [200] * 7 + [429]  # ten from this client in the hour, the 11th refused
    finally:
        web.stop()


def test_the_cookie_is_secure_when_the_public_address_is_https(tmp_path: Path) -> None:
    ws = desk_workspace(tmp_path / "ws", articles=0)
    web = start_web(ws.config_file, extra_env={"DIGEST_BASE_URL": "https://desk.example.org"})
    try:
        answer = call(_link(ws, web), "POST", {})
        assert answer.status == 303 and "Secure" in answer.cookies[0]
    finally:
        web.stop()


def _issue_id(ws) -> int:
    db = ws.db()
    try:
        return db.execute("SELECT id FROM issues WHERE edition = 'daily' AND number = 1").fetchone()[0]
    finally:
        db.close()


def _signin_messages(web) -> list:
    return [m for m in messages_to(web.maildir(), EDITOR) if "Sign in" in str(m["Subject"])]


def _poll(read, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = read()
        except AssertionError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("nothing arrived in time")
        time.sleep(0.1)


def _wait_for_link(web) -> str:
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            return mailed_signin_link(web.maildir())
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
