"""Nobody forgets: `digest run` reports an issue that could not go out on every later run, and
content (a control character in a stored title) can never make an issue unrenderable."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_schedule_support import add_readers, article_times, grow_feed, make_workspace, messages, utc

from digest.cli import cli
from digest.compose.build import compose_issue
from digest.errors import DigestError
from digest.render.guard import render_skipping_broken
from digest.store.database import iso


def invoke(ws, *args: str):
    return CliRunner().invoke(cli, ["--config", str(ws.config_path), *args], env=ws.env())


def test_a_control_character_in_a_stored_title_does_not_stop_the_issue(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None, "b@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=6)), utc(2026, 11, 4))
    db = ws.db()
    # Written straight into the table, as an older digest's ingest would have stored it.
    db["articles"].insert(
        {
            "guid": "bell",
            "url": "https://feed.example.org/bell\r\nX-Injected: 1",
            "title": "Bell \x07 and \x1b[31mescape\ufffe",
            "category": "World",
            "published_at": iso(utc(2026, 11, 3, 1)),
            "summary": "<p>Ring\x0b ring</p>",
            "summary_text": "Ring\x0b ring",
            "created_at": iso(utc(2026, 11, 3, 1)),
            "updated_at": iso(utc(2026, 11, 3, 1)),
        }
    )
    db.close()
    result = invoke(ws, "run", "--at", "2026-11-03T06:05Z")
    assert result.exit_code == 0, result.output
    files = sorted((ws.outbox / "new").iterdir())
    assert len(files) == 2
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)).get_content()
    assert "Bell  and [31mescape" in body
    assert "\x07" not in body and "\x1b" not in body
    assert "X-Injected: 1" not in body.replace("%0D%0AX-Injected:%201", "")


def test_an_unsent_issue_is_reported_by_every_run_until_it_goes_out(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None, "b@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    good = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(
        good.replace('"maildir:outbox"', '"smtp://127.0.0.1:9"\nretries = 0\ntimeout = 2'), encoding="utf-8"
    )
    assert invoke(ws, "run", "--at", "2026-11-03T06:05Z").exit_code == 1
    # Long past the catch-up window: nothing is due, but the issue has not gone out.
    later = invoke(ws, "run", "--at", "2026-11-03T18:00Z")
    assert later.exit_code == 1, later.output
    assert "Overdue: daily/1 (due 2026-11-03T06:00:00Z) has 2 undelivered messages" in later.stderr
    assert "digest send daily/1" in later.stderr
    again = invoke(ws, "run", "--at", "2026-11-03T19:00Z")
    assert again.exit_code == 1 and "Overdue: daily/1" in again.stderr
    ws.config_path.write_text(good, encoding="utf-8")
    sent = invoke(ws, "send", "1")
    assert sent.exit_code == 0, sent.output
    assert len(messages(ws.outbox)) == 2
    clean = invoke(ws, "run", "--at", "2026-11-03T20:00Z")
    assert clean.exit_code == 0, clean.output
    assert "overdue" not in clean.output.lower()


def test_a_draft_past_the_catch_up_window_is_reported_and_can_still_be_sent(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    assert invoke(ws, "ingest").exit_code == 0
    db = ws.db()
    issue = compose_issue(db, ws.config(), "daily", period_end=utc(2026, 11, 3, 6)).issue
    db.close()
    late = invoke(ws, "run", "--at", "2026-11-03T13:00Z")
    assert late.exit_code == 1
    assert "1 overdue" in late.stdout
    assert late.stderr == (
        "Overdue: daily/1 was due 2026-11-03T06:00:00Z and is still a draft; "
        "send it with `digest send daily/1`\n"
    )
    assert invoke(ws, "send", str(issue["id"])).exit_code == 0
    assert len(messages(ws.outbox)) == 1
    assert invoke(ws, "run", "--at", "2026-11-03T14:00Z").exit_code == 0


def test_an_article_that_cannot_be_rendered_is_left_out_and_named() -> None:
    # The render step as a callable: fails whenever article 2 is in it, like MJML would.
    def render(ids: set[int]) -> str:
        if 2 in ids:
            raise DigestError("MJML error: bad markup")
        return ",".join(str(i) for i in sorted(ids))

    articles = [{"id": 1, "title": "Fine"}, {"id": 2, "title": "Broken"}, {"id": 3, "title": "Fine too"}]
    out, dropped = render_skipping_broken(render, articles)
    assert out == "1,3"
    assert dropped == {2: "article 2 ('Broken') left out: MJML error: bad markup"}


def test_a_failure_that_is_no_articles_fault_is_raised() -> None:
    def render(ids: set[int]) -> str:
        raise DigestError("template error")

    try:
        render_skipping_broken(render, [{"id": 1, "title": "a"}])
    except DigestError as exc:
        assert str(exc) == "template error"
    else:
        raise AssertionError("expected the template error")


def test_an_article_that_breaks_mjml_is_left_out_and_the_run_names_it(tmp_path: Path) -> None:
    from digest.render.templating import bundled_templates_dir

    partial = bundled_templates_dir() / "email" / "_entry.mjml.j2"
    marker = "{% macro entry(article, lead=false) %}\n"
    source = partial.read_text(encoding="utf-8") if partial.is_file() else ""
    if marker not in source:
        pytest.skip("the entry partial changed shape; nothing to inject into")
    ws = make_workspace(tmp_path / "ws")
    # An override partial that emits broken MJML for one article: real MJML, real failure.
    (ws.root / "tpl" / "email").mkdir(parents=True)
    (ws.root / "tpl" / "email" / "_entry.mjml.j2").write_text(
        source.replace(marker, marker + "{% if article.title == 'Explode' %}</mj-column>{% endif %}"),
        encoding="utf-8",
    )
    with ws.config_path.open("a", encoding="utf-8") as fh:
        fh.write('\n[render]\ntemplates = "tpl"\n')
    add_readers(ws, {"a@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=6)), utc(2026, 11, 4))
    db = ws.db()
    db["articles"].insert(
        {
            "guid": "explode",
            "url": "https://feed.example.org/explode",
            "title": "Explode",
            "category": "World",
            "published_at": iso(utc(2026, 11, 3, 2)),
            "created_at": iso(utc(2026, 11, 3, 2)),
            "updated_at": iso(utc(2026, 11, 3, 2)),
        }
    )
    article_id = db.execute("SELECT id FROM articles WHERE guid = 'explode'").fetchone()[0]
    db.close()
    result = invoke(ws, "run", "--at", "2026-11-03T06:05Z")
    assert result.exit_code == 0, result.output
    assert f"article {article_id} ('Explode') left out: MJML error" in result.stdout
    (message_file,) = (ws.outbox / "new").iterdir()
    message = email.message_from_bytes(message_file.read_bytes(), policy=email.policy.default)
    assert "Explode" not in message.get_body(("plain",)).get_content()
    assert "https://feed.example.org/20261102T1200" in message.get_body(("plain",)).get_content()
