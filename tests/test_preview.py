"""`digest preview`: html, text and eml of an issue as a subscriber or category set gets it."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from mail_checks import spamassassin
from store_switch import store_at
from test_render_support import fixture_issue, make_store, write_config

from digest.cli import cli
from digest.render.personalise import PLACEHOLDERS


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    config, db = make_store(folder)
    fixture_issue(config, db)
    return folder


def run(ws: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(ws / "digest.toml"), *args], catch_exceptions=False)


def test_preview_html_to_stdout_fills_sample_values(ws: Path) -> None:
    result = run(ws, "preview")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("<!doctype html>")
    assert "Hello, Alex! Here are 5 stories." in out and "Reader" not in out
    assert 'href="https://news.harbour-gazette.example/unsubscribe/preview"' in out
    assert not any(token in out for token in PLACEHOLDERS.values())


def test_preview_text_for_categories(ws: Path) -> None:
    result = run(ws, "preview", "latest", "--format", "text", "--categories", "science, arts")
    assert result.exit_code == 0, result.output
    assert "- Science (1)" in result.output and "- Arts (1)" in result.output
    assert "Tidal barrier" not in result.output
    assert "Unsubscribe: https://news.harbour-gazette.example/unsubscribe/preview" in result.output


def test_preview_for_categories_the_issue_lacks_is_a_clear_error(ws: Path) -> None:
    result = run(ws, "preview", "--categories", "Sport")
    assert result.exit_code == 1
    assert "Error:" in result.output and "would not get this issue" in result.output


def test_preview_unknown_issue_is_a_clear_error(ws: Path) -> None:
    result = run(ws, "preview", "42")
    assert result.exit_code == 1 and "issue 42 not found" in result.output


def test_preview_writes_output_file(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    result = run(ws, "preview", "1", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_preview_as_a_subscriber_uses_their_categories_name_and_links(ws: Path) -> None:
    from subscribers.store import add_subscriber

    db = store_at(ws / "digest.db")
    add_subscriber(db, "grace@example.org", name="Grace <b>Hopper</b>", categories=["World"])
    result = run(ws, "preview", "--subscriber", "grace@example.org")
    assert result.exit_code == 0, result.output
    html = result.output
    assert "Hello, Grace! Here are 2 stories." in html  # the first word of the name
    assert "Tidal barrier" in html and "Seagrass" not in html
    assert re.search(r'href="https://news\.harbour-gazette\.example/unsubscribe/[A-Za-z0-9_.-]+"', html)
    assert "/unsubscribe/preview" not in html


def test_preview_eml_is_the_complete_message(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "issue.eml"
    result = run(ws, "preview", "--format", "eml", "-o", str(out))
    assert result.exit_code == 0, result.output
    msg = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Daily Briefing #1: Tidal barrier opens a year early"
    assert msg.get_content_type() == "multipart/alternative"
    assert "List-Unsubscribe" in msg
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "Tidal barrier opens a year early" in html and "Tidal barrier opens a year early" in text


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin is not installed")
def test_spamassassin_scores_the_fixture_issue_low(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "issue.eml"
    assert run(ws, "preview", "--format", "eml", "-o", str(out)).exit_code == 0
    score, rules, report = spamassassin(out.read_bytes(), tmp_path / "sa-home")
    assert score <= 1.0, report[report.find("Content analysis") :]
    assert rules, report[-3000:]
    assert all(float(points) <= 1.0 for points, _ in rules), rules


def test_preview_without_issues_says_how_to_build_one(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    write_config(folder)
    result = run(folder, "preview")
    assert result.exit_code == 1 and "digest issues build" in result.output


def test_preview_open_writes_a_file_and_hands_it_to_the_browser(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile
    import webbrowser

    opened = tmp_path / "opened.txt"
    # A real "browser" command that records what it was given.
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # re-read $BROWSER in this process
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the preview file lands here
    result = run(ws, "preview", "--format", "text", "--open")
    assert result.exit_code == 0, result.output
    uri = opened.read_text().strip()
    assert uri.startswith(f"file://{tmp_path}") and uri.endswith(".txt")
    assert "Tidal barrier" in Path(uri.removeprefix("file://")).read_text(encoding="utf-8")
