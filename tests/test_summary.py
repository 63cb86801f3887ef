"""AI summaries through ``llm``: llm-echo and a canned model registered through llm's plugin
hooks; stored per article, reused, remade when the prompt changes, and every failure falls
back to the feed summary with a warning while the issue is still built."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_switch import store_at
from summary_support import MODEL_ID, canned_model, summary_workspace
from test_render_support import PERIOD_END

from digest.cli import cli
from digest.compose.build import compose_issue
from digest.compose.issues import issue_snapshot
from digest.config import load_config
from digest.errors import ConfigError
from digest.ingest.articles import add_article
from digest.render.variants import render_issue
from digest.summary import summarize_since
from digest.summary.text import check_answer

WEEKLY_END = datetime(2026, 1, 26, 7, 0, tzinfo=UTC)  # Monday 08:00 Berlin: its 7 days hold the articles
FEED_SUMMARY = "Engineers finished the barrier ahead of schedule"
CHECKED = "AI-generated summary, checked against the feed's text"


@pytest.fixture(autouse=True)
def llm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """llm's keys, aliases and logs live in a temp folder, never the user's."""
    home = tmp_path / "llm-home"
    monkeypatch.setenv("LLM_USER_PATH", str(home))
    return home


def build(config_path: Path, edition: str = "daily", period_end: datetime = PERIOD_END):
    config = load_config(config_path)
    db = store_at(config.db_path)
    return config, db, compose_issue(db, config, edition, period_end=period_end)


def cards(issue: dict) -> dict[str, dict]:
    return {a["title"]: a for c in issue_snapshot(issue)["categories"] for a in c["articles"]}


def canned_toml(**settings: object) -> str:
    values: dict[str, object] = {"engine": "llm", "model": MODEL_ID, "timeout": 2, **settings}
    return "\n".join(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in values.items())


def test_llm_echo_answer_is_stored_labelled_and_escaped(tmp_path: Path) -> None:
    # llm-echo answers a JSON prompt's "raw" value as is: a real plugin, no network.
    path = summary_workspace(
        tmp_path / "ws", 'engine = "llm"\nmodel = "echo"\n' + """prompt = '{"raw": "In short: $title."}'"""
    )
    config, db, result = build(path)
    assert result.created and result.issue is not None
    shown = cards(result.issue)
    tidal = shown["Tidal barrier opens a year early"]
    assert tidal["summary"] == "In short: Tidal barrier opens a year early."
    assert tidal["summary_label"] == CHECKED
    # The echoed title has a tag in it: markup, so the feed summary stays, with a warning.
    qa = shown["Q&A: <why> ferries keep running late"]
    assert qa["summary"].startswith("Timetables were written") and qa["summary_label"] == ""
    assert len(result.warnings) == 1 and "Q&A: <why> ferries" in result.warnings[0]
    assert "markup" in result.warnings[0]
    rows = list(db.query("SELECT article_id, engine, model, length(prompt_hash) AS n FROM summaries"))
    assert len(rows) == 4 and {(r["engine"], r["model"], r["n"]) for r in rows} == {("llm", "echo", 64)}
    rendered = render_issue(db, config, result.issue["id"])
    assert CHECKED in rendered.html and f"{CHECKED}: " in rendered.text
    assert "In short: Tidal barrier opens a year early." in rendered.html
    assert rendered.text.count(f"{CHECKED}: ") == 4


def test_llm_echo_with_the_default_prompt_falls_back_and_the_issue_goes_out(tmp_path: Path) -> None:
    # With a plain prompt llm-echo answers a JSON dump of it: unusable, for every article.
    path = summary_workspace(tmp_path / "ws", 'engine = "llm"\nmodel = "echo"')
    _, db, result = build(path)
    assert result.created and len(result.warnings) == 5
    tidal = cards(result.issue)["Tidal barrier opens a year early"]
    assert tidal["summary"].startswith(FEED_SUMMARY) and tidal["summary_label"] == ""
    assert db["summaries"].count == 0


def test_each_failure_keeps_the_feed_summary_with_a_warning_naming_the_article(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml(timeout=0.5))
    with canned_model() as model:
        model.script = {
            "Tidal barrier": "The barrier opened a year early. Crews worked through a dry autumn.",
            "ferries keep": "FAIL",
            "tide tables": "HANG",
            "Seagrass": "<p>Seagrass <b>stores</b> carbon.</p>",
            "Lighthouse": "word " * 121,  # over twice max_words (60)
        }
        _, db, result = build(path)
    assert result.created and result.issue is not None
    shown = cards(result.issue)
    assert shown["Tidal barrier opens a year early"]["summary"] == (
        "The barrier opened a year early. Crews worked through a dry autumn."
    )
    assert shown["Tidal barrier opens a year early"]["summary_label"] == CHECKED
    for title in ("Q&A: <why> ferries keep running late", "Open-source tide tables reach version 2"):
        assert shown[title]["summary_label"] == "" and shown[title]["summary"]
    assert shown["Lighthouse festival returns"]["summary"] == ""  # its feed had none
    by_title = {w.split("'")[1]: w for w in result.warnings}
    assert len(result.warnings) == 4
    assert "RuntimeError: model server said 503" in by_title["Q&A: <why> ferries keep running late"]
    assert (
        "did not answer within summary.timeout (0.5 s)" in by_title["Open-source tide tables reach version 2"]
    )
    assert "markup" in by_title["Seagrass meadows store more carbon than thought"]
    assert "121 words, over twice" in by_title["Lighthouse festival returns"]
    assert db["summaries"].count == 1


def test_a_second_build_reuses_summaries_and_a_changed_prompt_makes_new_ones(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        build(path)
        assert len(model.calls) == 5
        # Another edition with the same articles: every summary is already stored.
        _, _, weekly = build(path, "weekly", WEEKLY_END)
        assert weekly.created and len(model.calls) == 5
        assert {a["summary_label"] for a in cards(weekly.issue).values()} == {CHECKED}
        # Building the daily issue again finds it and calls nothing.
        _, _, again = build(path)
        assert not again.created and len(model.calls) == 5
        # A changed prompt is a new key: new calls, new rows beside the old ones.
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("timeout = 2", 'timeout = 2\nprompt = "Two sentences on $title."'))
        _, db, big = build(path, "big")
        assert big.created and len(model.calls) == 10
        assert model.calls[-1].startswith("Two sentences on ")
        assert db["summaries"].count == 10


def test_a_changed_model_makes_new_ones_and_switching_back_reuses_the_old(tmp_path: Path) -> None:
    raw_prompt = """prompt = '{"raw": "Echoed: $title."}'"""
    path = summary_workspace(tmp_path / "ws", canned_toml() + "\n" + raw_prompt)
    canned_text = path.read_text(encoding="utf-8")
    since = PERIOD_END - timedelta(days=1)
    with canned_model() as model:
        config = load_config(path)
        db = store_at(config.db_path)
        assert summarize_since(db, config, since).made == 5 and len(model.calls) == 5
        # Same prompt, another model (llm-echo answers the prompt's "raw" text): new summaries.
        path.write_text(canned_text.replace(f'model = "{MODEL_ID}"', 'model = "echo"'), encoding="utf-8")
        report = summarize_since(db, load_config(path), since)
        assert (report.made, report.reused, report.failed) == (4, 0, 1)  # the <why> title is markup
        assert len(model.calls) == 5
        # Back to the first model: everything it made is still there.
        path.write_text(canned_text, encoding="utf-8")
        assert summarize_since(db, load_config(path), since).reused == 5 and len(model.calls) == 5
    counts = dict(db.execute("SELECT model, COUNT(*) FROM summaries GROUP BY model").fetchall())
    assert counts == {MODEL_ID: 5, "echo": 4}


def test_calls_run_concurrently_up_to_the_limit(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml(concurrency=2))
    with canned_model() as model:
        model.delay = 0.15
        _, _, result = build(path)
    assert result.created and len(model.calls) == 5
    assert model.most_in_flight == 2


def test_model_text_is_untrusted_and_escaped(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        # Every word the grounding check looks at is in the article: only the escaping is tested.
        model.default = "Engineers & crews finished < early,\x07 really."
        config, db, result = build(path)
    assert (
        cards(result.issue)["Tidal barrier opens a year early"]["summary"]
        == "Engineers & crews finished < early, really."
    )
    html = render_issue(db, config, result.issue["id"]).html
    assert "Engineers &amp; crews finished &lt; early, really." in html


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("## Summary\nThe council met.", "markup"),
        ("- The council met.\n- It voted.", "markup"),
        ("The **council** met.", "markup"),
        ('{"summary": "The council met."}', "markup"),
        ("See [the report](https://example.org).", "markup"),
        ("The council met. " * 20, "over twice"),
        ("x" * 200_000, "200000 characters, over 480"),
    ],
)
def test_unusable_answers_are_refused(answer: str, why: str) -> None:
    text, reason = check_answer(answer, 20)
    assert text is None and why in reason


def test_a_huge_answer_is_refused_before_any_pattern_runs() -> None:
    """The link and address patterns try every start position of one endless word: run on
    200,000 characters they took 145 s of CPU, so a steered model could stall every build."""
    started = time.perf_counter()
    text, reason = check_answer("x" * 5_000_000, 20)
    assert text is None and "5000000 characters, over 480" in reason
    assert time.perf_counter() - started < 2


def test_usable_answer_is_one_plain_line() -> None:
    assert check_answer("  The council met.\n\nIt voted 5 to 4.  ", 20) == (
        "The council met. It voted 5 to 4.",
        "",
    )


def test_answers_lose_bidi_overrides_and_links_are_refused() -> None:
    assert check_answer("The council met.\u202e It voted \u2066five\u2069 to four.", 20) == (
        "The council met. It voted five to four.",
        "",
    )
    # A link is never the article's to give: an answer with one was steered, and is refused.
    for answer in (
        "The council met.\nRead more: https://evil.example/phish",
        "Source: http://evil.example\nThe council met. See www.evil.example",
        "The council met; details at evil.example/offer",
    ):
        assert check_answer(answer, 20) == (None, "the model's answer has a link or an address in it")


def test_an_endless_or_hostile_answer_never_reaches_the_issue(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        model.script = {
            "Tidal barrier": "x" * 200_000,  # steered by the article: one endless "word"
            "ferries keep": "Ferries ran late again.\u202e\nRead more: https://evil.example/phish",
        }
        config, db, result = build(path)
    shown = cards(result.issue)
    tidal = shown["Tidal barrier opens a year early"]
    assert tidal["summary"].startswith(FEED_SUMMARY) and tidal["summary_label"] == ""
    tidal_warning, ferries_warning = result.warnings
    assert "Tidal barrier" in tidal_warning and "200000 characters, over 1440" in tidal_warning
    assert "ferries keep" in ferries_warning and "a link or an address" in ferries_warning
    ferries = shown["Q&A: <why> ferries keep running late"]
    assert ferries["summary"].startswith("Timetables were written") and ferries["summary_label"] == ""
    rendered = render_issue(db, config, result.issue["id"])
    assert rendered.trimmed == 0 and "Here are 5 stories." in rendered.text
    for part in (rendered.html, rendered.text):
        assert "evil.example" not in part and "\u202e" not in part and "xxxxxxxxxx" not in part


def test_without_llm_installed_engine_llm_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    path = summary_workspace(tmp_path / "ws", 'engine = "llm"\nmodel = "echo"')
    monkeypatch.setitem(sys.modules, "llm", None)  # what `import llm` meets when it is not installed
    result = CliRunner().invoke(
        cli, ["--config", str(path), "issues", "build", "daily", "--date", "2026-01-23"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'Error: summary.engine = "llm" needs the llm library, which is not installed; '
        "run: pip install 'digest-newsletter[llm]'"
    ]
    db = store_at(load_config(path).db_path)
    assert db["issues"].count == 0


def test_unknown_model_is_a_one_line_error(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", 'engine = "llm"\nmodel = "no-such-model"')
    result = CliRunner().invoke(
        cli, ["--config", str(path), "issues", "build", "daily", "--date", "2026-01-23"]
    )
    assert result.exit_code == 1
    assert "summary.model = 'no-such-model' is not a model llm knows" in result.output


def test_articles_summarize_fills_in_ahead_and_force_remakes(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(path), "articles", "summarize", *args])

    with canned_model() as model:
        first = run("--since", "2026-01-20")
        assert first.exit_code == 0, first.output
        assert "Summaries: 5 made, 0 already stored, 0 left with the feed summary." in first.output
        again = run("--since", "2026-01-20")
        assert "Summaries: 0 made, 5 already stored" in again.output and len(model.calls) == 5
        forced = run("--since", "2026-01-20", "--force")
        assert "Summaries: 5 made" in forced.output and len(model.calls) == 10
        # An issue built afterwards uses them without another call.
        _, _, result = build(path)
        assert len(model.calls) == 10
        assert {a["summary_label"] for a in cards(result.issue).values()} == {CHECKED}


def test_articles_summarize_with_the_feed_engine_says_there_is_nothing_to_do(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", 'engine = "feed"')
    result = CliRunner().invoke(cli, ["--config", str(path), "articles", "summarize"])
    assert result.exit_code == 0 and "nothing to make" in result.output


def test_lead_engine_takes_the_leading_sentences_of_the_stored_article_text(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", 'engine = "lead"\nmax_words = 10')
    config = load_config(path)
    db = store_at(config.db_path)
    body = "First sentence of the piece has eight words. Second one is here. " + "More text. " * 100
    added = add_article(
        db,
        config,
        title="Long piece",
        url="https://example.org/long",
        summary=body,
        category="World",
        published="2026-01-23T05:00:00Z",
    )
    stored = db["articles"].get(added.article["id"])
    assert len(stored["body_text"].split()) > 200  # ingest keeps the whole text for summaries
    assert len(stored["summary_text"].split()) <= 60
    _, _, result = build(path)
    shown = cards(result.issue)
    assert shown["Long piece"]["summary"] == "First sentence of the piece has eight words."
    assert shown["Long piece"]["summary_label"] == ""


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('engine = "gpt"', "'summary.engine' = 'gpt' must be"),
        ('engine = "llm"', "'summary.model' is empty"),
        ("concurrency = 0", "'summary.concurrency' must be at least 1"),
        ("timeout = 0", "'summary.timeout' must be more than 0"),
    ],
)
def test_bad_summary_settings_are_named(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(f"[summary]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_digest_run_builds_and_sends_with_a_failing_model_and_names_the_article(tmp_path: Path) -> None:
    path = summary_workspace(tmp_path / "ws", canned_toml())
    with canned_model() as model:
        model.script = {"ferries keep": "FAIL"}
        result = CliRunner().invoke(
            cli, ["--config", str(path), "run", "--at", "2026-01-23T06:05Z", "--edition", "daily"]
        )
    assert result.exit_code == 0, result.output
    assert "built daily/1" in result.output
    assert "daily: article 2 ('Q&A: <why> ferries keep running late'): kept the feed summary" in result.output


def test_progress_shows_on_a_terminal_and_not_when_piped(tmp_path: Path, llm_home: Path) -> None:
    path = summary_workspace(
        tmp_path / "ws", 'engine = "llm"\nmodel = "echo"\n' + """prompt = '{"raw": "In short: $title."}'"""
    )
    digest = str(Path(sys.executable).with_name("digest"))
    args = [digest, "--config", str(path), "issues", "build", "daily", "--date", "2026-01-23"]
    env = {**os.environ, "LLM_USER_PATH": str(llm_home)}
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            args, stdout=subprocess.PIPE, stderr=secondary, env=env, timeout=60, check=False
        )
        os.close(secondary)
        seen = b""
        while select.select([primary], [], [], 0.5)[0]:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0, proc.stdout
    assert b"Summaries 5/5" in seen
    assert b"Built issue daily/1" in proc.stdout and b"Summaries" not in proc.stdout


def test_digest_run_sends_the_issue_when_the_model_cannot_be_used_at_all(tmp_path: Path) -> None:
    """A scheduled run with an unknown model (an expired key acts the same) still sends the
    issue with feed summaries, and exits 1 naming the problem; `issues build` stays strict."""
    path = summary_workspace(tmp_path / "ws", 'engine = "llm"\nmodel = "no-such-model"')
    result = CliRunner().invoke(
        cli, ["--config", str(path), "run", "--at", "2026-01-23T06:05Z", "--edition", "daily"]
    )
    assert result.exit_code == 1, result.output
    assert "built daily/1" in result.output, result.output
    assert "summaries: summary.model = 'no-such-model' is not a model llm knows" in result.output
    db = store_at(load_config(path).db_path)
    assert db["summaries"].count == 0 and db["issues"].count == 1
    snapshot = json.loads(db.execute("SELECT snapshot FROM issues").fetchone()[0])
    cards = [a for c in snapshot["categories"] for a in c["articles"]]
    assert cards and not any(card["summary_label"] for card in cards)  # the feed's own summaries


def _dead_model_workspace(tmp_path: Path, articles: int = 20) -> Path:
    """A workspace whose ``articles`` articles (the fixture's five and more) all need a summary."""
    from test_render_support import add_article as store_article

    path = summary_workspace(tmp_path / "ws", canned_toml(timeout=0.3, concurrency=2))
    db = store_at(load_config(path).db_path)
    for i in range(articles - 5):
        store_article(
            db,
            title=f"Extra story {i}",
            category="World",
            published_at=PERIOD_END - timedelta(minutes=30 + i),
            summary=f"Something happened, number {i}.",
        )
    db.conn.close()
    return path


def test_a_model_that_never_answers_is_given_up_on_after_three_timeouts(tmp_path: Path) -> None:
    path = _dead_model_workspace(tmp_path)
    config = load_config(path)
    db = store_at(config.db_path)
    with canned_model() as model:
        model.default = "HANG"
        started = time.monotonic()
        report = summarize_since(db, config, PERIOD_END - timedelta(days=1))
        took = time.monotonic() - started
    # Two calls time out, the next two find no free slot (4 timeouts >= 3), then it gives
    # up: 0.6 s, not ten rounds (20 / 2 x 0.3 s = 3 s).
    assert took < 1.5, took
    assert len(model.calls) <= 2
    assert (report.made, report.failed) == (0, 20)
    timed_out = [w for w in report.warnings if "did not answer within summary.timeout" in w]
    no_slot = [w for w in report.warnings if "earlier calls to the model had not returned" in w]
    assert len(timed_out) == len(model.calls) and len(timed_out) + len(no_slot) in (3, 4)
    (rest,) = [w for w in report.warnings if w not in timed_out + no_slot]
    given_up = 20 - len(timed_out) - len(no_slot)
    assert rest.startswith(f"{given_up} more articles kept the feed summary without asking the model")


def test_calls_that_never_return_leave_no_more_threads_than_the_concurrency(tmp_path: Path) -> None:
    path = _dead_model_workspace(tmp_path, 8)
    config = load_config(path)
    db = store_at(config.db_path)
    with canned_model() as model:
        model.default = "HANG"
        before = threading.active_count()
        for _ in range(3):
            summarize_since(db, config, PERIOD_END - timedelta(days=1))
        grown = threading.active_count() - before
        assert grown <= 2, grown  # summary.concurrency: hung calls hold their slots
