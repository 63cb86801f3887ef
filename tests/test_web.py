"""The web app over real HTTP: a werkzeug server on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from werkzeug.serving import make_server

from digest.config import Config, load_config
from digest.delivery.ledger import forget_reader
from digest.store.database import iso, open_store
from digest.web import create_app, redact_path
from subscribers.store import add_subscriber, remove_subscriber
from subscribers.tokens import load_secret, make_token

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Reply:
    status: int
    headers: Message
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def http(
    method: str, url: str, data: bytes | dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One real HTTP request; redirects are returned, not followed; no cookie jar."""
    if isinstance(data, dict):
        data = urllib.parse.urlencode(data, doseq=True).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return Reply(resp.status, resp.headers, resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read().decode("utf-8"))


@dataclass
class Site:
    url: str
    config: Config
    db: sqlite_utils.Database
    secret: bytes

    def token(self, subscriber_id: int, purpose: str, now: datetime | None = None) -> str:
        return make_token(self.secret, subscriber_id, purpose, now=now)

    def link(self, purpose: str, subscriber_id: int, now: datetime | None = None) -> str:
        return f"{self.url}/{purpose}/{self.token(subscriber_id, purpose, now)}"

    def subscriber(self, subscriber_id: int) -> dict[str, Any]:
        return self.db["subscribers"].get(subscriber_id)

    def events(self, subscriber_id: int) -> list[dict[str, Any]]:
        return list(self.db["events"].rows_where("subscriber_id = ?", [subscriber_id], order_by="id"))


@pytest.fixture
def site(workspace: Path) -> Iterator[Site]:
    """The app for a fresh workspace, served on a free port in a background thread.

    Subscribers: ada@example.org (active) and bob@example.org (pending, double opt-in).
    """
    config = load_config(workspace / "digest.toml")
    setup = open_store(config.store)
    add_subscriber(setup, "ada@example.org", name="Ada", source="cli")
    add_subscriber(setup, "bob@example.org", name="Bob", status="pending", source="cli")
    setup.conn.close()
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    config.publication.base_url = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    db = open_store(config.store)
    try:
        yield Site(config.publication.base_url, config, db, load_secret(config))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        db.conn.close()


def _id(site: Site, email: str) -> int:
    return site.db.execute("SELECT id FROM subscribers WHERE email = ?", [email]).fetchone()[0]


# ---------------------------------------------------------------- unsubscribe


def test_unsubscribe_get_shows_a_button_and_changes_nothing(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    reply = http("GET", site.link("unsubscribe", ada))
    assert reply.status == 200
    assert 'method="post"' in reply.body and "<button" in reply.body
    assert "ada@example.org" in reply.body
    assert site.subscriber(ada)["status"] == "active"
    assert not [e for e in site.events(ada) if e["kind"] == "unsubscribe"]


def test_head_requests_change_nothing_either(site: Site) -> None:
    ada, bob = _id(site, "ada@example.org"), _id(site, "bob@example.org")
    assert http("HEAD", site.link("unsubscribe", ada)).status == 200
    assert http("HEAD", site.link("confirm", bob)).status == 200
    assert site.subscriber(ada)["status"] == "active"
    assert site.subscriber(bob)["status"] == "pending"


def test_concurrent_one_click_unsubscribes_all_land(site: Site) -> None:
    """Mail providers fire one-click POSTs in bursts: each request has its own connection."""
    from concurrent.futures import ThreadPoolExecutor

    ids = [add_subscriber(site.db, f"reader{n}@example.org", source="import")["id"] for n in range(24)]
    body = b"List-Unsubscribe=One-Click"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: http("POST", site.link("unsubscribe", i), body).status, ids))
    assert statuses == [200] * len(ids)
    placeholders = ",".join("?" * len(ids))
    rows = site.db.execute(f"SELECT DISTINCT status FROM subscribers WHERE id IN ({placeholders})", ids)
    assert [r[0] for r in rows] == ["unsubscribed"]


def test_unsubscribe_post_from_the_page_unsubscribes_and_records_a_web_event(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    reply = http("POST", site.link("unsubscribe", ada), {"List-Unsubscribe": "One-Click"})
    assert reply.status == 200
    assert "unsubscribed" in reply.body.lower()
    assert site.subscriber(ada)["status"] == "unsubscribed"
    events = [e for e in site.events(ada) if e["kind"] == "unsubscribe"]
    assert len(events) == 1 and events[0]["source"] == "web"


def test_rfc8058_one_click_post_works_without_cookies_and_is_idempotent(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    url = site.link("unsubscribe", ada)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    reply = http("POST", url, b"List-Unsubscribe=One-Click", headers)
    assert reply.status == 200
    assert "Set-Cookie" not in reply.headers
    assert site.subscriber(ada)["status"] == "unsubscribed"
    again = http("POST", url, b"List-Unsubscribe=One-Click", headers)
    assert again.status == 200
    assert len([e for e in site.events(ada) if e["kind"] == "unsubscribe"]) == 1
    detail = json.loads(next(e for e in site.events(ada) if e["kind"] == "unsubscribe")["detail"])
    assert detail.get("method") == "one-click"


def test_one_click_as_multipart_form_data(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    boundary = "xYzZY"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert http("POST", site.link("unsubscribe", ada), body, headers).status == 200
    assert site.subscriber(ada)["status"] == "unsubscribed"


@pytest.mark.parametrize("purpose", ["unsubscribe", "preferences", "confirm"])
def test_altered_token_gets_a_friendly_400_and_changes_nothing(site: Site, purpose: str) -> None:
    ada, bob = _id(site, "ada@example.org"), _id(site, "bob@example.org")
    subscriber_id = bob if purpose == "confirm" else ada
    token = site.token(subscriber_id, purpose)
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    before = site.subscriber(subscriber_id)
    events_before = site.events(subscriber_id)
    for method in ("GET", "POST"):
        reply = http(method, f"{site.url}/{purpose}/{altered}", {"List-Unsubscribe": "One-Click"})
        assert reply.status == 400
        assert "does not work" in reply.body
        assert "Traceback" not in reply.body
    assert site.subscriber(subscriber_id) == before
    assert site.events(subscriber_id) == events_before


def test_unsubscribe_link_of_a_removed_subscriber_answers_200_and_changes_nothing(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    url = site.link("unsubscribe", ada)
    remove_subscriber(site.db, ada, forget_deliveries=forget_reader, source="cli")
    count = site.db["events"].count
    reply = http("POST", url, b"List-Unsubscribe=One-Click")
    assert reply.status == 200 and "not on the list" in reply.body
    assert site.db["events"].count == count
    assert http("GET", site.link("preferences", ada)).status == 400


def test_token_for_another_purpose_is_refused(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    token = site.token(ada, "preferences")
    reply = http("POST", f"{site.url}/unsubscribe/{token}", {"List-Unsubscribe": "One-Click"})
    assert reply.status == 400
    assert site.subscriber(ada)["status"] == "active"


def test_garbage_tokens_never_produce_a_traceback(site: Site) -> None:
    for token in ("x", "....", "%00%ff", "a" * 2000, "é"):
        reply = http("GET", f"{site.url}/unsubscribe/{urllib.parse.quote(token)}")
        assert reply.status == 400, token
        assert "Traceback" not in reply.body


# ---------------------------------------------------------------- confirm


def test_confirm_moves_pending_to_active_on_post_only(site: Site) -> None:
    bob = _id(site, "bob@example.org")
    url = site.link("confirm", bob)
    page = http("GET", url)
    assert page.status == 200 and "<button" in page.body
    assert site.subscriber(bob)["status"] == "pending"
    reply = http("POST", url, b"")
    assert reply.status == 200
    assert site.subscriber(bob)["status"] == "active"
    confirms = [e for e in site.events(bob) if e["kind"] == "confirm"]
    assert len(confirms) == 1 and confirms[0]["source"] == "web"
    # A second click is harmless.
    assert http("POST", url, b"").status == 200
    assert len([e for e in site.events(bob) if e["kind"] == "confirm"]) == 1


def test_expired_confirm_token_is_refused(site: Site) -> None:
    bob = _id(site, "bob@example.org")
    url = site.link("confirm", bob, now=NOW - timedelta(days=30))
    reply = http("POST", url, b"")
    assert reply.status == 400
    assert "expired" in reply.body
    assert site.subscriber(bob)["status"] == "pending"


def test_confirm_link_of_an_active_subscriber_is_harmless(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    events = site.events(ada)
    reply = http("POST", site.link("confirm", ada), b"")
    assert reply.status == 200 and "already confirmed" in reply.body
    assert site.events(ada) == events


def test_confirm_does_not_resubscribe_someone_who_left(site: Site) -> None:
    bob = _id(site, "bob@example.org")
    confirm_url = site.link("confirm", bob)
    http("POST", site.link("unsubscribe", bob), {"List-Unsubscribe": "One-Click"})
    assert site.subscriber(bob)["status"] == "unsubscribed"
    reply = http("POST", confirm_url, b"")
    assert reply.status == 409
    assert site.subscriber(bob)["status"] == "unsubscribed"


# ---------------------------------------------------------------- preferences


def test_preferences_form_shows_editions_categories_and_zone(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    reply = http("GET", site.link("preferences", ada))
    assert reply.status == 200
    for edition in site.config.editions.values():
        assert f'value="{edition.key}"' in reply.body and edition.title in reply.body
    assert 'name="category" value="Science"' in reply.body
    assert "Europe/Berlin" in reply.body
    assert 'name="timezone"' in reply.body


def test_the_time_zone_list_offers_only_real_geographic_zones(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    url = site.link("preferences", ada)
    offered = re.findall(r"<option(?: selected)?>([^<]+)</option>", http("GET", url).body)
    assert {"Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "UTC"} <= set(offered)
    for leftover in ("Factory", "localtime", "posixrules", "EST5EDT", "Etc/GMT+5"):
        assert leftover not in offered
    assert not [zone for zone in offered if zone.startswith(("posix/", "right/", "SystemV/"))]
    assert (
        http("POST", url, {"edition": ["daily"], "category": ["Science"], "timezone": "Factory"}).status
        == 400
    )
    assert site.subscriber(ada)["timezone"] is None


def test_a_legacy_zone_a_reader_already_has_is_shown_and_kept(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    site.db["subscribers"].update(ada, {"timezone": "US/Eastern"})
    url = site.link("preferences", ada)
    assert "<option selected>US/Eastern</option>" in http("GET", url).body
    form = {"edition": ["daily"], "category": ["Science"], "timezone": "US/Eastern"}
    assert http("POST", url, form).status == 303
    assert site.subscriber(ada)["timezone"] == "US/Eastern"


def test_preferences_post_saves_and_records_a_web_event(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    url = site.link("preferences", ada)
    form = {"edition": ["weekly"], "category": ["Science", "Culture"], "timezone": "America/New_York"}
    reply = http("POST", url, form)
    assert reply.status == 303
    assert reply.headers["Location"].endswith("saved=1")
    sub = site.subscriber(ada)
    assert json.loads(sub["editions"]) == ["weekly"]
    assert sorted(json.loads(sub["categories"])) == ["Culture", "Science"]
    assert sub["timezone"] == "America/New_York"
    assert sub["status"] == "active"
    web_events = [e for e in site.events(ada) if e["source"] == "web"]
    assert web_events, site.events(ada)

    page = http("GET", url + "?saved=1")
    assert "saved" in page.body
    assert "<option selected>America/New_York</option>" in page.body
    assert 'value="weekly" checked' in page.body
    assert 'value="daily" checked' not in page.body


def test_preferences_all_ticked_means_all(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    url = site.link("preferences", ada)
    http("POST", url, {"edition": ["weekly"], "category": ["Science"], "timezone": ""})
    offered = re.findall(r'name="category" value="([^"]+)"', http("GET", url).body)
    # Every category an issue can carry is offered, not only the editions' order.
    assert {"World", "Technology", "Science", "Culture", "General"} <= set(offered)
    everything = {"edition": list(site.config.editions), "category": offered, "timezone": ""}
    assert http("POST", url, everything).status == 303
    sub = site.subscriber(ada)
    assert sub["editions"] is None and sub["categories"] is None and sub["timezone"] is None


def test_saving_preferences_keeps_categories_and_editions_the_config_does_not_list(site: Site) -> None:
    """A category (or edition) set with the CLI that no edition lists is offered, ticked, and
    survives a save that only changes the time zone."""
    from subscribers.store import set_preferences

    ada = _id(site, "ada@example.org")
    set_preferences(
        site.db, ada, editions=["daily", "retired"], categories=["Gardening", "science"], source="cli"
    )
    url = site.link("preferences", ada)
    page = http("GET", url).body
    assert 'name="category" value="Gardening" checked' in page
    assert 'name="category" value="Science" checked' in page
    assert 'name="category" value="World" checked' not in page
    assert 'name="edition" value="retired" checked' in page
    # What the browser submits: the ticked boxes, and a new zone.
    form = {
        "edition": ["daily", "retired"],
        "category": ["Science", "Gardening"],
        "timezone": "Europe/Berlin",
    }
    assert http("POST", url, form).status == 303
    sub = site.subscriber(ada)
    assert sorted(json.loads(sub["categories"])) == ["Gardening", "Science"]
    assert json.loads(sub["editions"]) == ["daily", "retired"]
    assert sub["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"edition": ["daily"], "category": ["Science"], "timezone": "Mars/Olympus_Mons"}, "not a time zone"),
        ({"edition": ["daily"], "category": ["Science"], "timezone": "../../etc/passwd"}, "not a time zone"),
        ({"edition": ["monthly"], "category": ["Science"], "timezone": ""}, "Unknown edition"),
        ({"edition": [], "category": ["Science"], "timezone": ""}, "at least one edition"),
        ({"edition": ["daily"], "category": ["Gossip"], "timezone": ""}, "Unknown category"),
        ({"edition": ["daily"], "category": [], "timezone": ""}, "at least one category"),
    ],
)
def test_invalid_preferences_are_refused_with_a_message(
    site: Site, form: dict[str, Any], message: str
) -> None:
    ada = _id(site, "ada@example.org")
    before = site.subscriber(ada)
    reply = http("POST", site.link("preferences", ada), form)
    assert reply.status == 400
    assert message in reply.body
    assert 'role="alert"' in reply.body
    assert site.subscriber(ada) == before


def test_user_input_is_escaped_in_the_error_page(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    form = {"edition": ["daily"], "category": ["Science"], "timezone": "<script>alert(1)</script>"}
    reply = http("POST", site.link("preferences", ada), form)
    assert reply.status == 400
    assert "<script>" not in reply.body
    assert "&lt;script&gt;" in reply.body


# ---------------------------------------------------------------- security headers


def test_security_headers(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    for url in (site.link("unsubscribe", ada), site.link("preferences", ada), f"{site.url}/archive"):
        reply = http("GET", url)
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        csp = reply.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "frame-ancestors 'none'" in csp
        assert reply.headers["Referrer-Policy"] == "no-referrer"
        assert "Set-Cookie" not in reply.headers
    token_page = http("GET", site.link("preferences", ada))
    assert token_page.headers["Cache-Control"] == "no-store"
    assert "noindex" in token_page.headers["X-Robots-Tag"]
    assert 'name="referrer" content="no-referrer"' in token_page.body
    assert "http://" not in token_page.body.replace(site.url, "") and "https://" not in token_page.body


def test_stylesheet_is_served_locally(site: Site) -> None:
    reply = http("GET", f"{site.url}/style.css")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/css")
    assert "body" in reply.body


def test_healthz_and_unknown_pages(site: Site) -> None:
    assert http("GET", f"{site.url}/healthz").body == "ok\n"
    missing = http("GET", f"{site.url}/nope")
    assert missing.status == 404 and "not found" in missing.body.lower()
    wrong_method = http("DELETE", f"{site.url}/archive")
    assert wrong_method.status == 405 and "Traceback" not in wrong_method.body


def test_redact_path_hides_tokens() -> None:
    assert redact_path("/unsubscribe/abc.def") == "/unsubscribe/…"
    assert redact_path("/preferences/abc?saved=1") == "/preferences/…?saved=1"
    assert redact_path("GET /confirm/abc HTTP/1.1") == "GET /confirm/… HTTP/1.1"
    assert redact_path("/issues/3") == "/issues/3"


# ---------------------------------------------------------------- issues and archive


def _article(n: int, category: str, published: datetime) -> dict[str, Any]:
    return {
        "guid": f"urn:test:web:{n}",
        "url": f"https://news.example.net/story/{n}",
        "title": f"Story number {n} about {category.lower()}",
        "source": "Example Wire",
        "category": category,
        "published_at": iso(published),
        "summary": f"<p>A short invented summary for story {n}.</p>",
        "summary_text": f"A short invented summary for story {n}.",
        "reading_minutes": 2,
        "created_at": iso(published),
        "updated_at": iso(published),
    }


@pytest.fixture
def issues(site: Site) -> dict[str, int]:
    """Two daily issues composed from invented articles: one sent, one left as a draft."""
    from digest.compose.build import compose_issue

    day1 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    categories = ["World", "Technology", "Science", "Culture"]
    site.db["articles"].insert_all(
        [_article(i, categories[i % 4], day1 - timedelta(hours=i + 1)) for i in range(8)]
        + [_article(100 + i, categories[i % 4], day2 - timedelta(hours=i + 1)) for i in range(4)]
    )
    sent = compose_issue(site.db, site.config, "daily", period_end=day1).issue
    draft = compose_issue(site.db, site.config, "daily", period_end=day2).issue
    assert sent and draft
    # What the send engine does when it finishes; the web app only reads the status.
    site.db.execute(
        "UPDATE issues SET status = 'sent', frozen_at = ?, sent_at = ? WHERE id = ?",
        [iso(day1), iso(day1), sent["id"]],
    )
    return {"sent": sent["id"], "draft": draft["id"]}


def test_view_in_browser_shows_a_sent_issue_with_no_placeholders_left(
    site: Site, issues: dict[str, int]
) -> None:
    from digest.render.personalise import PLACEHOLDERS

    reply = http("GET", f"{site.url}/issues/{issues['sent']}")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "Story number 1 about technology" in reply.body
    for token in PLACEHOLDERS.values():
        assert token not in reply.body
    csp = reply.headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    # The email's personal footer is left out of the public page (issue #22); the neutral
    # page a forwarded copy's footer points to still answers.
    assert f"{site.url}/unsubscribe" not in reply.body
    assert http("GET", f"{site.url}/unsubscribe").status == 200


def test_viewing_an_issue_in_the_browser_stores_no_rendering(site: Site, issues: dict[str, int]) -> None:
    """A GET or HEAD must not freeze the variant a later send would use (nor write at all)."""
    from digest.render.variants import stored_variant

    def variants() -> list[tuple[Any, ...]]:
        return site.db.execute("SELECT issue_id, variant, html, text FROM issue_variants").fetchall()

    for method in ("GET", "HEAD"):
        assert http(method, f"{site.url}/issues/{issues['sent']}").status == 200
    assert variants() == []
    # Once the send has frozen one, the page shows it and still changes nothing.
    frozen = stored_variant(site.db, site.config, issues["sent"], "*")
    before = variants()
    for method in ("GET", "HEAD"):
        assert http(method, f"{site.url}/issues/{issues['sent']}").status == 200
    assert variants() == before and len(before) == 1 and before[0][2] == frozen.html


def test_a_draft_issue_is_not_public(site: Site, issues: dict[str, int]) -> None:
    reply = http("GET", f"{site.url}/issues/{issues['draft']}")
    assert reply.status == 404
    assert "Story number 100" not in reply.body
    assert http("GET", f"{site.url}/issues/999999").status == 404
    assert http("GET", f"{site.url}/issues/abc").status == 404


def test_archive_lists_sent_issues_only(site: Site, issues: dict[str, int]) -> None:
    reply = http("GET", f"{site.url}/archive")
    assert reply.status == 200
    assert f'href="/issues/{issues["sent"]}"' in reply.body
    assert f'href="/issues/{issues["draft"]}"' not in reply.body
    assert "Daily Briefing" in reply.body
    assert "2026-03-02" in reply.body


def test_archive_when_nothing_was_sent(site: Site) -> None:
    reply = http("GET", f"{site.url}/archive")
    assert reply.status == 200 and "No issues" in reply.body
    assert http("GET", f"{site.url}/").status in (301, 302, 308)


def test_preferences_page_tells_an_unsubscribed_reader_where_they_stand(site: Site) -> None:
    ada = _id(site, "ada@example.org")
    http("POST", site.link("unsubscribe", ada), b"List-Unsubscribe=One-Click")
    reply = http("GET", site.link("preferences", ada))
    assert reply.status == 200 and "You are unsubscribed" in reply.body
    assert (
        http("POST", site.link("preferences", ada), {"edition": ["daily"], "category": ["World"]}).status
        == 303
    )
    assert site.subscriber(ada)["status"] == "unsubscribed"


def test_web_templates_can_be_overridden_from_the_config(workspace: Path) -> None:
    override = workspace / "my-templates" / "web"
    override.mkdir(parents=True)
    (override / "message.html").write_text("<!doctype html><p>House style: {{ title }}</p>", "utf-8")
    config = load_config(workspace / "digest.toml")
    config.render.templates = "my-templates"
    client = create_app(config).test_client()
    page = client.get("/nope")
    assert page.status_code == 404 and "House style: Page not found" in page.get_data(as_text=True)
    # Templates it does not override still come from the bundled folder.
    assert "<h1>Archive</h1>" in client.get("/archive").get_data(as_text=True)


def test_the_links_in_a_delivered_email_work(site: Site, issues: dict[str, int], tmp_path: Path) -> None:
    """End to end: send an issue to a maildir, then follow the message's own links."""
    import mailbox
    import re
    from email import message_from_bytes, policy

    from digest.delivery import deliver_issue

    outbox = tmp_path / "outbox"
    report = deliver_issue(
        site.db, site.config, issues["draft"], transport_url=f"maildir:{outbox}", concurrency=1
    )
    assert report.sent == 1  # ada; bob has not confirmed
    (raw,) = [bytes(m) for m in mailbox.Maildir(outbox, create=False)]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = re.search(r"<(https?://[^>]+)>", message["List-Unsubscribe"]).group(1)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    links = set(re.findall(r'href="([^"]+)"', html))
    view_url = f"{site.url}/issues/{issues['draft']}"
    preferences_url = next(u for u in links if u.startswith(f"{site.url}/preferences/"))
    assert view_url in links and unsubscribe_url in links

    view = http("GET", view_url)
    assert view.status == 200 and "Story number 100" in view.body
    assert "ada@example.org" not in view.body
    assert "ada@example.org" in http("GET", preferences_url).body

    ada = _id(site, "ada@example.org")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    reply = http("POST", unsubscribe_url, message["List-Unsubscribe-Post"].encode(), headers)
    assert reply.status == 200
    assert site.subscriber(ada)["status"] == "unsubscribed"
    assert [e["source"] for e in site.events(ada) if e["kind"] == "unsubscribe"] == ["web"]


def test_the_web_version_of_a_trimmed_issue_has_every_article(site: Site, issues: dict[str, int]) -> None:
    """A trimmed email says "N more articles in the web version": that page must show them."""
    from digest.render.variants import stored_variant

    site.config.render.max_html_bytes = 17_000  # the email keeps one or two of them (3 KB for the fills)
    assert stored_variant(site.db, site.config, issues["sent"], "*").trimmed > 0
    reply = http("GET", f"{site.url}/issues/{issues['sent']}")
    assert reply.status == 200
    for n in range(8):
        assert f"Story number {n} about" in reply.body
    assert "in the web version" not in reply.body
