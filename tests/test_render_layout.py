"""What the issue says and shows: counts that match a trimmed issue, no empty section,
subjects and preheaders, the optional card fields, lead images and the editor's note."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_render import _check_golden
from test_render_support import PERIOD_END, add_article, big_issue, enrich, fixture_issue, make_store

from digest.cli import cli
from digest.compose.build import compose_issue
from digest.compose.issues import get_issue
from digest.compose.subject import SUBJECT_MAX_CHARS
from digest.ingest.sources import ingest_sources
from digest.render.personalise import personalise, sample_fields
from digest.render.variants import render_issue, stored_variant

SECTIONS = ["World", "Technology", "Science", "Culture", "Business", "Sport"]


@pytest.fixture
def store(tmp_path: Path):
    return make_store(tmp_path / "ws")


def _sections_shown(html: str) -> list[str]:
    return re.findall(r"<h2[^>]*>([^<]+)</h2>", html)


def test_a_trimmed_issue_leaves_no_section_empty_and_every_count_matches(store) -> None:
    config, db = store
    issue = big_issue(config, db, 146, words=60)
    rendered = render_issue(db, config, issue["id"])
    shown = 146 - rendered.trimmed
    html = personalise(rendered.html, sample_fields(config), html=True)
    assert 0 < shown < 146 and html.count("<h3") == shown
    assert f"Here are {shown} of 146 stories; " in html and "all 146 in the web version" in html
    assert f"Here are {shown} of 146 stories; all 146 in the web version:" in rendered.text
    headings = _sections_shown(html)
    assert len(headings) == len(SECTIONS)  # none empty, none dropped
    total_shown = 0
    for heading in headings:
        m = re.fullmatch(r"(\w+) · (\d+) of (\d+)", heading)
        assert m, heading
        name, n, of = m.group(1), int(m.group(2)), int(m.group(3))
        assert n >= 1
        assert re.search(rf"{name}(&nbsp;|\xa0)\({n}(&nbsp;|\xa0)of(&nbsp;|\xa0){of}\)", html)
        assert f"{of - n} more in {name} in the web version" in html
        assert f"- {name} ({n} of {of})" in rendered.text
        total_shown += n
    assert total_shown == shown
    assert "web only" not in html


def test_below_one_story_per_section_whole_sections_go_last_first(store) -> None:
    config, db = store
    issue = big_issue(config, db, 60, words=60)
    full = render_issue(db, config, issue["id"])
    config.render.max_html_bytes = 20_000  # room for a few articles only
    rendered = render_issue(db, config, issue["id"])
    assert len(full.html) > 30_000 and rendered.trimmed > 0
    shown = 60 - rendered.trimmed
    assert 2 <= shown < len(SECTIONS), shown
    headings = [h.split(" · ")[0] for h in _sections_shown(rendered.html)]
    # The issue's section order is kept and the last ones are the ones left out; the first
    # section's story is the lead, above the sections (a section of the lead alone has no heading).
    assert "Top story · World" in rendered.html
    assert headings == SECTIONS[1:shown]
    for name in SECTIONS[shown:]:
        assert re.search(
            rf"{name}(&nbsp;|\xa0)\(0(&nbsp;|\xa0)of(&nbsp;|\xa0)10, web(&nbsp;|\xa0)only\)", rendered.html
        )
        assert f"- {name} (0 of 10, web only)" in rendered.text
        assert f"\n{name.upper()}" not in rendered.text


def test_subject_names_the_top_story_within_78_characters_cut_at_a_word(store) -> None:
    config, db = store
    long_title = (
        "Harbour council approves the long-delayed tidal barrier extension after a stormy night of debate"
    )
    add_article(db, title=long_title, category="World", published_at=PERIOD_END - timedelta(minutes=5))
    add_article(db, title="Second story", category="Science", published_at=PERIOD_END - timedelta(minutes=9))
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    subject = issue["subject"]
    assert len(subject) <= SUBJECT_MAX_CHARS, subject
    assert subject.startswith("Daily Briefing #1: Harbour council approves") and subject.endswith("…")
    assert long_title.startswith(subject[len("Daily Briefing #1: ") : -1])  # cut between words
    assert long_title[len(subject) - len("Daily Briefing #1: ") - 1] == " "
    # Each variant's subject has its own top story.
    assert render_issue(db, config, issue["id"], '["Science"]').subject == "Daily Briefing #1: Second story"


def test_preheader_is_the_next_headlines_then_padding_before_any_body_text(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    html = render_issue(db, config, issue["id"]).html
    hidden = re.search(r'<div style="display:none[^"]*">(.*?)</div>', html, re.S)
    assert hidden
    text = html_lib.unescape(hidden.group(1))
    assert text.startswith("Q&A: <why> ferries keep running late · Open-source tide tables")
    padding = text[len(issue["preheader"]) :]
    assert len(padding) >= 200 and not padding.strip("\u034f\u200c\xa0 ")
    assert html.index(hidden.group(0)) < html.index("View in browser")


def _set_snapshot_fields(db, issue_id: int, **fields_by_title: dict) -> None:
    row = get_issue(db, issue_id)
    snapshot = json.loads(row["snapshot"])
    for section in snapshot["categories"]:
        for article in section["articles"]:
            article.update(fields_by_title.get(article["title"], {}))
    db.execute("UPDATE issues SET snapshot = ? WHERE id = ?", [json.dumps(snapshot), issue_id])


def test_byline_undated_summary_label_and_also_covered_show_when_present(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    _set_snapshot_fields(
        db,
        issue["id"],
        **{
            "Tidal barrier opens a year early": {
                "author": "Mara Quill",
                "summary_label": "AI-generated summary",
                "also_covered": [
                    {"source": "Port Elwyn Post", "url": "https://post.example/barrier"},
                    {"source": "Coastal Review", "url": "https://review.example/b?x=1&y=2"},
                ],
            },
            "Lighthouse festival returns": {"undated": True},
        },
    )
    rendered = render_issue(db, config, issue["id"])
    html, text = rendered.html, rendered.text
    for part in (html, text):
        assert "Estuary Wire · By Mara Quill · 23 Jan 2026, 06:10 · 3 min read" in part
        assert "undated · 1 min read" in part and "02:00 · 1 min read" not in part
    assert "AI-generated summary:</em> Engineers finished" in html
    assert "AI-generated summary: Engineers finished" in text
    assert 'Also covered by: <a href="https://post.example/barrier"' in html
    assert 'href="https://review.example/b?x=1&amp;y=2"' in html
    assert (
        "Also covered by: Port Elwyn Post <https://post.example/barrier>, "
        "Coastal Review <https://review.example/b?x=1&y=2>"
    ) in " ".join(text.split())
    # Without them (the fixture's other articles) nothing is left over.
    assert html.count("By Mara Quill") == 1 and html.count("Also covered by") == 1


FEED = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Quay Photos</title><link>https://photos.example/</link>
<item><title>Barrier at dawn</title><link>https://photos.example/dawn</link>
<pubDate>Fri, 23 Jan 2026 05:00:00 GMT</pubDate><category>World</category>
<media:thumbnail url="https://photos.example/dawn-small.jpg" width="150" height="100"/>
<media:content url="https://photos.example/dawn.jpg" medium="image" width="1200" height="800"/></item>
<item><title>Pixel story</title><link>https://photos.example/pixel</link>
<pubDate>Fri, 23 Jan 2026 04:00:00 GMT</pubDate><category>World</category>
<media:content url="https://track.example/p.gif" medium="image" width="1" height="1"/></item>
<item><title>Enclosure story</title><link>https://photos.example/enc</link>
<pubDate>Fri, 23 Jan 2026 03:00:00 GMT</pubDate><category>World</category>
<enclosure url="https://photos.example/enc.jpg" type="image/jpeg" length="1000"/></item>
</channel></rss>
"""


def test_lead_images_are_captured_at_ingest_and_shown_only_when_enabled(store, tmp_path: Path) -> None:
    config, db = store
    feed = tmp_path / "photos.rss"
    feed.write_text(FEED, encoding="utf-8")
    (result,) = ingest_sources(db, config, [str(feed)], now=PERIOD_END)
    assert result.ok
    images = {r["title"]: r["image"] for r in db.query("SELECT title, image FROM articles")}
    assert json.loads(images["Barrier at dawn"]) == {
        "url": "https://photos.example/dawn.jpg",
        "width": 1200,
        "height": 800,
    }
    assert images["Pixel story"] is None and images["Enclosure story"] is None  # a pixel; no size
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    assert "<img" not in render_issue(db, config, issue["id"]).html  # off by default
    config.render.images = True
    html = render_issue(db, config, issue["id"]).html
    (img,) = re.findall(r"<img [^>]*>", html)
    assert 'src="https://photos.example/dawn.jpg"' in img
    # The headline stands beside it: the picture's alt is its own caption or empty, never the headline.
    assert 'width="544"' in img and 'height="363"' in img and 'alt=""' in img


def run(config_path: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(config_path), *args])


def test_editors_note_is_shown_at_the_top_and_frozen_once_sending_starts(store, tmp_path: Path) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    cfg = tmp_path / "ws" / "digest.toml"
    result = run(cfg, "issues", "note", str(issue["id"]), "No issue on Monday.\n\nThe <newsroom> is away.")
    assert result.exit_code == 0, result.output
    assert "note set" in result.output
    rendered = render_issue(db, config, issue["id"])
    assert '<p class="e" style=' in rendered.html and "The &lt;newsroom&gt; is away." in rendered.html
    assert rendered.html.index("No issue on Monday.") < rendered.html.index("<h3")
    assert "\nNo issue on Monday.\n\nThe <newsroom> is away.\n" in rendered.text
    stored_variant(db, config, issue["id"], "*")  # what a send does first
    refused = run(cfg, "issues", "note", str(issue["id"]), "Too late")
    assert refused.exit_code == 1
    assert "sending has started" in refused.output and "Traceback" not in refused.output
    assert get_issue(db, issue["id"])["note"] == "No issue on Monday.\n\nThe <newsroom> is away."


def test_an_empty_note_removes_it_and_a_long_one_is_refused(store, tmp_path: Path) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    cfg = tmp_path / "ws" / "digest.toml"
    assert run(cfg, "issues", "note", "latest", "Hello").exit_code == 0
    removed = run(cfg, "issues", "note", "latest", "")
    assert removed.exit_code == 0 and "note removed" in removed.output
    assert '<p class="e"' not in render_issue(db, config, issue["id"]).html
    too_long = run(cfg, "issues", "note", "latest", "x" * 1001)
    assert too_long.exit_code == 1 and "1001 characters" in too_long.output


def test_golden_rich_issue(store) -> None:
    """The layout with everything on: note, byline, labelled summary, also covered, undated,
    a lead image (UPDATE_GOLDEN=1 to accept a change)."""
    config, db = store
    config.render.images = True
    issue = enrich(db, fixture_issue(config, db), image=True)
    rendered = render_issue(db, config, issue["id"])
    _check_golden("issue-rich.html", rendered.html)
    _check_golden("issue-rich.txt", rendered.text)


def test_issue_aria_label_carries_the_subject_as_text(workspace: Path, run_cli) -> None:
    added = run_cli(
        "articles",
        "add",
        "--title",
        "Cafe\u0301 owners \U0001f469\u200d\U0001f4bb win",
        "--url",
        "https://example.org/c",
        "--category",
        "World",
        "--published",
        "2026-01-22T10:00Z",
    )
    assert added.exit_code == 0
    assert run_cli("issues", "build", "daily", "--date", "2026-01-23").exit_code == 0
    out = workspace / "p.html"
    assert run_cli("preview", "daily/1", "-o", str(out)).exit_code == 0
    label = re.search(r'aria-label="([^"]*)"', out.read_text(encoding="utf-8")).group(1)
    assert "\\u{" not in label, label
