"""An editor and the model's summaries: an editor's summary wins, "Regenerate summary" asks the
model again (and gives the model's answer the card back), a rebuild makes the new cards'
summaries first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from store_switch import store_at
from summary_support import MODEL_ID, canned_model, summary_workspace
from test_render_support import PERIOD_END

from digest.compose import editing
from digest.compose.build import compose_issue
from digest.compose.issues import get_issue, issue_snapshot
from digest.config import load_config
from digest.ingest.articles import add_article


@pytest.fixture(autouse=True)
def llm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """llm's keys, aliases and logs live in a temp folder, never the user's."""
    home = tmp_path / "llm-home"
    monkeypatch.setenv("LLM_USER_PATH", str(home))
    return home


def _cards(db, ref: str = "daily/1") -> dict[int, dict]:
    return {a["id"]: a for c in issue_snapshot(get_issue(db, ref))["categories"] for a in c["articles"]}


def test_editor_summary_wins_and_regenerate_asks_the_model_again(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", f'engine = "llm"\nmodel = "{MODEL_ID}"\ntimeout = 2')
    config = load_config(path)
    db = store_at(config.db_path)
    with canned_model() as model:
        compose_issue(db, config, "daily", period_end=PERIOD_END)
        first = next(iter(_cards(db)))
        calls = len(model.calls)
        editing.edit_article(db, config, first, {"summary": "The editor's words."}, "ann@example.org")
        card = _cards(db)[first]
        assert (
            card["summary"] == "The editor's words."
            and card["summary_label"] == "Summary by The Harbour Gazette"
        )
        model.default = "A fresh model summary. It is new."
        result = editing.regenerate_summary(db, config, first, "ann@example.org")
        assert len(model.calls) == calls + 1 and result["issues"] == ["daily/1"]
        card = _cards(db)[first]
        assert card["summary"] == "A fresh model summary. It is new." and card["summary_label"]
        # a rebuild after an ingest makes the new story's summary before it shows it
        add_article(
            db,
            config,
            title="A late story",
            url="https://example.org/late",
            category="World",
            published=PERIOD_END - timedelta(minutes=5),
        )
        rebuilt = editing.rebuild_issue(db, config, "daily/1", "ann@example.org")
        assert "+1 story" in rebuilt.message
        late = next(a for a in _cards(db).values() if a["title"] == "A late story")
        assert late["summary"] == "A fresh model summary. It is new." and late["summary_label"]


def test_regenerate_needs_a_model(make_workspace) -> None:
    ws = make_workspace(
        config='[editions.daily]\nschedule = "0 7 * * *"\n',
        articles=[{"title": "T", "url": "https://example.org/t", "published": "2026-01-22T10:00Z"}],
    )
    with pytest.raises(editing.EditRefused, match='engine = "llm"'):
        editing.regenerate_summary(ws.db(), ws.config, 1, "ann@example.org")
