"""`digest issues show` and `digest articles show` tell a generated summary from a feed's:
the label, the text, and (for a card) the other outlets under "Also covered by"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_stories import built, story_workspace

from digest.cli import cli

CHECKED = "AI-generated summary, checked against the feed's text"
ECHO = 'engine = "llm"\nmodel = "echo"\n' + """prompt = '{"raw": "In short: $title."}'"""


@pytest.fixture(autouse=True)
def llm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """llm's keys, aliases and logs live in a temp folder, never the user's."""
    home = tmp_path / "llm-home"
    monkeypatch.setenv("LLM_USER_PATH", str(home))
    return home


def run(path: Path, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def echo_workspace(folder: Path) -> Path:
    path = story_workspace(folder)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n[summary]\n" + ECHO + "\n")
    return path


def test_issues_show_prints_the_label_and_the_other_outlets(tmp_path: Path) -> None:
    path = echo_workspace(tmp_path / "ws")
    built(path)
    text = run(path, "issues", "show", "latest")
    lead = "Tidal barrier budget of 240m approved by harbour council"
    assert f"    {CHECKED}: In short: {lead}." in text
    assert (
        "    Also covered by: wire.example <https://wire.example/b?utm_source=rss>,"
        " Port Elwyn Post <https://post.example/barrier>"
    ) in text
    # The card without other outlets says nothing about them.
    assert text.count("Also covered by") == 1
    data = json.loads(run(path, "issues", "show", "latest", "--json"))
    [card] = [a for c in data["categories"] for a in c["articles"] if a["title"] == lead]
    assert card["summary_label"] == CHECKED and card["summary_checked"] is True
    assert [o["source"] for o in card["also_covered"]] == ["wire.example", "Port Elwyn Post"]


def test_issues_show_prints_a_feed_summary_without_a_label(tmp_path: Path) -> None:
    path = story_workspace(tmp_path / "ws")  # engine "feed"
    built(path)
    text = run(path, "issues", "show", "latest")
    assert "AI-generated" not in text
    assert "    The council signed off 240 million for the tidal barrier" in text
    assert "    Also covered by: wire.example <https://wire.example/b?utm_source=rss>" in text


def test_articles_show_prints_the_stored_generated_summary(tmp_path: Path) -> None:
    path = echo_workspace(tmp_path / "ws")
    _, db, _ = built(path)
    lead_id = db.execute(
        "SELECT id FROM articles WHERE title = 'Tidal barrier budget of 240m approved by harbour council'"
    ).fetchone()[0]
    text = run(path, "articles", "show", str(lead_id))
    assert f"{CHECKED} (model echo):\nIn short: Tidal barrier budget of 240m" in text
    assert "From the feed:\nThe council signed off 240 million" in text
    data = json.loads(run(path, "articles", "show", str(lead_id), "--json"))
    [stored] = data["generated_summaries"]
    assert stored["model"] == "echo" and stored["current"] is True
    assert stored["text"] == "In short: Tidal barrier budget of 240m approved by harbour council."
    assert stored["label"] == CHECKED and stored["grounding"] == "checked" and stored["used"] is True

    # Another prompt: the stored summary no longer applies, and articles show says so.
    path.write_text(path.read_text().replace("In short: $title.", "Briefly: $title."), encoding="utf-8")
    text = run(path, "articles", "show", str(lead_id))
    assert f"{CHECKED} (model echo; made for other settings, not shown in new issues):" in text
    assert (
        json.loads(run(path, "articles", "show", str(lead_id), "--json"))["generated_summaries"][0]["current"]
        is False
    )


def test_articles_show_without_generated_summaries_is_unchanged(tmp_path: Path) -> None:
    path = story_workspace(tmp_path / "ws")
    built(path)
    text = run(path, "articles", "show", "1")
    assert "AI-generated" not in text and "From the feed" not in text
    assert json.loads(run(path, "articles", "show", "1", "--json"))["generated_summaries"] == []
