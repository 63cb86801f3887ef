"""Sign-up, confirmation and welcome mail, against the app served by `digest web serve` itself.

One server process for the module (gunicorn takes a second to start); every test
uses its own addresses. Mail lands in the workspace's maildir (the default transport).
"""

from __future__ import annotations

import re
import socket
import time
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils
from store_switch import store_at
from test_web import http
from web_process import WebProcess, link_in, make_workspace, messages_to, start_web

from digest.delivery.ledger import forget_reader
from digest.store.database import iso, utcnow
from subscribers.store import add_subscriber, remove_subscriber, unsubscribe
from subscribers.suppressions import is_suppressed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    config_path = make_workspace(tmp_path_factory.mktemp("signup") / "ws")
    web = start_web(config_path, extra_env={"DIGEST_WEB_SIGNUP_POSTS_PER_HOUR": "1000"})
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture
def db(served: WebProcess) -> Iterator[sqlite_utils.Database]:
    store = store_at(served.config_path.parent / "digest.db", migrate=False)
    yield store
    store.conn.close()


def signup(web: WebProcess, email: str, **fields: str):
    return http("POST", f"{web.url}/subscribe", {"email": email, "name": "Reader", **fields})


def status_of(db: sqlite_utils.Database, email: str) -> str | None:
    row = db.execute("SELECT status FROM subscribers WHERE email = ?", [email]).fetchone()
    return row[0] if row else None


def wait_until_sent(db: sqlite_utils.Database, timeout: float = 20) -> None:
    """Until no outbox row is waiting (the web app sends after it has answered)."""
    deadline = time.monotonic() + timeout
    while db.execute("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')").fetchone()[0]:
        assert time.monotonic() < deadline, "the outbox was not sent in time"
        time.sleep(0.05)


def test_the_form_offers_every_edition_and_category_chosen(served: WebProcess) -> None:
    reply = http("GET", f"{served.url}/subscribe")
    assert reply.status == 200
    assert 'name="email"' in reply.body and 'type="email"' in reply.body
    assert '<label for="email">' in reply.body
    assert 'name="website"' in reply.body  # the honeypot
    assert "<script" not in reply.body
    assert "script-src" not in reply.headers["Content-Security-Policy"]


def test_known_and_unknown_addresses_get_identical_responses(served: WebProcess, db) -> None:
    add_subscriber(db, "known-active@example.org", source="cli")
    add_subscriber(db, "known-pending@example.org", status="pending", source="cli")
    left = add_subscriber(db, "known-left@example.org", source="cli")
    unsubscribe(db, left["id"], source="cli")
    add_subscriber(db, "known-removed@example.org", source="cli")
    remove_subscriber(db, "known-removed@example.org", forget_deliveries=forget_reader)
    addresses = [
        "brand-new@example.org",
        "known-active@example.org",
        "known-pending@example.org",
        "known-left@example.org",
        "known-removed@example.org",
    ]
    replies = [signup(served, a) for a in addresses]
    assert {r.status for r in replies} == {200}
    bodies = {r.body.replace(a, "ADDRESS") for r, a in zip(replies, addresses, strict=True)}
    assert len(bodies) == 1, bodies
    header_sets = {
        tuple(sorted((k, v) for k, v in r.headers.items() if k not in ("Date", "Content-Length")))
        for r in replies
    }
    assert len(header_sets) == 1
    # What differs is only the mail: a confirmation, or "already subscribed" for the active one.
    wait_until_sent(db)
    subjects = {a: [str(m["Subject"]) for m in messages_to(served.maildir(), a)] for a in addresses}
    assert subjects["known-active@example.org"] == ["You are already subscribed to The Example Digest"]
    for address in addresses:
        if address != "known-active@example.org":
            assert subjects[address] == ["Confirm your subscription to The Example Digest"], address
    assert status_of(db, "brand-new@example.org") == "pending"
    assert status_of(db, "known-left@example.org") == "unsubscribed"  # until they confirm


def test_confirmation_link_confirms_and_the_welcome_follows(served: WebProcess, db) -> None:
    assert signup(served, "carol@example.org", name="Carol").status == 200
    assert status_of(db, "carol@example.org") == "pending"
    events = db.execute(
        "SELECT kind, source, detail FROM events WHERE subscriber_id ="
        " (SELECT id FROM subscribers WHERE email = 'carol@example.org') ORDER BY id"
    ).fetchall()
    assert [e[:2] for e in events] == [("subscribe", "web"), ("signup", "web")]
    assert '"form_version": "1"' in events[1][2]
    wait_until_sent(db)
    [confirmation] = messages_to(served.maildir(), "carol@example.org")
    link = link_in(confirmation, "confirm")
    assert link.startswith(served.url)
    assert http("GET", link).status == 200  # a scanner's GET changes nothing
    assert status_of(db, "carol@example.org") == "pending"
    assert http("POST", link, b"").status == 200
    assert status_of(db, "carol@example.org") == "active"
    wait_until_sent(db)
    mails = messages_to(served.maildir(), "carol@example.org")
    assert [str(m["Subject"]) for m in mails][-1] == "Welcome to The Example Digest"
    welcome_text = mails[-1].get_body(preferencelist=("plain",)).get_content()
    assert f"{served.url}/archive" in welcome_text and "/unsubscribe/" in welcome_text
    assert mails[-1].get_body(preferencelist=("html",)) is not None
    # Confirming twice sends no second welcome.
    assert http("POST", link, b"").status == 200
    assert len(messages_to(served.maildir(), "carol@example.org")) == 2


def test_an_address_that_left_can_come_back_through_the_form(served: WebProcess, db) -> None:
    left = add_subscriber(db, "returning@example.org", source="cli")
    unsubscribe(db, left["id"], source="cli")
    time.sleep(1.1)  # confirm tokens carry whole seconds; the new one must be issued after leaving
    signup(served, "returning@example.org")
    wait_until_sent(db)
    [confirmation] = messages_to(served.maildir(), "returning@example.org")
    assert http("POST", link_in(confirmation, "confirm"), b"").status == 200
    assert status_of(db, "returning@example.org") == "active"


def test_a_removed_address_stays_suppressed_until_it_confirms(served: WebProcess, db) -> None:
    add_subscriber(db, "erased@example.org", source="cli")
    remove_subscriber(db, "erased@example.org", forget_deliveries=forget_reader)
    assert signup(served, "erased@example.org").status == 200
    # Anyone can type an address into the form: the request alone lifts nothing.
    assert status_of(db, "erased@example.org") == "pending"
    assert is_suppressed(db, "erased@example.org")
    wait_until_sent(db)
    [confirmation] = messages_to(served.maildir(), "erased@example.org")
    link = link_in(confirmation, "confirm")
    assert http("GET", link).status == 200
    assert is_suppressed(db, "erased@example.org")
    assert http("POST", link, b"").status == 200  # the reader's own confirmation lifts it
    assert status_of(db, "erased@example.org") == "active"
    assert not is_suppressed(db, "erased@example.org")
    detail = db.execute(
        "SELECT detail FROM events WHERE kind = 'confirm' AND subscriber_id ="
        " (SELECT id FROM subscribers WHERE email = 'erased@example.org')"
    ).fetchone()[0]
    assert '"suppression_lifted": true' in detail


def test_the_fourth_signup_in_a_day_sends_nothing_and_says_nothing_different(served: WebProcess, db) -> None:
    address = "eager@example.org"
    first = signup(served, address)
    wait_until_sent(db)
    assert len(messages_to(served.maildir(), address)) == 1
    again = signup(served, address)  # within 10 minutes: nothing more
    assert again.body == first.body
    wait_until_sent(db)
    assert len(messages_to(served.maildir(), address)) == 1
    for expected in (2, 3, 3):
        # Move the earlier requests out of the 10-minute window, still within the day.
        earlier = iso(utcnow() - timedelta(minutes=11))
        db.execute("UPDATE signup_mails SET at = ? WHERE at > ?", [earlier, earlier])
        reply = signup(served, address)
        assert reply.status == 200 and reply.body == first.body
        wait_until_sent(db)
        assert len(messages_to(served.maildir(), address)) == expected


def test_a_honeypot_post_creates_nothing(served: WebProcess, db) -> None:
    reply = signup(served, "bot-target@example.org", website="http://spam.example")
    assert reply.status == 200 and "Check your inbox" in reply.body
    assert status_of(db, "bot-target@example.org") is None
    assert messages_to(served.maildir(), "bot-target@example.org") == []


def test_a_bad_address_is_refused_with_the_form_again(served: WebProcess, db) -> None:
    reply = signup(served, "not an address")
    assert reply.status == 400 and 'name="email"' in reply.body and 'role="alert"' in reply.body


def test_a_form_posted_from_another_site_works(served: WebProcess, db) -> None:
    reply = http(
        "POST",
        f"{served.url}/subscribe",
        {"email": "embedded@example.org"},
        headers={
            "Origin": "https://someone-elses-blog.example",
            "Referer": "https://someone-elses-blog.example/",
        },
    )
    assert reply.status == 200
    assert status_of(db, "embedded@example.org") == "pending"


def test_no_redirect_is_built_from_the_host_header(served: WebProcess) -> None:
    for path in ("//archive", "//unsubscribe//1.x", "/archive/", "/"):
        with socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(4096).decode("latin-1").split("\r\n\r\n")[0]
        assert "evil.example" not in head, head
        assert "Server: gunicorn/" not in head  # no version banner


def test_chunked_bodies_are_limited_too(served: WebProcess) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n"
        )
        chunk = b"email=" + b"a" * 4090
        try:
            for _ in range(64):  # 256 KB, four times the limit
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close on us before we finish: that is the point
        head = sock.recv(200).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head


def test_security_headers_on_token_pages(served: WebProcess) -> None:
    reply = http("GET", f"{served.url}/unsubscribe/1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in reply.headers["Content-Security-Policy"]


def test_embed_prints_a_form_posting_to_the_site(run_cli, workspace: Path) -> None:
    result = run_cli("web", "embed")
    assert result.exit_code == 0, result.output
    assert 'action="http://localhost:8080/subscribe"' in result.output
    assert 'name="email"' in result.output and 'name="website"' in result.output


def test_too_many_posts_from_one_client_get_429(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"), extra_env={"DIGEST_WEB_SIGNUP_POSTS_PER_HOUR": "2"})
    try:
        codes = [signup(web, f"r{n}@example.org").status for n in range(3)]
        limited = signup(web, "r9@example.org")
    finally:
        web.stop()
    assert codes == [200, 200, 429]
    assert limited.status == 429 and "Too many" in limited.body
    db = store_at(tmp_path / "ws" / "digest.db", migrate=False)
    assert status_of(db, "r9@example.org") is None
    assert urllib.parse.quote("r9@example.org") not in str(messages_to(web.maildir(), "r9@example.org"))


def test_the_served_feed_parses_and_is_linked_from_the_archive(served: WebProcess) -> None:
    import feedparser

    reply = http("GET", f"{served.url}/feed.atom")
    parsed = feedparser.parse(reply.body)
    assert reply.status == 200 and not parsed.bozo, getattr(parsed, "bozo_exception", None)
    assert parsed.feed.title == "The Example Digest"
    archive = http("GET", f"{served.url}/archive")
    assert '<link rel="alternate" type="application/atom+xml"' in archive.body


def test_every_category_the_form_offers_can_be_chosen(served: WebProcess, db) -> None:
    """The form lists every category an issue can carry (not only the editions' order); the
    sign-up must accept each of them, or a reader is refused a box the page showed."""
    offered = re.findall(r'name="category" value="([^"]+)"', http("GET", f"{served.url}/subscribe").body)
    beyond_order = [c for c in offered if c not in ("World", "Technology", "Science", "Culture")]
    assert beyond_order, offered
    reply = signup(served, "picky@example.org", category=beyond_order[0])
    assert reply.status == 200, reply.body
    assert status_of(db, "picky@example.org") == "pending"


def same_answer(replies, addresses) -> bool:
    bodies = {r.body.replace(a, "ADDRESS") for r, a in zip(replies, addresses, strict=True)}
    return len({r.status for r in replies}) == 1 and len(bodies) == 1


def test_a_bad_field_gets_the_same_answer_for_listed_and_unlisted_addresses(served: WebProcess, db) -> None:
    add_subscriber(db, "oracle-listed@example.org", source="cli")
    add_subscriber(db, "oracle-pending@example.org", status="pending", source="cli")
    addresses = ["oracle-listed@example.org", "oracle-pending@example.org", "oracle-unlisted@example.org"]
    for bad in ({"name": "Eve\x01"}, {"name": "x" * 201}):
        replies = [signup(served, a, **bad) for a in addresses]
        assert same_answer(replies, addresses), ([r.status for r in replies], bad)
        assert {r.status for r in replies} == {400}
    assert status_of(db, "oracle-unlisted@example.org") is None
    # A category the form never offered is dropped, for every address alike.
    replies = [signup(served, a, category="World\x00") for a in addresses]
    assert same_answer(replies, addresses), [r.status for r in replies]


def test_variants_of_one_gmail_address_get_one_confirmation(served: WebProcess, db) -> None:
    variants = ["v.ictim@gmail.com", "victim+1@gmail.com", "Victim@googlemail.com", "vic.tim+x@gmail.com"]
    for address in variants:
        assert signup(served, address).status == 200
    wait_until_sent(db)
    mails = [m for a in variants for m in messages_to(served.maildir(), a)]
    assert len(mails) == 1, [str(m["To"]) for m in mails]


def test_a_limited_signup_is_not_answered_faster_than_the_floor(served: WebProcess, db) -> None:
    from digest.web.signup import ANSWER_FLOOR

    assert signup(served, "impatient@example.org").status == 200
    started = time.perf_counter()
    limited = signup(served, "impatient@example.org")
    elapsed = time.perf_counter() - started
    assert limited.status == 200
    assert elapsed >= ANSWER_FLOOR, f"{elapsed * 1000:.1f} ms"


def test_every_post_counts_and_one_ipv6_64_is_one_client(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"), extra_env={"DIGEST_WEB_SIGNUP_POSTS_PER_HOUR": "5"})

    def post(address: str, client: str, **fields: str):
        data = {"email": address, "name": "Reader", **fields}
        return http("POST", f"{web.url}/subscribe", data, headers={"X-Forwarded-For": client})

    try:
        probes = [post("probe@example.org", "198.51.100.7", name="Eve\x01").status for _ in range(5)]
        after_probes = post("probe@example.org", "198.51.100.7").status
        honeypot = [post("bot@example.org", "198.51.100.8", website="x").status for _ in range(6)]
        net = [post(f"n{n}@example.org", f"2001:db8:1:2::{n:x}").status for n in range(1, 61)]
        other_net = post("other@example.org", "2001:db8:1:3::1").status
    finally:
        web.stop()
    assert probes == [400] * 5 and after_probes == 429
    assert honeypot == [200] * 5 + [429]
    assert net.count(200) == 5 and net.count(429) == 55, net
    assert other_net == 200


def test_long_non_ascii_names_sign_up_and_confirm(tmp_path: Path) -> None:
    from smtp_server import Handler, SMTPServer
    from test_outbox import LONG_NAMES, to_header

    with SMTPServer(Handler()) as server:
        web = start_web(make_workspace(tmp_path / "ws"), extra_env={"DIGEST_TRANSPORT": server.url})
        db = store_at(tmp_path / "ws" / "digest.db", migrate=False)
        try:
            for key, name in LONG_NAMES.items():
                add_subscriber(db, f"active-{key}@example.org", name=name, source="cli")
                assert signup(web, f"active-{key}@example.org", name=name).status == 200
                reply = signup(web, f"{key}@example.org", name=name)
                assert reply.status == 200, reply.body
                assert db.execute(
                    "SELECT name, status FROM subscribers WHERE email = ?", [f"{key}@example.org"]
                ).fetchone() == (name, "pending")
                wait_until_sent(db)
                [confirmation] = [r for r in server.handler.received if f"{key}@example.org" in r.rcpt_tos]
                link = link_in(confirmation.message, "confirm")
                confirmed = http("POST", link, b"")
                assert confirmed.status == 200 and "Subscription confirmed" in confirmed.body, confirmed.body
                assert status_of(db, f"{key}@example.org") == "active"
            wait_until_sent(db)
        finally:
            logs = web.stop()
    assert "Traceback" not in logs
    for key, name in LONG_NAMES.items():
        for address, subjects in (
            (f"{key}@example.org", ["Confirm", "Welcome"]),
            (f"active-{key}@example.org", ["You"]),
        ):
            received = [r for r in server.handler.received if address in r.rcpt_tos]
            assert [str(r.message["Subject"]).split(" ")[0] for r in received] == subjects
            assert all(to_header(r.data) == (name, address) for r in received)


def test_a_relay_that_never_greets_does_not_hold_the_signup(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner
    from smtp_server import Handler, SilentServer, SMTPServer

    from digest.cli import cli

    config_path = make_workspace(tmp_path / "ws")
    with SilentServer() as silent:
        env = {"DIGEST_TRANSPORT": silent.url, "DIGEST_DELIVERY_TIMEOUT": "3"}
        web = start_web(config_path, extra_env=env)
        try:
            started = time.perf_counter()
            reply = signup(web, "patient@example.org")
            elapsed = time.perf_counter() - started
            db = store_at(tmp_path / "ws" / "digest.db", migrate=False)
            assert reply.status == 200
            assert db.execute("SELECT status FROM outbox").fetchone()[0] in ("queued", "sending")
            # Wait for the mailer's attempt to end (claimed, timed out, put back): "queued" alone
            # is also the state before the thread claims the row, and stopping the web app then
            # can leave it "sending" until it goes stale (seen on a slow CI machine).
            deadline = time.monotonic() + 20
            while db.execute("SELECT status, attempts FROM outbox").fetchone() != ("queued", 1):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            web.stop()
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    with SMTPServer(Handler()) as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        for _ in range(2):
            run = CliRunner().invoke(cli, ["--config", str(config_path), "run", "--at", iso(utcnow())])
            assert run.exit_code == 0, run.output
    assert server.handler.count_for("patient@example.org") == 1
    assert db.execute("SELECT status FROM outbox").fetchall() == [("sent",)]


def test_an_international_address_signs_up_and_gets_its_confirmation(served: WebProcess, db) -> None:
    # RFC 6531: a UTF-8 local part at an internationalised domain, typed decomposed (NFD).
    typed = "n\u0303on\u0303o\u0301@exämple.org"
    stored = "ñoñó@xn--exmple-cua.org"
    assert signup(served, typed, name="Ñandú").status == 200
    assert status_of(db, stored) == "pending"
    wait_until_sent(db)
    [confirmation] = messages_to(served.maildir(), stored)  # the maildir takes it as it is
    assert "/confirm/" in link_in(confirmation, "confirm")
    # The To: header carries the address in UTF-8 (RFC 6532), not as an encoded word.
    raw = [f.read_bytes() for f in (served.maildir() / "new").iterdir()]
    assert sum(f"Ñandú <{stored}>".encode() in data for data in raw) == 1
