"""One card per story: the merge rule measured on the labelled pairs, and what an issue shows."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import new_workspace
from store_switch import store_at
from test_render_support import CONFIG_TOML, PERIOD_END, add_article

from digest.compose.build import compose_issue
from digest.compose.issues import issue_categories, issue_snapshot
from digest.compose.stories import group_stories
from digest.compose.stories_eval import load_pairs, score_pairs
from digest.config import Compose, load_config
from digest.render.variants import render_issue

PAIRS = Path(__file__).resolve().parent / "fixtures" / "story_pairs.jsonl"


def test_the_merge_rule_keeps_precision_and_recall_on_the_held_out_pairs() -> None:
    tune, held = load_pairs(PAIRS, "tune"), load_pairs(PAIRS, "heldout")
    assert len(tune) + len(held) >= 300 and min(len(tune), len(held)) >= 150
    for half in (tune, held):
        same = sum(1 for p in half if p["same"])
        assert same >= 50 and len(half) - same >= 100
    score = score_pairs(held, Compose().merge_threshold)
    assert score.precision >= 0.95, score
    assert score.recall >= 0.8, score


def test_a_short_business_item_is_not_also_covered_under_an_unrelated_world_story() -> None:
    articles = [
        {
            "id": 1,
            "url": "https://world.example/1",
            "category": "World",
            "title": "Iran seizes tanker in Gulf as oil prices rise",
            "summary_text": "Guards boarded the vessel near Hormuz; Brent crude rose as tensions grew.",
        },
        {
            "id": 2,
            "url": "https://markets.example/2",
            "category": "Business",
            "title": "Oil prices rise",
            "summary_text": "Brent crude rose on Monday.",
        },
        {  # the same story filed under another category still shares the card
            "id": 3,
            "url": "https://gulf.example/3",
            "category": "Business",
            "title": "Iran seizes oil tanker in the Gulf near Hormuz, sending prices up",
            "summary_text": "Guards boarded the vessel near the Strait of Hormuz; Brent crude rose.",
        },
    ]
    stories = group_stories(articles, threshold=Compose().merge_threshold)
    assert [[s.lead["id"], *(o["id"] for o in s.others)] for s in stories] == [[1, 3], [2]]


def test_template_headlines_that_differ_in_a_number_are_two_stories() -> None:
    articles = [
        {"id": n, "url": f"https://a.example/{n}", "title": f"Wimbledon 2025 order of play: day {n}"}
        for n in (3, 4)
    ]
    stories = group_stories(articles, threshold=Compose().merge_threshold)
    assert len(stories) == 2


def test_same_words_with_different_figures_are_two_stories() -> None:
    articles = [
        {
            "id": 1,
            "url": "https://a.example/1",
            "title": "Inflation rises to 3.4% in March",
            "summary_text": "",
        },
        {
            "id": 2,
            "url": "https://b.example/2",
            "title": "Inflation rises to 2.1% in March",
            "summary_text": "",
        },
        {"id": 3, "url": "https://c.example/3", "title": "Inflation rises to 3.4% in March, ONS says"},
    ]
    stories = group_stories(articles, threshold=Compose().merge_threshold)
    assert [[s.lead["id"], *(o["id"] for o in s.others)] for s in stories] == [[1, 3], [2]]


STORY = [
    # (title, source, minutes before the period end, url)
    (
        "Harbour council approves tidal barrier budget of 240m",
        "Port Elwyn Post",
        60,
        "https://post.example/barrier",
    ),
    (
        "Tidal barrier budget of 240m approved by harbour council",
        "Estuary Wire",
        300,
        "https://wire.example/b",
    ),
    (
        "Council backs 240m barrier",
        "",
        200,
        "https://wire.example/b?utm_source=rss",
    ),  # same page as the wire's
    (
        "Seagrass meadows store more carbon than thought",
        "Coastal Review",
        100,
        "https://review.example/seagrass",
    ),
]
SUMMARY = "The council signed off 240 million for the tidal barrier, which will protect three districts."


def story_workspace(folder: Path, compose_toml: str = "") -> Path:
    path = new_workspace(
        folder, config=CONFIG_TOML + ("\n[compose]\n" + compose_toml if compose_toml else ""), db=False
    ).config_file
    db = store_at(load_config(path).db_path)
    for title, source, minutes, url in STORY:
        add_article(
            db,
            title=title,
            category="Science" if "Seagrass" in title else "World",
            published_at=PERIOD_END - timedelta(minutes=minutes),
            url=url,
            source=source,
            summary="Core samples suggest faster carbon storage." if "Seagrass" in title else SUMMARY,
        )
    return path


def built(path: Path):
    config = load_config(path)
    db = store_at(config.db_path)
    result = compose_issue(db, config, "daily", period_end=PERIOD_END)
    assert result.created and result.issue is not None
    return config, db, result


def cards(issue: dict) -> list[dict]:
    return [a for c in issue_snapshot(issue)["categories"] for a in c["articles"]]


def test_one_story_from_three_outlets_is_one_card_led_by_the_earliest(tmp_path: Path) -> None:
    config, db, result = built(story_workspace(tmp_path / "ws"))
    shown = cards(result.issue)
    assert [a["title"] for a in shown] == [
        "Tidal barrier budget of 240m approved by harbour council",  # the earliest of the three
        "Seagrass meadows store more carbon than thought",
    ]
    assert shown[0]["also_covered"] == [
        {"source": "wire.example", "url": "https://wire.example/b?utm_source=rss"},  # no source: its site
        {"source": "Port Elwyn Post", "url": "https://post.example/barrier"},
    ]
    assert shown[1]["also_covered"] == []
    assert "Built issue daily/1 with 2 articles (2 more merged" in result.message
    # All four are carried by the issue (so no later issue shows the merged ones again), the
    # merged ones under their card's category: no category without a card.
    rows = db.execute(
        "SELECT COUNT(*) FROM issue_articles WHERE issue_id = ?", [result.issue["id"]]
    ).fetchone()
    assert rows[0] == 4
    assert issue_categories(db, result.issue["id"]) == ["World", "Science"]
    rendered = render_issue(db, config, result.issue["id"])
    covered = r'Also covered by: <a href="https://wire\.example/b\?utm_source=rss"[^>]*>wire\.example</a>, <a'
    assert re.search(covered, rendered.html)
    text = " ".join(rendered.text.split())
    assert "Also covered by: wire.example <https://wire.example/b?utm_source=rss>, Port Elwyn Post" in text
    assert "Port Elwyn Post <https://post.example/barrier>" in text


def test_a_preferred_source_leads_the_card(tmp_path: Path) -> None:
    path = story_workspace(tmp_path / "ws", 'preferred_sources = ["port elwyn post"]')
    _, _, result = built(path)
    lead = cards(result.issue)[0]
    assert lead["source"] == "Port Elwyn Post"
    assert [o["source"] for o in lead["also_covered"]] == ["Estuary Wire", "wire.example"]


def test_merging_can_be_switched_off(tmp_path: Path) -> None:
    _, _, result = built(story_workspace(tmp_path / "ws", "merge_stories = false"))
    assert len(cards(result.issue)) == 4
    assert all(a["also_covered"] == [] for a in cards(result.issue))


@pytest.mark.parametrize("threshold", ["0", "1.5"])
def test_a_threshold_out_of_range_is_named(tmp_path: Path, threshold: str) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(f"[compose]\nmerge_threshold = {threshold}\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"compose\.merge_threshold"):
        load_config(path)


def test_an_also_covered_source_cannot_smuggle_in_a_recipient_placeholder(tmp_path: Path) -> None:
    from digest.render.personalise import PLACEHOLDERS

    path = story_workspace(tmp_path / "ws")
    db = store_at(load_config(path).db_path)
    db.execute("UPDATE articles SET source = ? WHERE source = 'Port Elwyn Post'", [PLACEHOLDERS["email"]])
    config, db, result = built(path)
    rendered = render_issue(db, config, result.issue["id"])
    covered = rendered.html[rendered.html.index("Also covered by") :]
    covered = covered[: covered.index("</p>")]
    assert PLACEHOLDERS["email"] not in covered and "DIGEST" in covered
    line = next(x for x in rendered.text.splitlines() if x.startswith("Also covered by"))
    assert PLACEHOLDERS["email"] not in line
