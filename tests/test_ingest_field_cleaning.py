"""Fields that must read right after ingest: no control characters or line breaks in a stored
field, redirect wrappers (Google Alerts, Facebook) unwrapped, an untitled undated item named
by its words and shown undated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_switch import store_at

from digest.config import load_config
from digest.ingest.sources import ingest_sources
from digest.ingest.urls import unwrap_redirect

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds"
NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)


def test_control_characters_and_line_breaks_never_reach_a_stored_field(run_cli, workspace: Path) -> None:
    added = run_cli(
        "articles",
        "add",
        "--title",
        "Bell\x07 rings\x1b[0m",
        "--url",
        "https://example.org/a\r\nX-Evil: 1",
        "--summary",
        "Quiet\x0b night",
    )
    assert added.exit_code == 0, added.output
    file = workspace / "articles.json"
    file.write_text(
        json.dumps(
            [
                {
                    "title": "JSON \u0007 bell\ufffe",
                    "url": "https://example.org/js\u0085on",
                    "author": "A\u009bB",
                }
            ]
        ),
        encoding="utf-8",
    )
    assert run_cli("ingest", str(file)).exit_code == 0
    db = store_at(workspace / "digest.db")
    rows = {r[0]: r for r in db.execute("SELECT title, url, summary_text, author FROM articles").fetchall()}
    assert rows["Bell rings[0m"][1] == "https://example.org/a%0D%0AX-Evil:%201"
    assert rows["Bell rings[0m"][2] == "Quiet night"
    assert rows["JSON bell"][1] == "https://example.org/js%C2%85on"
    assert rows["JSON bell"][3] == "AB"


def test_google_alerts_links_are_unwrapped() -> None:
    wrapped = (
        "https://www.google.com/url?rct=j&sa=t&url=https://investorplace.com/2019/07/slack/"
        "&ct=ga&cd=CAIy&usg=AFQ"
    )
    assert unwrap_redirect(wrapped) == "https://investorplace.com/2019/07/slack/"
    assert unwrap_redirect("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.org%2Fx&h=1") == (
        "https://example.org/x"
    )
    assert unwrap_redirect("https://www.google.com/url?url=javascript:alert(1)") == (
        "https://www.google.com/url?url=javascript:alert(1)"
    )
    assert (
        unwrap_redirect("https://example.org/url?url=https://a.example")
        == "https://example.org/url?url=https://a.example"
    )


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
def test_the_google_alerts_feed_links_to_the_articles(tmp_path: Path) -> None:
    config = load_config(None, db=str(tmp_path / "d.db"))
    db = store_at(config.db_path)
    (result,) = ingest_sources(db, config, [str(CORPUS / "atom_google_alerts_redirect_links.xml")], now=NOW)
    assert result.ok and result.new > 0
    urls = [r[0] for r in db.execute("SELECT url FROM articles")]
    assert not [u for u in urls if "google.com/url" in u]


def test_an_untitled_undated_item_is_named_by_its_words_and_shown_undated(
    tmp_path: Path, workspace: Path
) -> None:
    from digest.compose.build import compose_issue
    from digest.render.variants import render_issue

    feed = tmp_path / "f.xml"
    feed.write_text(
        '<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>'
        "<item><link>https://t.example/1</link><description>The tide came in early and "
        "flooded the quay.</description></item></channel></rss>",
        encoding="utf-8",
    )
    config = load_config(workspace / "digest.toml")
    db = store_at(config.db_path)
    ingest_sources(db, config, [str(feed)], now=NOW)
    (title,) = [r[0] for r in db.execute("SELECT title FROM articles")]
    assert title == "The tide came in early and flooded the quay."
    edition = next(iter(config.editions))
    issue = compose_issue(db, config, edition, period_end=datetime(2026, 1, 13, tzinfo=UTC)).issue
    snapshot = json.loads(issue["snapshot"])
    assert snapshot["categories"][0]["articles"][0]["undated"] is True
    rendered = render_issue(db, config, issue["id"])
    assert "undated" in rendered.text and "undated" in rendered.html
    assert "12 Jan 2026, 06:00" not in rendered.text
