"""SpamAssassin (offline, ``spamassassin -L -t``) scores the new layout 0.0: a full issue with
an editor's note, bylines and a lead image, trimmed to the budget, as a subscriber gets it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from delivery_fixtures import make_setup
from mail_checks import spamassassin

from digest.compose.notes import set_issue_note
from digest.mail.message import build_message
from digest.render.variants import render_issue
from subscribers.links import subscriber_links
from subscribers.tokens import load_secret


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin is not installed")
def test_a_rich_issue_scores_zero(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=2)
    db, config, issue = setup.db, setup.config, setup.issue
    config.render.images = True
    snapshot = json.loads(issue["snapshot"])
    first = snapshot["categories"][0]["articles"][0]
    first.update(
        author="Mara Quill", image={"url": "https://images.example/a.jpg", "width": 800, "height": 450}
    )
    db.execute("UPDATE issues SET snapshot = ? WHERE id = ?", [json.dumps(snapshot), issue["id"]])
    set_issue_note(db, issue["id"], "A short note from the editor: the harbour festival starts on Friday.")
    rendered = render_issue(db, config, issue["id"], "*")
    assert "<img" in rendered.html and "Mara Quill" in rendered.html
    sub = setup.subscribers[1]
    links = subscriber_links(config, load_secret(config), sub)
    who = {**links, "email": sub["email"], "name": sub["name"], "subscriber_id": sub["id"]}
    score, rules, report = spamassassin(build_message(config, issue, rendered, who), tmp_path / "home")
    assert score <= 0.0, report.split("Content analysis details")[-1]
    assert all(float(points) <= 0.0 for points, _ in rules), rules


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin is not installed")
def test_a_greek_issue_sent_in_base64_scores_zero(tmp_path: Path) -> None:
    from test_render_budget import RECIPIENT, non_latin_issue

    config, db, issue = non_latin_issue(tmp_path, 40)
    message = build_message(config, issue, render_issue(db, config, issue["id"]), RECIPIENT)
    assert b"Content-Transfer-Encoding: base64" in message
    score, rules, report = spamassassin(message, tmp_path / "home")
    assert score <= 0.0, report.split("Content analysis details")[-1]
    assert all(float(points) <= 0.0 for points, _ in rules), rules
