"""Who gets an issue: one rule (active, the edition, a category under Unicode case folding)
for the snapshot, every claim of a send (first or resumed), retries and `digest preview`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import new_workspace
from delivery_fixtures import AFTER, PERIOD_END
from smtp_server import Handler, SMTPServer
from store_switch import store_at

import digest.delivery.worker
from digest.cli import cli
from digest.compose.build import compose_issue
from digest.config import load_config
from digest.delivery import deliver_issue
from digest.ingest.articles import add_article
from subscribers.eligibility import eligibility_sql, fold, ineligible_reason
from subscribers.store import add_subscriber, list_subscribers, set_preferences


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest.delivery.worker, "RETRY_BACKOFF_SECONDS", 0.01)


@pytest.fixture
def ws(tmp_path: Path):
    """A workspace whose daily issue has two sections: Économie and World."""
    path = tmp_path / "ws"
    toml = new_workspace(path, db=False).config_file
    toml.write_text(
        toml.read_text().replace(
            'base_url = "http://localhost:8080"', 'base_url = "https://news.example.org"'
        )
    )
    config = load_config(toml)
    config.delivery.timeout = 5.0
    db = store_at(config.db_path)
    for i, category in enumerate(["Économie", "World", "Économie", "World"]):
        add_article(
            db,
            config,
            title=f"{category} story {i}",
            url=f"https://news.example.com/{i}",
            category=category,
            summary="<p>Something happened.</p>",
            published=PERIOD_END.replace(hour=i + 1),
            now=PERIOD_END,
        )
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    return path, config, db, issue


def test_one_case_rule_unicode_case_folding() -> None:
    assert fold("Économie") == fold("économie") == fold("ÉCONOMIE")
    assert ineligible_reason("active", None, ["économie"], "daily", ["Économie"]) is None
    assert "no longer follows" in ineligible_reason("active", None, ["Science"], "daily", ["Économie"])
    assert "weekly" not in (ineligible_reason("active", ["daily"], None, "daily", []) or "")
    assert "daily edition" in ineligible_reason("active", ["weekly"], None, "daily", ["World"])
    assert ineligible_reason("bounced", None, None, "daily", ["World"]) == "subscriber is bounced"


def test_the_sql_rule_and_the_python_rule_agree(ws) -> None:
    _, _, db, _ = ws
    readers = {
        "a@example.net": (None, ["économie"]),
        "b@example.net": (["weekly"], None),
        "c@example.net": (None, ["ÉCONOMIE", "Science"]),
        "d@example.net": (["daily"], ["Science"]),
    }
    for email, (editions, categories) in readers.items():
        add_subscriber(db, email, editions=editions, categories=categories)
    rule, params = eligibility_sql(db, "daily", ["Économie", "World"])
    got = {r[0] for r in db.execute(f"SELECT email FROM subscribers WHERE {rule}", params)}
    assert got == {"a@example.net", "c@example.net"}
    for email, (editions, categories) in readers.items():
        why = ineligible_reason("active", editions, categories, "daily", ["Économie", "World"])
        assert (why is None) == (email in got)
    listed = {s["email"] for s in list_subscribers(db, category="économie")}
    assert listed == {"a@example.net", "b@example.net", "c@example.net"}


def test_a_reader_of_economie_gets_the_issue_filed_under_Economie(ws) -> None:
    path, config, db, issue = ws
    add_subscriber(db, "anne@example.net", categories=["économie"])
    preview = CliRunner().invoke(
        cli, ["--config", str(path / "digest.toml"), "preview", "--subscriber", "anne@example.net"]
    )
    assert preview.exit_code == 0, preview.output
    assert "Économie story 0" in preview.output and "World story 1" not in preview.output
    with SMTPServer() as server:
        report = deliver_issue(db, config, issue["id"], transport_url=server.url, now=AFTER)
    assert report.sent == 1
    assert server.handler.per_recipient() == {"anne@example.net": 1}
    body = server.handler.received[0].message.get_body(("plain",)).get_content()
    assert "Économie story 0" in body and "World story 1" not in body


def test_a_reader_who_opts_out_after_the_send_started_is_not_sent_on_resume(ws) -> None:
    _, config, db, issue = ws
    left = add_subscriber(db, "left@example.net")
    narrowed = add_subscriber(db, "narrowed@example.net", categories=["Économie"])
    still = add_subscriber(db, "still@example.net", categories=["Économie", "World"])
    config.delivery.retries = 0
    with SMTPServer(Handler(rcpt_policy=lambda a, n: "451 4.3.0 try again later")) as busy:
        first = deliver_issue(db, config, issue["id"], transport_url=busy.url, now=AFTER)
    assert first.deferred == 3 and not busy.handler.received
    set_preferences(db, left["id"], editions=["weekly"], source="web")
    set_preferences(db, narrowed["id"], categories=["Science"], source="web")
    set_preferences(db, still["id"], categories=["économie"], source="web")
    with SMTPServer() as server:
        report = deliver_issue(db, config, issue["id"], transport_url=server.url, now=AFTER)
    assert server.handler.per_recipient() == {"still@example.net": 1}
    assert (report.sent, report.skipped, report.status) == (1, 2, "sent")
    why = dict(db.execute("SELECT email, last_error FROM deliveries WHERE status = 'skipped'").fetchall())
    assert "no longer receives the daily edition" in why["left@example.net"]
    assert "no longer follows any category" in why["narrowed@example.net"]
