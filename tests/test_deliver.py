"""The send engine against a real SMTP server on 127.0.0.1: the ledger, replies, reconnects."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dkim
import pytest
from delivery_fixtures import AFTER, PERIOD_END, Setup, make_setup
from mail_checks import dkim_key
from smtp_server import DROP, Handler, SilentServer, SMTPServer

import digest.delivery.send
import digest.delivery.worker
from digest.delivery import deliver_issue, delivery_counts, list_deliveries
from digest.mail.transports import TransportError
from digest.render.personalise import personalise
from digest.render.variants import stored_variant
from digest.store.database import open_store
from subscribers.links import subscriber_links
from subscribers.store import set_preferences, unsubscribe
from subscribers.tokens import load_secret, verify_token

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits of a few milliseconds, so retry tests stay quick."""
    monkeypatch.setattr(digest.delivery.worker, "RETRY_BACKOFF_SECONDS", 0.01)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "ws")


def send(setup: Setup, server, **kwargs):
    return deliver_issue(
        setup.db, setup.config, setup.issue["id"], transport_url=server.url, now=AFTER, **kwargs
    )


@pytest.mark.parametrize("pipelining", [True, False])
def test_each_recipient_gets_exactly_one_message_with_the_right_headers_and_own_links(
    setup: Setup, pipelining: bool
) -> None:
    with SMTPServer(Handler(pipelining=pipelining)) as server:
        report = send(setup, server, concurrency=2)
    handler = server.handler
    assert report.sent == len(setup.subscribers) and report.failed == report.deferred == 0
    assert report.status == "sent"
    secret = load_secret(setup.config)
    rows = setup.rows()
    for sub in setup.subscribers:
        assert handler.count_for(sub["email"]) == 1
        (got,) = [r for r in handler.received if sub["email"] in r.rcpt_tos]
        msg = got.message
        assert got.mail_from == "digest@example.org"
        assert msg["From"] == "The Example Digest <digest@example.org>"
        assert msg["To"].addresses[0].addr_spec == sub["email"]
        assert msg["To"].addresses[0].display_name == sub["name"]
        # Each variant's subject names its own top story (render.subject's {headline}).
        variant = stored_variant(setup.db, setup.config, setup.issue["id"], rows[sub["email"]]["variant"])
        assert msg["Subject"] == variant.subject
        assert msg["Message-ID"] == rows[sub["email"]]["message_id"]
        assert msg["Date"]
        assert msg["List-Id"].endswith("<daily.example.org>")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsub = msg["List-Unsubscribe"].strip("<>")
        assert unsub.startswith("https://news.example.org/unsubscribe/")
        assert verify_token(secret, unsub.rsplit("/", 1)[1], "unsubscribe") == sub["id"]
        # The parts are exactly the frozen rendering with this reader's fields filled in.
        row = rows[sub["email"]]
        rendered = stored_variant(setup.db, setup.config, setup.issue["id"], row["variant"])
        fields = {"name": sub["name"], "email": sub["email"], **subscriber_links(setup.config, secret, sub)}
        assert fields["unsubscribe_url"] == unsub
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        assert unsub in html and unsub in text
        assert html.replace("\r\n", "\n") == personalise(rendered.html, fields, html=True).replace(
            "\r\n", "\n"
        )
        assert text.replace("\r\n", "\n") == personalise(rendered.text, fields, html=False).replace(
            "\r\n", "\n"
        )
        assert row["status"] == "sent" and row["sent_at"] and row["smtp_code"] == 250
    # Science-only readers got the Science variant.
    assert rows["reader0@example.net"]["variant"] == '["Science"]'
    assert rows["reader1@example.net"]["variant"] == "*"

    with SMTPServer() as again:
        second = send(setup, again)
    assert second.sent == 0 and again.handler.received == []


def test_451_on_rcpt_is_retried_and_then_delivered(setup: Setup) -> None:
    target = "reader1@example.net"
    handler = Handler(
        rcpt_policy=lambda a, n: "451 4.7.1 greylisted, try later" if a == target and n == 1 else None
    )
    with SMTPServer(handler) as server:
        report = send(setup, server)
    assert report.sent == len(setup.subscribers) and report.deferred == 0
    assert handler.rcpt_attempts[target] == 2 and handler.count_for(target) == 1
    assert setup.rows()[target]["attempts"] == 2


def test_4xx_that_persists_leaves_the_row_deferred_for_the_next_run(setup: Setup) -> None:
    target = "reader2@example.net"
    setup.config.delivery.retries = 2
    with SMTPServer(Handler(rcpt_policy=lambda a, n: "452 4.2.2 mailbox full" if a == target else None)) as s:
        report = send(setup, s)
    assert report.deferred == 1 and report.sent == len(setup.subscribers) - 1
    assert s.handler.rcpt_attempts[target] == 3
    row = setup.rows()[target]
    assert row["status"] == "deferred" and row["smtp_code"] == 452 and row["enhanced_code"] == "4.2.2"
    assert report.status == "sending"
    with SMTPServer() as later:
        again = send(setup, later)
    assert again.sent == 1 and [r.rcpt_tos for r in later.handler.received] == [[target]]
    assert again.status == "sent"


def test_550_5_1_1_fails_the_row_and_marks_the_subscriber_bounced(setup: Setup) -> None:
    target = "reader3@example.net"
    handler = Handler(rcpt_policy=lambda a, n: "550 5.1.1 no such user here" if a == target else None)
    with SMTPServer(handler) as server:
        report = send(setup, server)
    assert report.failed == 1 and report.sent == len(setup.subscribers) - 1
    row = setup.rows()[target]
    assert (row["status"], row["smtp_code"], row["enhanced_code"]) == ("failed", 550, "5.1.1")
    assert "no such user" in row["last_error"]
    assert setup.status_of(target) == "bounced"
    assert report.status == "sent"  # failed is final


def test_550_5_7_1_fails_the_row_but_does_not_bounce_the_subscriber(setup: Setup) -> None:
    target = "reader4@example.net"
    handler = Handler(data_policy=lambda a, n: "550 5.7.1 rejected by policy" if a == target else None)
    with SMTPServer(handler) as server:
        report = send(setup, server)
    assert report.failed == 1
    row = setup.rows()[target]
    assert (row["status"], row["enhanced_code"]) == ("failed", "5.7.1")
    assert setup.status_of(target) == "active"


def test_421_in_mid_session_reconnects_and_finishes(setup: Setup) -> None:
    handler = Handler(
        data_policy=lambda a, n: "421 4.3.2 shutting down" if a == "reader2@example.net" and n == 1 else None
    )
    with SMTPServer(handler) as server:
        report = send(setup, server, concurrency=1)
    assert report.sent == len(setup.subscribers)
    assert handler.sessions >= 2
    assert all(handler.count_for(s["email"]) == 1 for s in setup.subscribers)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_connection_dropped_during_data_is_retried(setup: Setup, stage: str) -> None:
    target = "reader1@example.net"
    drop = lambda a, n: DROP if a == target and n == 1 else None  # noqa: E731
    handler = Handler(**{f"{stage}_policy": drop})
    with SMTPServer(handler) as server:
        report = send(setup, server, concurrency=1)
    assert report.sent == len(setup.subscribers)
    attempts = handler.data_attempts if stage == "data" else handler.rcpt_attempts
    assert attempts[target] == 2 and handler.count_for(target) == 1
    assert all(handler.count_for(s["email"]) == 1 for s in setup.subscribers)


def test_a_server_that_never_answers_ends_the_run_within_its_timeout(setup: Setup) -> None:
    setup.config.delivery.timeout = 0.3
    setup.config.delivery.retries = 1
    started = time.monotonic()
    with SilentServer() as server, pytest.raises(TransportError, match=r"no answer within 0\.3s"):
        send(setup, server)
    assert time.monotonic() - started < 5
    assert delivery_counts(setup.db, setup.issue["id"])["queued"] == len(setup.subscribers)


def test_a_server_that_takes_the_data_and_never_answers_stops_the_run_within_a_few_timeouts(
    tmp_path: Path,
) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=8)
    setup.config.delivery.timeout = 0.3
    setup.config.delivery.retries = 3
    started = time.monotonic()
    with (
        SMTPServer(Handler(delay=3600)) as server,
        pytest.raises(TransportError, match=r"5 sends in a row .* no answer within 0\.3s"),
    ):
        send(setup, server, concurrency=1)
    # Five timeouts, not 8 rows x 4 tries of them.
    assert time.monotonic() - started < 5 * 0.3 + 1.5
    counts = delivery_counts(setup.db, setup.issue["id"])
    # Nothing recorded as sent or failed: every row is left for the next run (the one that
    # used up its tries is deferred, the others are queued).
    assert counts["queued"] + counts["deferred"] == len(setup.subscribers)


def test_bad_credentials_stop_the_run_with_a_clear_error_and_rows_stay_queued(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    with SMTPServer(users={"alice": "right"}) as server:
        url = server.url.replace("smtp://", "smtp://alice@")
        with pytest.raises(TransportError, match="rejected the login for 'alice'"):
            deliver_issue(setup.db, setup.config, setup.issue["id"], transport_url=url, now=AFTER)
        assert server.handler.received == []
        assert delivery_counts(setup.db, setup.issue["id"])["queued"] == len(setup.subscribers)
        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "right")
        report = deliver_issue(setup.db, setup.config, setup.issue["id"], transport_url=url, now=AFTER)
    assert report.sent == len(setup.subscribers)


class RefusesSender(Handler):
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        return "553 5.7.1 sender address rejected: not owned by user"


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_5xx_to_mail_from_stops_the_run_and_leaves_every_row_queued(setup: Setup, pipelining: bool) -> None:
    with (
        SMTPServer(RefusesSender(pipelining=pipelining)) as server,
        pytest.raises(TransportError, match=r"refused the sender <digest@example.org>: 553 5\.7\.1 sender"),
    ):
        send(setup, server, concurrency=2)
    counts = delivery_counts(setup.db, setup.issue["id"])
    # Nobody failed; all left for the next run (a row the other connection had in flight
    # when the run was cut short may be deferred rather than queued).
    assert counts["queued"] + counts["deferred"] == len(setup.subscribers)
    assert all(setup.status_of(s["email"]) == "active" for s in setup.subscribers)
    assert setup.db.execute("SELECT status FROM issues WHERE id = ?", [setup.issue["id"]]).fetchone()[0] == (
        "sending"
    )
    with SMTPServer() as working:
        report = send(setup, working)
    assert report.sent == len(setup.subscribers) and report.status == "sent"
    assert all(working.handler.count_for(s["email"]) == 1 for s in setup.subscribers)


def test_554_at_greeting_stops_the_run(setup: Setup) -> None:
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"554 5.7.1 you are not welcome here\r\n")
        conn.recv(100)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"smtp://127.0.0.1:{listener.getsockname()[1]}"
    with pytest.raises(TransportError, match="refused the session: 554"):
        deliver_issue(setup.db, setup.config, setup.issue["id"], transport_url=url, now=AFTER)
    listener.close()
    assert delivery_counts(setup.db, setup.issue["id"])["queued"] == len(setup.subscribers)


def test_an_unsubscribe_during_the_send_takes_effect(setup: Setup) -> None:
    last = setup.subscribers[-1]
    db_path = setup.config.store  # the file, or the PostgreSQL URL in that pass

    def on_message(received) -> None:
        if "reader1@example.net" in received.rcpt_tos:
            unsubscribe(open_store(db_path, migrate=False), last["id"], source="web")

    # Status is checked when a row is claimed; a claim covers ~0.25 s of sending (here two rows).
    with SMTPServer(Handler(on_message=on_message, delay=0.1)) as server:
        report = send(setup, server, concurrency=1)
    assert server.handler.count_for(last["email"]) == 0
    assert report.skipped == 1 and report.sent == len(setup.subscribers) - 1
    assert setup.rows()[last["email"]]["status"] == "skipped"
    assert report.status == "sent"


@pytest.mark.parametrize("change", ["unsubscribe", "editions"])
def test_a_reader_who_opts_out_during_a_retry_backoff_is_not_sent_the_retry(
    setup: Setup, change: str
) -> None:
    victim = setup.subscribers[1]
    db_path = setup.config.store  # the file, or the PostgreSQL URL in that pass

    def rcpt(address: str, attempt: int) -> str | None:
        if address == victim["email"] and attempt == 1:
            other = open_store(db_path, migrate=False)
            if change == "unsubscribe":
                unsubscribe(other, victim["id"], source="web")
            else:
                set_preferences(other, victim["id"], editions=["weekly"], source="web")
            other.conn.close()
            return "451 4.3.0 try again later"
        return None

    with SMTPServer(Handler(rcpt_policy=rcpt)) as server:
        report = send(setup, server, concurrency=1)
    assert server.handler.count_for(victim["email"]) == 0
    assert server.handler.rcpt_attempts[victim["email"]] == 1
    row = setup.rows()[victim["email"]]
    assert row["status"] == "skipped"
    why = "unsubscribed" if change == "unsubscribe" else "no longer receives the daily"
    assert why in row["last_error"]
    assert report.skipped == 1 and report.sent == len(setup.subscribers) - 1 and report.status == "sent"


def test_sent_rows_are_committed_every_few_results_not_only_every_half_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a SIGKILL can send twice: messages the server accepted that the ledger has not
    # recorded as sent yet. Bounded in count, not only in time.
    monkeypatch.setattr(digest.delivery.worker, "FLUSH_SECONDS", 3600.0)
    monkeypatch.setattr(digest.delivery.worker, "FLUSH_EVERY", 4, raising=False)
    setup = make_setup(tmp_path / "ws", subscribers=60)
    watcher = open_store(setup.config.store, migrate=False)
    gaps: list[int] = []

    def on_message(received) -> None:
        # Called before this message's 250 goes out: the sender has had len - 1 of them.
        answered = len(server.handler.received) - 1
        recorded = watcher.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'").fetchone()[0]
        gaps.append(answered - recorded)

    with SMTPServer(Handler(on_message=on_message)) as server:
        report = send(setup, server, concurrency=1)
    assert report.sent == 60
    assert max(gaps) <= 4 + 1


def test_the_issue_is_frozen_and_variants_stored_when_the_send_starts(setup: Setup) -> None:
    with SMTPServer() as server:
        send(setup, server)
    issue = setup.db.execute(
        "SELECT status, frozen_at FROM issues WHERE id = ?", [setup.issue["id"]]
    ).fetchone()
    assert issue[0] == "sent" and issue[1]
    variants = {r[0] for r in setup.db.execute("SELECT variant FROM issue_variants WHERE issue_id = ?", [1])}
    assert variants == {"*", '["Science"]'}


def test_a_new_subscriber_after_the_snapshot_is_not_added_to_a_resumed_send(setup: Setup) -> None:
    from subscribers.store import add_subscriber

    with SMTPServer(
        Handler(rcpt_policy=lambda a, n: "451 4.3.0 later" if a == "reader0@example.net" else None)
    ):
        pass
    setup.config.delivery.retries = 0
    with SMTPServer(
        Handler(rcpt_policy=lambda a, n: "451 4.3.0 later" if a == "reader0@example.net" else None)
    ) as s:
        first = send(setup, s)
    assert first.deferred == 1
    add_subscriber(setup.db, "late@example.net", name="Late")
    with SMTPServer() as s2:
        second = send(setup, s2)
    assert [r.rcpt_tos for r in s2.handler.received] == [["reader0@example.net"]]
    assert second.sent == 1


def test_dry_run_reports_who_would_get_which_variant_and_changes_nothing(setup: Setup) -> None:
    report = deliver_issue(setup.db, setup.config, setup.issue["id"], dry_run=True, now=AFTER)
    assert report.dry_run and report.total == len(setup.subscribers)
    assert {p["email"]: p["variant"] for p in report.plan}["reader0@example.net"] == '["Science"]'
    assert report.variants == {"*": 4, '["Science"]': 2}
    assert setup.db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert setup.db.execute("SELECT status FROM issues").fetchone()[0] == "draft"


def test_test_send_goes_only_to_the_given_addresses_with_a_test_subject_and_records_nothing(
    setup: Setup,
) -> None:
    with SMTPServer() as server:
        report = deliver_issue(
            setup.db, setup.config, setup.issue["id"], transport_url=server.url, to=["editor@example.com"]
        )
    assert report.sent == 1 and report.test
    (got,) = server.handler.received
    assert got.rcpt_tos == ["editor@example.com"]
    assert got.message["Subject"] == "[TEST] " + setup.issue["subject"]
    assert setup.db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert setup.db.execute("SELECT status FROM issues").fetchone()[0] == "draft"


def test_local_time_delivery_sends_only_the_rows_that_are_due(tmp_path: Path) -> None:
    zones = ["Europe/Berlin", "America/New_York"]
    setup = make_setup(tmp_path / "ws", subscribers=4, local=True, zones=zones)
    with SMTPServer() as server:
        first = deliver_issue(setup.db, setup.config, 1, transport_url=server.url, now=PERIOD_END)
    berlin = {s["email"] for s in setup.subscribers if s["timezone"] == "Europe/Berlin"}
    assert {r.rcpt_tos[0] for r in server.handler.received} == berlin
    assert first.queued == 2 and first.status == "sending"
    rows = setup.rows()
    assert all(rows[e]["due_at"] for e in rows)
    with SMTPServer() as server:
        second = deliver_issue(
            setup.db, setup.config, 1, transport_url=server.url, now=PERIOD_END.replace(hour=13)
        )
    assert {r.rcpt_tos[0] for r in server.handler.received} == {
        s["email"] for s in setup.subscribers
    } - berlin
    assert second.status == "sent"


def test_many_recipients_over_worker_processes_each_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest.delivery.send, "PROCESS_THRESHOLD", 10)
    setup = make_setup(tmp_path / "ws", subscribers=40)
    with SMTPServer() as server:
        report = send(setup, server, concurrency=4)
    assert report.sent == 40
    assert sorted(a for r in server.handler.received for a in r.rcpt_tos) == sorted(
        s["email"] for s in setup.subscribers
    )
    assert delivery_counts(setup.db, 1)["sent"] == 40


def test_list_deliveries_filters_by_status(setup: Setup) -> None:
    handler = Handler(rcpt_policy=lambda a, n: "550 5.1.1 unknown" if a == "reader5@example.net" else None)
    with SMTPServer(handler) as server:
        send(setup, server)
    failed = list(list_deliveries(setup.db, 1, status="failed"))
    assert [r["email"] for r in failed] == ["reader5@example.net"]
    assert failed[0]["last_error"].startswith("550 5.1.1")
    assert len(list(list_deliveries(setup.db, 1))) == len(setup.subscribers)


def test_the_send_links_are_the_subscriber_links(setup: Setup) -> None:
    from digest.delivery import recipient_links
    from digest.delivery.worker import Links

    secret = load_secret(setup.config)
    fast = Links(setup.config, secret)
    for sub in setup.subscribers:
        full = subscriber_links(setup.config, secret, sub)
        expected = {"unsubscribe_url": full["unsubscribe_url"], "preferences_url": full["preferences_url"]}
        assert recipient_links(setup.config, secret, sub["id"]) == expected
        assert fast(sub["id"]) == expected


def _with_dkim(setup: Setup, tmp_path: Path) -> bytes:
    key, record = dkim_key(tmp_path)
    setup.config.dkim.domain, setup.config.dkim.selector, setup.config.dkim.key_file = (
        "example.org",
        "d1",
        str(key),
    )
    return record


def test_a_send_with_dkim_signs_every_message_verifiably(setup: Setup, tmp_path: Path) -> None:
    record = _with_dkim(setup, tmp_path)
    with SMTPServer() as server:
        report = send(setup, server, concurrency=2)
    assert report.sent == len(setup.subscribers)
    for got in server.handler.received:
        assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: record)


def test_bad_credentials_stop_worker_processes_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest.delivery.send, "PROCESS_THRESHOLD", 10)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    setup = make_setup(tmp_path / "ws", subscribers=30)
    with SMTPServer(users={"alice": "right"}) as server:
        url = server.url.replace("smtp://", "smtp://alice@")
        with pytest.raises(TransportError, match="rejected the login"):
            deliver_issue(setup.db, setup.config, 1, transport_url=url, concurrency=4, now=AFTER)
    assert server.handler.received == []
    assert delivery_counts(setup.db, 1)["queued"] == 30


def test_connections_are_reused_up_to_the_cap_per_connection(setup: Setup) -> None:
    setup.config.delivery.max_per_connection = 2
    with SMTPServer() as server:
        report = send(setup, server, concurrency=1)
    assert report.sent == 6
    assert server.handler.sessions == 3


def test_a_recipient_whose_message_cannot_be_built_fails_alone(setup: Setup) -> None:
    setup.db.execute(
        "UPDATE subscribers SET email = 'jürgen mit leerzeichen@example.net'"
        " WHERE email = 'reader2@example.net'"
    )
    with SMTPServer() as server:
        report = send(setup, server)
    assert report.sent == len(setup.subscribers) - 1 and report.failed == 1
    row = setup.rows()["jürgen mit leerzeichen@example.net"]
    assert row["status"] == "failed" and "not an email address" in row["last_error"]


# ---------------------------------------------------------------- signing ahead (DKIM, several connections)


def test_a_signed_send_over_processes_and_connections_reaches_everyone_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process signs claimed rows ahead of its connections: every reader still gets
    exactly one message, signed for them, with a signature made moments before it left."""
    monkeypatch.setattr(digest.delivery.send, "PROCESS_THRESHOLD", 10)
    setup = make_setup(tmp_path / "ws", subscribers=60)
    record = _with_dkim(setup, tmp_path)
    started = int(time.time())
    with SMTPServer() as server:
        report = send(setup, server, concurrency=4)
    assert report.sent == 60 and report.failed == 0
    assert set(server.handler.per_recipient().values()) == {1}
    assert len(server.handler.per_recipient()) == 60
    for got in server.handler.received:
        assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: record)
        msg = got.message
        assert msg["To"].addresses[0].addr_spec == got.rcpt_tos[0]  # the reader's own message
        stamp = int(dict(t.strip().split("=", 1) for t in msg["DKIM-Signature"].split(";"))["t"])
        assert started - 1 <= stamp <= int(time.time())


def test_rows_signed_ahead_are_not_sent_when_the_relay_stops_the_run(tmp_path: Path) -> None:
    """The relay refuses the message itself after a few: the run stops at once, the messages
    made ahead are dropped unsent (their rows stay queued), and the next run sends each once."""
    setup_big = make_setup(tmp_path / "ws", subscribers=40)
    _with_dkim(setup_big, tmp_path)
    accepted: list[int] = []

    def refuse_after_five(address: str, attempt: int) -> str | None:
        accepted.append(1)
        return "554 5.7.1 message content rejected" if len(accepted) > 5 else None

    with SMTPServer(Handler(data_policy=refuse_after_five)) as server:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"5\.7\.1"):
            send(setup_big, server, concurrency=2)
        assert time.monotonic() - started < 10
    assert not [t for t in threading.enumerate() if t.name.startswith("digest-sign")]  # pool shut down
    first = server.handler.per_recipient()
    counts = delivery_counts(setup_big.db, 1)
    assert counts["sent"] == len(first) <= 5
    assert counts["queued"] == 40 - len(first)
    with SMTPServer() as again:
        report = send(setup_big, again, concurrency=2)
    assert report.sent == 40 - len(first)
    both = first + again.handler.per_recipient()
    assert len(both) == 40 and set(both.values()) == {1}


def test_a_message_that_cannot_be_built_fails_alone_in_a_signed_send(setup: Setup, tmp_path: Path) -> None:
    """A reader whose address needs SMTPUTF8 (put in the database by hand: add and import
    refuse it): the signing pool's error fails that row only."""
    _with_dkim(setup, tmp_path)
    setup.db.execute(
        "INSERT INTO subscribers (id, email, name, status, source, attributes, created_at, updated_at)"
        " SELECT max(id) + 1, 'jürgen@example.net', 'J', 'active', 'import', '{}', 'x', 'x' FROM subscribers"
    )
    with SMTPServer() as server:
        report = send(setup, server, concurrency=2)
    assert report.failed == 1 and report.sent == len(setup.subscribers)
    failed = list(list_deliveries(setup.db, 1, status="failed"))
    assert [r["email"] for r in failed] == ["jürgen@example.net"]
    assert "jürgen@example.net" not in server.handler.per_recipient()
