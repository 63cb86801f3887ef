"""`digest send` and `digest deliveries` from the command line, including a SIGKILL mid-send."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup
from smtp_server import Handler, SMTPServer

from digest.cli import cli


def invoke(setup: Setup, *args: str):
    return CliRunner().invoke(cli, ["--config", str(setup.config_file), *args])


def start_send(setup: Setup, url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "DIGEST_DELIVERY_TIMEOUT": "10"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "--config",
            str(setup.config_file),
            "send",
            "1",
            "--transport",
            url,
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def ledger(setup: Setup) -> dict[str, tuple[str, str]]:
    rows = setup.db.execute("SELECT email, status, message_id FROM deliveries WHERE issue_id = 1").fetchall()
    return {email: (status, mid) for email, status, mid in rows}


def test_send_prints_one_summary_line_and_deliveries_lists_the_ledger(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=3)
    handler = Handler(
        rcpt_policy=lambda a, n: "550 5.1.1 unknown user" if a == "reader2@example.net" else None
    )
    with SMTPServer(handler) as server:
        result = invoke(setup, "send", "latest", "--transport", server.url)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "sent 2, failed 1, deferred 0, skipped 0" in lines[0] and "messages/s" in lines[0]
    listing = invoke(setup, "deliveries", "1", "--status", "failed")
    assert listing.output.splitlines()[0].split()[:3] == ["EMAIL", "STATUS", "VARIANT"]
    assert listing.output.splitlines()[1].split()[:2] == ["reader2@example.net", "failed"]
    assert "550 5.1.1 unknown user" in listing.output
    data = json.loads(invoke(setup, "deliveries", "1", "--json").output)
    assert {r["email"]: r["status"] for r in data} == {
        "reader0@example.net": "sent",
        "reader1@example.net": "sent",
        "reader2@example.net": "failed",
    }


def test_dry_run_and_test_send_from_the_cli(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=3)
    dry = invoke(setup, "send", "1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert 'reader0@example.net\t["Science"]' in dry.output and "reader1@example.net\t*" in dry.output
    assert "3 would be sent now" in dry.output
    with SMTPServer() as server:
        test = invoke(
            setup, "send", "1", "--to", "me@example.com", "--to", "you@example.com", "--transport", server.url
        )
    assert test.exit_code == 0, test.output
    assert sorted(r.rcpt_tos[0] for r in server.handler.received) == ["me@example.com", "you@example.com"]
    assert all(r.message["Subject"].startswith("[TEST] ") for r in server.handler.received)
    assert ledger(setup) == {}


def test_a_killed_send_resumes_without_sending_anyone_recorded_as_sent_twice(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=30)
    handler = Handler(delay=0.05)
    with SMTPServer(handler) as server:
        proc = start_send(setup, server.url, "--concurrency", "2")
        wait_for(lambda: len(handler.received) >= 8)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        at_kill = ledger(setup)
        sent_before = {e for e, (status, _) in at_kill.items() if status == "sent"}
        in_flight = {e for e, (status, _) in at_kill.items() if status == "sending"}
        assert sent_before, "some rows should have been recorded as sent before the kill"
        assert len(sent_before) < 30
        received_at_kill = handler.per_recipient()

        again = start_send(setup, server.url, "--concurrency", "2")
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()
    counts = handler.per_recipient()
    everyone = {s["email"] for s in setup.subscribers}
    assert set(counts) == everyone  # nobody skipped
    assert all(counts[e] == 1 for e in sent_before)  # recorded as sent → never again
    repeated = {e for e, n in counts.items() if n > 1}
    assert repeated <= in_flight  # only what was in flight at the kill may repeat...
    assert all(received_at_kill[e] >= 1 for e in repeated)
    for email in repeated:  # ...and with the same Message-ID, so receivers can tell
        ids = {r.message["Message-ID"] for r in handler.received if email in r.rcpt_tos}
        assert ids == {at_kill[email][1]}
    assert all(status == "sent" for status, _ in ledger(setup).values())
    assert setup.db.execute("SELECT status FROM issues WHERE id = 1").fetchone()[0] == "sent"


def test_sigterm_finishes_in_flight_work_records_it_and_the_next_send_resumes(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=20)
    handler = Handler(delay=0.05)
    with SMTPServer(handler) as server:
        proc = start_send(setup, server.url, "--concurrency", "2")
        wait_for(lambda: len(handler.received) >= 4)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 143, err.decode()  # 128 + SIGTERM, after the in-flight messages
        assert "interrupted" in out.decode()
        rows = ledger(setup)
        assert not [e for e, (s, _) in rows.items() if s == "sending"]
        received = handler.per_recipient()
        # What the server accepted is exactly what the ledger says was sent.
        assert {e for e, (s, _) in rows.items() if s == "sent"} == set(received)
        again = start_send(setup, server.url)
        again.communicate(timeout=60)
    counts = handler.per_recipient()
    assert counts == Counter({s["email"]: 1 for s in setup.subscribers})


@pytest.mark.sqlite_only("one sender per issue on SQLite (a lock file); on PostgreSQL: test_send_postgresql")
def test_a_second_send_of_the_same_issue_refuses_while_the_first_runs(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=6)
    handler = Handler(delay=0.3)
    with SMTPServer(handler) as server:
        proc = start_send(setup, server.url, "--concurrency", "1")
        wait_for(lambda: len(handler.received) >= 1)
        second = invoke(setup, "send", "1", "--transport", server.url)
        assert second.exit_code == 1
        assert "already being sent" in second.output
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    assert handler.per_recipient() == Counter({s["email"]: 1 for s in setup.subscribers})


@pytest.mark.parametrize(
    "args",
    [
        ["--concurrency", "0"],
        ["--rate", "-1"],
        ["--retry-failed", "--dry-run"],
        ["--retry-failed", "--to", "me@example.org"],
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=1)
    assert invoke(setup, "send", "1", *args).exit_code == 2


def test_the_transport_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=2)
    with SMTPServer() as server:
        monkeypatch.setenv("DIGEST_TRANSPORT", server.url)
        result = invoke(setup, "send", "1")
    assert result.exit_code == 0, result.output
    assert len(server.handler.received) == 2 and f"via smtp://127.0.0.1:{server.port}" in result.output


def test_a_test_send_of_a_draft_links_to_a_web_version_that_shows_the_draft(tmp_path: Path) -> None:
    """ "View in browser" in a `--to` test message opens the draft from the web app, both parts."""
    import re
    import threading
    import urllib.error
    import urllib.request

    from werkzeug.serving import make_server

    from digest.config import load_config
    from digest.web import create_app

    setup = make_setup(tmp_path / "ws", subscribers=1)
    issue_id = int(setup.issue["id"])
    server = make_server("127.0.0.1", 0, create_app(load_config(setup.config_file)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    toml = setup.config_file
    toml.write_text(toml.read_text().replace('base_url = "https://news.example.org"', f'base_url = "{base}"'))
    try:
        with SMTPServer() as smtp:
            result = invoke(setup, "send", str(issue_id), "--to", "me@example.com", "--transport", smtp.url)
        assert result.exit_code == 0, result.output
        message = smtp.handler.received[0].message
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        link = re.compile(re.escape(base) + r"/issues/\d+[^\s\"<>)]*")
        html_links = set(link.findall(html))
        assert html_links and html_links == set(link.findall(text))
        (view,) = html_links
        assert view.startswith(f"{base}/issues/{issue_id}/test/")
        with urllib.request.urlopen(view, timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200
        title = setup.db.execute("SELECT subject FROM issues WHERE id = ?", [issue_id]).fetchone()[0]
        assert "Story 0: harbour cranes" in page and title.split()[0] in page
        with pytest.raises(urllib.error.HTTPError) as public:  # the draft is still not public
            urllib.request.urlopen(f"{base}/issues/{issue_id}", timeout=10)
        assert public.value.code == 404
    finally:
        server.shutdown()
        thread.join()
