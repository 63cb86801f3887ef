"""Counted story links against `digest web serve`: counted once, redirected, never forged,
scanners left out, and no reader identity in any link but unsubscribe and preferences."""

from __future__ import annotations

import http.client
import re
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from store_switch import store_at
from test_schedule_support import add_readers, article_times, grow_feed, make_workspace, utc
from web_process import SECRET, WebProcess, messages_to, start_web

from digest.cli import cli
from digest.stats.clicks import issue_clicks

READERS = ["ann@example.org", "bob@example.org", "cat@example.org"]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HOLD = 1  # [web] click_hold_seconds in these workspaces


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """A workspace with count_clicks on, its web app running, and one issue delivered
    (the hold is HOLD seconds, or the test's parameter)."""
    hold = getattr(request, "param", HOLD)
    ws = make_workspace(tmp_path / "ws")
    ws.config_path.write_text(
        ws.config_path.read_text("utf-8")
        + f"\n[render]\ncount_clicks = true\n\n[web]\nclick_hold_seconds = {hold}\n",
        "utf-8",
    )
    add_readers(ws, dict.fromkeys(READERS))
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 4, 5), timedelta(hours=3)), utc(2026, 11, 5))
    web = start_web(ws.config_path)
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    monkeypatch.setenv("DIGEST_BASE_URL", web.url)
    for args in (["ingest"], ["issues", "build", "daily", "--date", "2026-11-03"], ["send", "latest"]):
        result = CliRunner().invoke(cli, ["--config", str(ws.config_path), *args])
        assert result.exit_code == 0, result.output
    try:
        yield ws, web
    finally:
        web.stop()


def _message(ws, address: str = READERS[0]) -> EmailMessage:
    [msg] = messages_to(ws.outbox, address)
    return msg


def _links(msg: EmailMessage) -> list[str]:
    """Every URL in every part and in the List-Unsubscribe header."""
    found = re.findall(r"https?://[^\s<>\"')]+", str(msg["List-Unsubscribe"] or ""))
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            found += re.findall(r"https?://[^\s<>\"')]+", part.get_content())
    return [link.rstrip(".,") for link in found]


def _story_links(msg: EmailMessage) -> list[str]:
    return sorted({link for link in _links(msg) if "/r/" in link and not re.search(r"/r/\d+/c\.", link)})


def _canary(msg: EmailMessage) -> str:
    return next(link for link in _links(msg) if re.search(r"/r/\d+/c\.", link))


def _request(
    web: WebProcess, url: str, *, method: str = "GET", agent: str = BROWSER
) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, parts.path, headers={"User-Agent": agent})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _counts(ws, *, settle: float = HOLD + 1.5) -> dict[str, tuple[int, int]]:
    """The issue's click counts once every hold is over: link → (clicks, scanner)."""
    time.sleep(settle)
    db = store_at(ws.root / "digest.db")
    try:
        return issue_clicks(db, 1)
    finally:
        db.conn.close()


def _link_name(url: str) -> str:
    return urlsplit(url).path.split("/")[3].partition(".")[0]


def test_a_click_is_counted_once_and_redirected_to_the_story(served) -> None:
    ws, web = served
    msg = _message(ws)
    story = _story_links(msg)[0]
    response = _request(web, story)
    assert response.status == 302
    target = response.headers["Location"]
    assert target.startswith("https://example.org/") or target.startswith("http"), target
    assert "/r/" not in target
    db = store_at(ws.root / "digest.db")
    urls = {str(a["id"]): a["url"] for a in db.query("SELECT id, url FROM articles")}
    db.conn.close()
    assert target == urls[_link_name(story)]
    assert _counts(ws) == {_link_name(story): (1, 0)}


def test_every_reader_gets_the_same_story_links(served) -> None:
    ws, _ = served
    links = [_story_links(_message(ws, reader)) for reader in READERS]
    assert links[0] and links[0] == links[1] == links[2]


def test_a_forged_or_altered_link_is_refused(served) -> None:
    ws, web = served
    story = _story_links(_message(ws))[0]
    path = urlsplit(story).path
    name, _, signature = path.split("/")[3].partition(".")
    other_sig = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    forged = [
        f"/r/1/{name}.{other_sig}",  # one character of the signature changed
        f"/r/1/{int(name) + 1}.{signature}",  # another story under this one's signature
        f"/r/2/{name}.{signature}",  # another issue
        f"/r/1/{name}",  # no signature
        f"/r/1/https%3A%2F%2Fevil.example.{signature}",  # an address instead of a story
    ]
    for path in forged:
        response = _request(web, web.url + path)
        assert response.status == 404, path
        assert response.headers.get("Location") is None, path
    assert _counts(ws) == {}


def test_a_canary_hit_removes_that_clients_clicks(served) -> None:
    ws, web = served
    msg = _message(ws)
    first, second = _story_links(msg)[:2]
    scanner = "Mozilla/5.0 (compatible; LinkChecker 2.0)"
    assert _request(web, first, agent=scanner).status == 302
    assert _request(web, second, agent=scanner).status == 302
    assert _request(web, _canary(msg), agent=scanner).status == 302  # to the web version
    assert _request(web, first, agent=scanner).status == 302  # after the canary: still a scanner
    assert _request(web, first).status == 302  # a person, on another client
    counts = _counts(ws)
    assert counts[_link_name(first)] == (1, 2)
    assert counts[_link_name(second)] == (0, 1)
    assert counts["c"] == (0, 1)


def test_head_requests_and_early_scanner_agents_are_not_counted(served) -> None:
    ws, web = served
    story = _story_links(_message(ws))[0]
    assert _request(web, story, method="HEAD").status == 302
    barracuda = "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"
    assert _request(web, story, agent=barracuda).status == 302  # seconds after delivery
    assert _counts(ws) == {_link_name(story): (0, 2)}


def test_no_link_but_unsubscribe_and_preferences_carries_a_reader_token(served) -> None:
    ws, _ = served
    checked = 0
    for reader in READERS:
        msg = _message(ws, reader)
        links = _links(msg)
        tokens = {urlsplit(link).path.rsplit("/", 1)[1] for link in links if "/unsubscribe/" in link}
        tokens |= {urlsplit(link).path.rsplit("/", 1)[1] for link in links if "/preferences/" in link}
        assert tokens, links
        local = reader.split("@")[0]
        for link in links:
            personal = any(token in link for token in tokens) or reader in link or f"{local}%40" in link
            if personal:
                assert re.search(r"/(unsubscribe|preferences)/", link), link
            checked += 1
    assert checked > 3 * 10


def test_a_scanner_agent_long_after_delivery_is_counted(served) -> None:
    ws, web = served
    db = store_at(ws.root / "digest.db")
    db.execute(
        "UPDATE issues SET frozen_at = '2026-01-01T07:00:00+00:00', sent_at = '2026-01-01T07:05:00+00:00'"
    )
    db.conn.close()
    story = _story_links(_message(ws))[0]
    assert _request(web, story, agent="Mozilla/5.0 (compatible; Barracuda Sentinel (EE))").status == 302
    assert _counts(ws) == {_link_name(story): (1, 0)}


@pytest.mark.parametrize("served", [600], indirect=True)
def test_clicks_still_held_when_the_server_stops_are_counted(served) -> None:
    ws, web = served
    story = _story_links(_message(ws))[0]
    assert _request(web, story).status == 302
    web.stop()  # SIGTERM long before the 600 s hold is over
    assert _counts(ws, settle=0) == {_link_name(story): (1, 0)}
