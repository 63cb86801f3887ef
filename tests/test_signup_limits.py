"""The sign-up limits' rows: a check deletes only its own client's expired rows (no scan of the
table per POST), and `digest run`'s upkeep deletes everyone's once past their windows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import new_workspace

from digest.delivery.ledger import forget_reader
from digest.signup import TooManyRequests, count_signup_post, forget_old_requests, list_upkeep, request_signup
from digest.store.database import utcnow

SECRET = b"k" * 32


def rows(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_post_deletes_only_its_own_clients_expired_rows(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", config="")
    db, config = ws.db(), ws.config
    then = utcnow() - timedelta(hours=2)
    count_signup_post(db, config, SECRET, "203.0.113.1", now=then)
    count_signup_post(db, config, SECRET, "203.0.113.2", now=then)
    count_signup_post(db, config, SECRET, "203.0.113.1")
    assert rows(db, "signup_posts") == 2  # client 1's old row went, client 2's waits for the upkeep


def test_the_run_upkeep_deletes_every_clients_and_addresses_expired_rows(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", config="")
    db, config = ws.db(), ws.config
    now = utcnow()
    for n in range(3):
        count_signup_post(db, config, SECRET, f"203.0.113.{n}", now=now - timedelta(hours=2))
    request_signup(db, config, SECRET, email="old@example.org", send=False, now=now - timedelta(days=2))
    count_signup_post(db, config, SECRET, "198.51.100.1", now=now)
    assert forget_old_requests(db, now=now) == 4
    assert rows(db, "signup_posts") == 1 and rows(db, "signup_mails") == 0
    list_upkeep(db, config, forget_deliveries=forget_reader, now=now + timedelta(hours=2))
    assert rows(db, "signup_posts") == 0


def test_the_per_client_limit_still_holds_on_one_host(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws", config="[web]\nsignup_posts_per_hour = 2\n")
    db, config = ws.db(), ws.config
    count_signup_post(db, config, SECRET, "203.0.113.9")
    count_signup_post(db, config, SECRET, "203.0.113.9")
    with pytest.raises(TooManyRequests):
        count_signup_post(db, config, SECRET, "203.0.113.9")
    assert rows(db, "signup_posts") == 2  # a refused post is not counted
