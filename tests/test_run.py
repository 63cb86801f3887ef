"""`digest run`: what cron calls. Same moment twice, or twice at once: one issue, one delivery each."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from test_schedule_support import (
    DIGEST,
    add_readers,
    article_times,
    grow_feed,
    make_workspace,
    messages,
    recipients,
    utc,
)

from digest.cli import cli

READERS = {f"reader{i:02d}@example.org": None for i in range(40)}


def invoke(ws, *args: str):
    return CliRunner().invoke(cli, ["--config", str(ws.config_path), *args])


def test_two_digest_runs_at_once_make_one_issue_and_one_delivery_each(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", weekly=True)
    add_readers(ws, READERS)
    grow_feed(ws, article_times(utc(2026, 10, 26), utc(2026, 11, 2, 6), timedelta(hours=2)), utc(2026, 11, 3))
    # Monday 2026-11-02 08:05 Berlin: both the daily (07:00) and the weekly (08:00) are due.
    cmd = [DIGEST, "run", "--at", "2026-11-02T07:05:00Z"]
    procs = [
        subprocess.Popen(
            cmd, cwd=ws.root, env=ws.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
        assert "locked" not in out and "Error" not in out, out
    db = ws.db()
    assert sorted(db.execute("SELECT edition, number FROM issues").fetchall()) == [
        ("daily", 1),
        ("weekly", 1),
    ]
    counts = Counter(r[0] for r in db.execute("SELECT status FROM deliveries"))
    assert counts == {"sent": 2 * len(READERS)}
    inbox = messages(ws.outbox)
    per_pair = Counter((recipients(m), m["Subject"]) for m in inbox)
    assert len(per_pair) == 2 * len(READERS) and set(per_pair.values()) == {1}
    assert db.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()[0] == 2


def test_run_prints_one_line_and_is_idempotent(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": "Asia/Almaty", "b@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    first = invoke(ws, "run", "--at", "2026-11-03T07:10:00+01:00")
    assert first.exit_code == 0, first.output
    assert first.output.count("\n") == 1
    assert first.output.startswith("run 2026-11-03T06:10:00Z: ingested ")
    assert "built daily/1" in first.output and "daily/1: sent 2" in first.output
    again = invoke(ws, "run", "--at", "2026-11-03T06:20Z")
    assert again.output == "run 2026-11-03T06:20:00Z: nothing due\n"
    assert len(messages(ws.outbox)) == 2


def test_run_json_dry_run_and_edition(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", weekly=True)
    result = invoke(ws, "run", "--at", "2026-11-02T07:30Z", "--edition", "weekly", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] is True and data["editions"] == ["weekly"]
    assert [b["scheduled"] for b in data["built"]] == ["2026-11-02T07:00:00+00:00"]
    assert ws.db().execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_run_rejects_bad_input_with_one_line(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    bad_time = invoke(ws, "run", "--at", "tomorrow")
    assert bad_time.exit_code == 1
    assert "Error: --at 'tomorrow' is not an ISO time" in bad_time.output
    bad_edition = invoke(ws, "run", "--edition", "hourly")
    assert bad_edition.exit_code == 1 and "unknown edition 'hourly'" in bad_edition.output


def test_schedule_list_shows_zone_and_utc(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", delivery="local")
    text = invoke(ws, "schedule", "list")
    assert text.exit_code == 0, text.output
    assert "cron '0 7 * * *' in Europe/Berlin" in text.output and "local 07:00 per reader" in text.output
    assert " UTC" in text.output
    data = json.loads(invoke(ws, "schedule", "list", "--json", "--count", "1").output)
    assert data[0]["edition"] == "daily" and len(data[0]["next"]) == 1
    entry = data[0]["next"][0]
    assert entry["local"].endswith(("+01:00", "+02:00")) and entry["utc"].endswith("+00:00")


def test_a_failed_send_exits_1_and_the_next_run_resumes(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None, "b@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    text = ws.config_path.read_text(encoding="utf-8")
    # Nothing listens on port 9 of 127.0.0.1 ("discard" is never running in a test box).
    ws.config_path.write_text(
        text.replace('"maildir:outbox"', '"smtp://127.0.0.1:9"\nretries = 0\ntimeout = 2'), encoding="utf-8"
    )
    failed = invoke(ws, "run", "--at", "2026-11-03T06:05Z")
    assert failed.exit_code == 1, failed.output
    assert "built daily/1" in failed.output and "Error: daily/1:" in failed.output
    db = ws.db()
    assert {r[0] for r in db.execute("SELECT status FROM deliveries")} <= {"queued", "deferred"}

    ws.config_path.write_text(text, encoding="utf-8")
    resumed = invoke(ws, "run", "--at", "2026-11-03T06:20Z")
    assert resumed.exit_code == 0, resumed.output
    assert "daily/1: sent 2" in resumed.output
    assert len(messages(ws.outbox)) == 2


def test_an_at_outside_the_calendar_is_one_error_line_not_a_traceback(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    for at in ("0001-01-01T00:00Z", "0001-01-01T00:00+01:00", "9999-12-31T23:59Z"):
        result = subprocess.run(
            [DIGEST, "run", "--at", at], cwd=ws.root, env=ws.env(), capture_output=True, text=True
        )
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [
            f"Error: --at {at!r} is out of range; give a time from 1970-01-01 to 9999-01-01 (UTC)"
        ]


def test_a_killed_run_is_closed_as_interrupted_by_the_next_run(tmp_path: Path) -> None:
    import signal
    import time

    from smtp_server import Handler, SMTPServer

    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None, "b@example.org": None})
    grow_feed(ws, article_times(utc(2026, 11, 2), utc(2026, 11, 3, 5), timedelta(hours=3)), utc(2026, 11, 4))
    env = ws.env()
    with SMTPServer(Handler(delay=30)) as server:
        env["DIGEST_TRANSPORT"] = server.url
        proc = subprocess.Popen(
            [DIGEST, "run", "--at", "2026-11-03T06:10Z"], cwd=ws.root, env=env, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while not server.handler.sessions and time.monotonic() < deadline:  # the send has begun
            time.sleep(0.05)
        assert server.handler.sessions, proc.stderr
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    db = ws.db()
    (killed,) = db.execute("SELECT id FROM runs WHERE finished_at IS NULL").fetchall()

    # A run of another live process (here: this test) is left alone.
    db.execute(
        "INSERT INTO runs (at, started_at, summary) VALUES (?, ?, ?)",
        [
            "2026-11-03T06:11:00+00:00",
            "2026-11-03T06:11:00+00:00",
            json.dumps({"pid": os.getpid(), "host": socket.gethostname()}),
        ],
    )
    again = invoke(ws, "run", "--at", "2026-11-03T06:20Z")
    assert again.exit_code == 0, again.output
    row = db.execute("SELECT finished_at, summary FROM runs WHERE id = ?", [killed[0]]).fetchone()
    assert row[0] is not None
    summary = json.loads(row[1])
    assert summary["interrupted"] is True and "ended before it finished" in summary["error"]
    assert db.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL").fetchone()[0] == 1
    assert Counter(r[0] for r in db.execute("SELECT status FROM deliveries")) == {"sent": 2}


def _full_messages(outbox: Path) -> list:
    import email
    import email.policy
    import mailbox

    box = mailbox.Maildir(str(outbox), create=False)
    return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default) for k in box.iterkeys()]


def _write_distinct_feed(path: Path, descriptions: list[str]) -> None:
    """An RSS file with one item per description, each about its own subject (none merge)."""
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    subjects = [
        "harbour dredging",
        "rail strike",
        "comet sighting",
        "opera premiere",
        "chip factory",
        "flood",
    ]
    items = []
    for i, text in enumerate(descriptions):
        when = utc(2026, 11, 2, 8 + 3 * i)
        items.append(
            f"<item><title>{escape(subjects[i].title())} report {i}</title>"
            f"<link>https://feed.example.org/story-{i}</link><guid>story-{i}</guid>"
            f"<category>World</category><pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{escape(text)}</description></item>"
        )
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Test feed</title>'
        "<link>https://feed.example.org/</link><description>t</description>"
    )
    path.write_text(head + "".join(items) + "</channel></rss>", encoding="utf-8")


def test_one_long_word_in_a_feed_description_never_empties_the_issue(tmp_path: Path) -> None:
    """A 200,000-character "word" in one item's description: the issue still carries all six
    stories (the long one cut), under the size budget, and is sent."""
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None})
    descriptions = [f"Plain news item number {i} with a few ordinary words." for i in range(6)]
    descriptions[5] = "x" * 200_000  # the newest: the first the budget keeps
    _write_distinct_feed(ws.feed_path, descriptions)
    result = invoke(ws, "run", "--at", "2026-11-03T06:05Z")
    assert result.exit_code == 0, result.output
    (message,) = _full_messages(ws.outbox)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Here are 6 stories." in text, text[:400]
    assert sorted(set(re.findall(r"https://feed.example.org/story-\d", text))) == [
        f"https://feed.example.org/story-{i}" for i in range(6)
    ]
    assert len(html.encode()) < ws.config().render.max_html_bytes
    assert "x" * 1000 not in text and "x" * 1000 not in html


def test_an_issue_that_could_carry_none_of_its_stories_fails_the_run_and_sends_nothing(
    tmp_path: Path,
) -> None:
    ws = make_workspace(tmp_path / "ws")
    add_readers(ws, {"a@example.org": None})
    _write_distinct_feed(ws.feed_path, ["The only story today."])
    assert invoke(ws, "ingest").exit_code == 0
    built = invoke(ws, "issues", "build", "daily", "--date", "2026-11-03")
    assert built.exit_code == 0, built.output
    db = ws.db()
    # A snapshot frozen by an older version, whose one card cannot fit in any email.
    snapshot = json.loads(db.execute("SELECT snapshot FROM issues").fetchone()[0])
    snapshot["categories"][0]["articles"][0]["title"] = "endless " * 30_000
    db.execute("UPDATE issues SET snapshot = ?", [json.dumps(snapshot)])
    result = invoke(ws, "run", "--at", "2026-11-03T06:05Z")
    assert result.exit_code == 1, result.output
    assert "Error: daily/1: issue daily/1: none of its 1 articles fits in an email" in result.output
    assert "Traceback" not in result.output
    assert messages(ws.outbox) == []  # was: "here are 0 of 1 stories", sent
    sent = invoke(ws, "send", "daily/1")
    assert sent.exit_code == 1 and sent.output.count("\n") == 1, sent.output
    assert sent.output.startswith("Error: issue daily/1: none of its 1 articles fits in an email")
    assert db.execute("SELECT status FROM issues").fetchone()[0] == "draft"
    assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
