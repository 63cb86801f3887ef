"""Two `digest web serve` instances (two workspaces, as on two hosts, with the same signing key)
on one PostgreSQL store: the sign-up limits per client and per address count the requests
of both, concurrent requests included, a desk session started on one is valid on the other, and
the connections an instance keeps open between requests are bounded, reused from request to
request, and replaced when the server drops them."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import pytest
from desk_support import EDITOR, call, sign_in
from web_process import SECRET, WebProcess, make_workspace, start_web

from digest.config import load_config
from digest.editors import SIGNIN_CLIENT_LIMIT, add_editor, signin_link
from digest.store.database import open_store
from digest.web.common import POOL_SIZE

PER_CLIENT = 4


@pytest.fixture(scope="module")
def store_url(pg_server) -> Iterator[str]:
    """One PostgreSQL database for the module's two instances (each test uses its own clients
    and addresses)."""
    url = pg_server.fresh_database()
    open_store(url).close()  # the schema, before either instance starts
    yield url
    pg_server.drop_database(url)


@pytest.fixture(scope="module")
def instances(
    tmp_path_factory: pytest.TempPathFactory, store_url: str
) -> Iterator[tuple[WebProcess, WebProcess]]:
    env = {"DIGEST_DB_URL": store_url, "DIGEST_WEB_SIGNUP_POSTS_PER_HOUR": str(PER_CLIENT)}
    first = start_web(make_workspace(tmp_path_factory.mktemp("host1") / "ws"), extra_env=env)
    try:
        second = start_web(make_workspace(tmp_path_factory.mktemp("host2") / "ws"), extra_env=env)
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        for web in (first, second):
            log = web.stop()
            assert "Traceback" not in log, log


def count(url: str, sql: str, *params: str) -> int:
    db = open_store(url, migrate=False)
    try:
        return db.execute(sql, list(params)).fetchone()[0]
    finally:
        db.close()


def post_signup(web: WebProcess, email: str, client: str, path: str = "/subscribe") -> int:
    """POST the sign-up form (or another at ``path``) as ``client`` (the address a local proxy
    forwards); the status."""
    parts = urlsplit(web.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            body=urlencode({"email": email, "name": "Reader"}),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": client},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_the_per_client_sign_up_limit_counts_the_posts_to_both_instances(instances, store_url: str) -> None:
    first, second = instances
    answers = [
        post_signup(web, f"reader{n}@example.org", "203.0.113.7")
        for n, web in enumerate([first, second, first, second, first, second])
    ]
    assert answers == [200] * PER_CLIENT + [429, 429]
    # Another client is not held back by the first one's posts, on either instance.
    assert post_signup(second, "other@example.org", "198.51.100.9") == 200
    emails = [f"reader{n}@example.org" for n in range(6)] + ["other@example.org"]
    marks = ", ".join("?" for _ in emails)
    pending = f"SELECT count(*) FROM subscribers WHERE status = 'pending' AND email IN ({marks})"
    assert count(store_url, pending, *emails) == PER_CLIENT + 1


def test_concurrent_posts_to_both_instances_never_pass_the_per_client_limit(instances) -> None:
    first, second = instances
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(
            pool.map(
                lambda n: post_signup((first, second)[n % 2], f"burst{n}@example.org", "203.0.113.50"),
                range(12),
            )
        )
    assert sorted(answers) == [200] * PER_CLIENT + [429] * (12 - PER_CLIENT)


def test_one_address_gets_one_confirmation_whichever_instances_are_asked(instances, store_url: str) -> None:
    first, second = instances
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(
                lambda n: post_signup((first, second)[n % 2], "same@example.org", f"192.0.2.{n + 1}"),
                range(4),
            )
        )
    assert answers == [200] * 4  # the same page for everyone
    mails = count(store_url, "SELECT count(*) FROM outbox WHERE email = ?", "same@example.org")
    assert mails == 1  # at most one per address per 10 minutes, across both


def test_a_desk_session_started_on_one_instance_is_valid_on_the_other(instances, store_url: str) -> None:
    first, second = instances
    db = open_store(store_url, migrate=False)
    try:
        add_editor(db, EDITOR)
        link = signin_link(db, load_config(first.config_path), SECRET.encode(), EDITOR)
    finally:
        db.close()
    session = sign_in(first.url, link)
    session.base = second.url
    answer = session.get("/desk")
    assert answer.status == 200 and 'name="csrf"' in answer.body
    # The link was used up on the first instance: the second refuses it too.
    used = call(second.url + urlsplit(link).path, "POST", {})
    assert used.status == 400 and "used already" in used.body
    assert used.cookie("digest_desk") is None


def test_the_desk_sign_in_limit_per_client_counts_the_requests_to_both_instances(instances) -> None:
    first, second = instances
    answers = [
        post_signup((first, second)[n % 2], f"someone{n}@example.org", "203.0.113.99", "/desk/signin")
        for n in range(SIGNIN_CLIENT_LIMIT[1] + 2)
    ]
    assert answers == [200] * SIGNIN_CLIENT_LIMIT[1] + [429, 429]


def get_status(url: str) -> int:
    return call(url).status


def web_sessions(url: str) -> dict[str, set[int]]:
    """The web workers' sessions on the store: application_name → server pids."""
    db = open_store(url, migrate=False)
    try:
        rows = db.execute(
            "SELECT application_name, pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'digest web pid %'"
        ).fetchall()
    finally:
        db.close()
    named: dict[str, set[int]] = {}
    for name, pid in rows:
        named.setdefault(name, set()).add(pid)
    return named


def test_a_worker_reuses_its_pooled_connections_across_requests(instances, store_url: str) -> None:
    first, _ = instances
    with ThreadPoolExecutor(max_workers=8) as pool:  # as many at once as the worker has threads
        answers = list(pool.map(lambda _: get_status(f"{first.url}/healthz"), range(50)))
    assert answers == [200] * 50
    held = web_sessions(store_url)
    assert 1 <= len(held) <= 2  # one worker per instance, each named after itself
    assert all(1 <= len(pids) <= POOL_SIZE for pids in held.values()), held
    assert [get_status(f"{first.url}/healthz") for _ in range(50)] == [200] * 50
    assert web_sessions(store_url) == held  # the same sessions served them: none made, none lost


def test_an_instance_answers_as_before_after_the_server_dropped_its_kept_connections(
    instances, store_url: str
) -> None:
    first, second = instances
    assert [get_status(f"{first.url}/subscribe") for _ in range(6)] == [200] * 6
    db = open_store(store_url, migrate=False)
    try:
        kept = db.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        # What a restarted or failed-over server does to every open session.
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    finally:
        db.close()
    assert 0 < kept <= 2 * POOL_SIZE  # two instances of one worker each
    assert [get_status(f"{web.url}/subscribe") for web in (first, second, first, second)] == [200] * 4
