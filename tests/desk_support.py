"""Helpers for the desk's tests: a workspace with an editor and a draft, a running web app,
and plain HTTP calls that do not follow redirects (each answer is looked at as it is)."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from conftest import new_workspace
from web_process import messages_to

EDITOR = "editor@example.org"


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-case names; all Set-Cookie lines), body text."""

    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: str

    def cookie(self, name: str) -> str | None:
        """The value a Set-Cookie line gives ``name`` (None when none does)."""
        for line in self.cookies:
            key, _, rest = line.partition("=")
            if key == name:
                return rest.split(";", 1)[0]
        return None


def call(url: str, method: str = "GET", form: dict[str, str] | None = None, **kw: str) -> Answer:
    """``method url`` with an optional urlencoded ``form``; ``cookie=``/``origin=`` set those headers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if "cookie" in kw:
        headers["Cookie"] = kw["cookie"]
    if "origin" in kw:
        headers["Origin"] = kw["origin"]
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, cookies, text)
    finally:
        conn.close()


def desk_workspace(path: Path, *, articles: int = 4, append: str = "", subscribers: tuple[str, ...] = ()):
    """`digest init` plus an editor (``EDITOR``) and ``articles`` invented stories in one category,
    1 to N hours old (newest first: story 1), and the ``subscribers`` given."""
    end = datetime.now(UTC).replace(microsecond=0)
    stories = [
        {
            "url": f"https://news.example.net/desk/{n}",
            "title": f"Desk story {n}",
            "source": "Example Wire",
            "category": "World",
            "published": end - timedelta(hours=n),
            "summary": f"The feed's summary of story {n}.",
        }
        for n in range(1, articles + 1)
    ]
    ws = new_workspace(
        path,
        append=append,
        articles=stories,
        subscribers=subscribers,
    )
    result = ws.run_cli("editors", "add", EDITOR)
    assert result.exit_code == 0, result.output
    return ws


def build_draft(ws) -> dict:
    """Compose daily/1 for the day up to now (the stories' window), as a draft."""
    from digest.compose.build import compose_issue

    db = ws.db()
    try:
        end = datetime.now(UTC).replace(microsecond=0)
        issue = compose_issue(db, ws.config, "daily", period_end=end).issue
    finally:
        db.close()
    assert issue is not None and issue["number"] == 1
    return issue


def mailed_signin_link(maildir: Path, address: str = EDITOR) -> str:
    """The sign-in link in the newest sign-in message to ``address``."""
    found = [m for m in messages_to(maildir, address) if "Sign in" in str(m["Subject"])]
    assert found, f"no sign-in message to {address}"
    text = found[-1].get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https?://\S+/desk/signin/\S+", text)
    assert match, text
    return match.group(0)


@dataclass
class Session:
    """A signed-in editor: the cookie to send and the CSRF token of the page's forms."""

    base: str
    cookie: str
    csrf: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def get(self, path: str) -> Answer:
        """GET a desk page with this session."""
        return call(self.base + path, cookie=f"digest_desk={self.cookie}")

    def post(self, path: str, form: dict[str, str]) -> Answer:
        """POST a desk form with this session (the CSRF token is the caller's to include)."""
        return call(self.base + path, "POST", form, cookie=f"digest_desk={self.cookie}")


def sign_in(base: str, link: str) -> Session:
    """Use a sign-in link as the browser does (GET the page, POST its button); the session."""
    token_path = urlsplit(link).path + (f"?{urlsplit(link).query}" if urlsplit(link).query else "")
    page = call(base + token_path)
    assert page.status == 200, page.body
    answer = call(base + token_path, "POST", {})
    assert answer.status == 303, answer.body
    cookie = answer.cookie("digest_desk")
    assert cookie
    session = Session(base, cookie)
    home = session.get("/desk")
    assert home.status == 200, home.body
    session.csrf = csrf_in(home.body)
    return session


def csrf_in(html: str) -> str:
    """The CSRF token in a desk page's forms."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)
