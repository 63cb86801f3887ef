"""`digest articles summary ID --set/--regenerate/--clear`: the editor's summary is pinned
(labelled as the publication's own, never replaced by a model), the model can be asked again,
and clearing returns to the engine's summary. One store with the desk: articles.editor_summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_switch import store_at
from summary_support import canned_model, summary_workspace
from test_summary import FEED_SUMMARY, build, canned_toml, cards

from digest.cli import cli
from digest.config import load_config
from digest.store.migrations import m025_one_editor_summary

TIDAL = "Tidal barrier opens a year early"
CHECKED = "AI-generated summary, checked against the feed's text"
PINNED = "The barrier opened a year early; the council will test it next week."


@pytest.fixture(autouse=True)
def llm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """llm's keys, aliases and logs live in a temp folder, never the user's."""
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm-home"))
    return tmp_path / "llm-home"


def run(path: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(path), *args])


def test_set_pins_the_editors_summary_over_the_models_and_clear_gives_it_back(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        model.script = {TIDAL: "Engineers finished the barrier ahead of schedule."}
        pinned = run(path, "articles", "summary", "1", "--set", f"  {PINNED}\n")
        assert pinned.exit_code == 0, pinned.output
        assert pinned.output.splitlines() == [
            "Article 1: summary pinned.",
            f"New issues show: Summary by The Harbour Gazette: {PINNED}",
        ]
        _, _, daily = build(path)
        card = cards(daily.issue)[TIDAL]
        assert (card["summary"], card["summary_label"], card["summary_checked"]) == (
            PINNED,
            "Summary by The Harbour Gazette",
            False,
        )
        # The model was still asked (engine llm), but a pinned summary is never replaced by it.
        regenerated = run(path, "articles", "summary", "1", "--regenerate")
        assert regenerated.exit_code == 0, regenerated.output
        assert f"New issues show: Summary by The Harbour Gazette: {PINNED}" in regenerated.output
        shown = json.loads(run(path, "articles", "show", "1", "--json").output)
        editor = shown["generated_summaries"][0]
        assert (editor["editor"], editor["text"], editor["used"]) == (True, PINNED, True)
        cleared = run(path, "articles", "summary", "1", "--clear")
        assert cleared.exit_code == 0, cleared.output
        assert "Article 1: summary cleared." in cleared.output
        assert (
            f"New issues show: {CHECKED}: Engineers finished the barrier ahead of schedule." in cleared.output
        )
        _, _, big = build(path, "big")
    assert cards(big.issue)[TIDAL]["summary_label"] == CHECKED
    again = run(path, "articles", "summary", "1", "--clear")
    assert again.exit_code == 0 and "Article 1 had no pinned summary." in again.output


def test_regenerate_asks_the_model_again_now(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        model.script = {TIDAL: "Engineers finished the barrier ahead of schedule."}
        build(path)
        asked = len(model.calls)
        model.script = {TIDAL: "Crews worked through a dry autumn."}
        result = run(path, "articles", "summary", "1", "--regenerate")
        assert result.exit_code == 0, result.output
        assert len(model.calls) == asked + 1
    assert result.output.splitlines() == [
        "Article 1: summary regenerated.",
        f"New issues show: {CHECKED}: Crews worked through a dry autumn.",
    ]


def test_a_regenerated_summary_that_fails_its_check_is_not_used(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        model.script = {TIDAL: "The barrier cost £42m."}
        result = run(path, "articles", "summary", "1", "--regenerate")
    assert result.exit_code == 0, result.output
    assert "does not support: £42m" in result.output
    assert "the model's new summary could not be used" in result.output
    assert f"New issues show: {FEED_SUMMARY}" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "give exactly one of --set TEXT, --regenerate, --clear"),
        (["--set", "x", "--clear"], 2, "give exactly one of --set TEXT, --regenerate, --clear"),
        (["--set", "  "], 1, "Error: --set: the summary is empty; give the text to show"),
        (["--set", "word " * 201], 1, "Error: --set: the summary has 201 words; keep it to 200"),
    ],
)
def test_bad_requests_are_one_clear_line(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    result = run(path, "articles", "summary", "1", *args)
    assert result.exit_code == code and message in result.output
    assert "Traceback" not in result.output


def test_an_unknown_article_and_regenerate_without_a_model_are_errors(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    missing = run(path, "articles", "summary", "999", "--set", "Hello.")
    assert missing.exit_code == 1
    assert missing.output.strip() == "Error: article 999 not found; see `digest articles list`"
    feed = summary_workspace(tmp_path / "feed", 'engine = "feed"')
    result = run(feed, "articles", "summary", "1", "--regenerate")
    assert result.exit_code == 1 and 'summary.engine is "feed": there is no model to ask' in result.output
    # The feed engine shows a pinned summary too.
    assert run(feed, "articles", "summary", "1", "--set", PINNED).exit_code == 0
    _, _, issue = build(feed)
    assert cards(issue.issue)[TIDAL]["summary"] == PINNED


def test_the_cli_and_the_desk_keep_the_editors_summary_in_one_place(tmp_path: Path) -> None:
    feed = summary_workspace(tmp_path / "feed", 'engine = "feed"')
    # `articles summary --set` is the desk's edit: `articles show` names it as the editor's.
    assert run(feed, "articles", "summary", "1", "--set", PINNED).exit_code == 0
    shown = json.loads(run(feed, "articles", "show", "1", "--json").output)
    assert shown["editor"]["summary"] == PINNED and shown["summary_text"] == PINNED
    # The desk's edit (`articles edit --summary`) replaces it, still labelled as the publication's.
    assert run(feed, "articles", "edit", "1", "--summary", "The desk's words.").exit_code == 0
    _, _, issue = build(feed)
    card = cards(issue.issue)[TIDAL]
    assert (card["summary"], card["summary_label"]) == ("The desk's words.", "Summary by The Harbour Gazette")
    # and `--clear` removes the one the desk set.
    cleared = run(feed, "articles", "summary", "1", "--clear")
    assert "Article 1: summary cleared." in cleared.output
    assert json.loads(run(feed, "articles", "show", "1", "--json").output)["editor"]["summary"] is None


def test_an_old_pinned_summary_moves_to_the_articles_editor_summary(tmp_path: Path) -> None:
    config = load_config(summary_workspace(tmp_path / "ws", 'engine = "feed"'))
    db = store_at(config.db_path)
    for article_id in (1, 2):
        db.execute(
            "INSERT INTO summaries (article_id, engine, model, prompt_hash, text, created_at)"
            " VALUES (?, 'editor', '', '', ?, '2026-01-01T00:00:00Z')",
            [article_id, f"Pinned {article_id}."],
        )
    db.execute("UPDATE articles SET editor_summary = 'The desk wins.' WHERE id = 2")
    m025_one_editor_summary(db)
    rows = db.execute("SELECT id, editor_summary FROM articles WHERE id IN (1, 2) ORDER BY id").fetchall()
    assert rows == [(1, "Pinned 1."), (2, "The desk wins.")]
    assert db.execute("SELECT count(*) FROM summaries WHERE engine = 'editor'").fetchone()[0] == 0
