"""``digest articles summarize``, ``digest articles summary`` (the editor's word on one
summary) and the progress line shown while summaries are made."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

import click

from digest.cli.common import App, pass_app
from digest.cli.issue_edits import local_editor
from digest.compose.editing import article_view, edit_article
from digest.config import Config
from digest.ingest.articles import parse_when
from digest.summary import editor_summary_text, regenerate_summary_now, shown_summary, summarize_since


def summary_progress() -> Callable[[int, int], None] | None:
    """A ``Summaries 3/12`` line on stderr when it is a terminal; None (silence) when piped."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        click.echo(f"\rSummaries {done}/{total}", err=True, nl=done == total)

    return show


def echo_warnings(warnings: Iterable[str]) -> None:
    """Print each summary warning on stderr, one line each."""
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)


def _default_since(config: Config) -> str:
    # The longest edition window: every article a next issue could choose.
    windows = [e.window_delta for e in config.editions.values()]
    longest = max(windows, default=None)
    return f"{int(longest.total_seconds() // 3600)}h" if longest else "1d"


@click.command(name="summarize")
@click.option(
    "--since", help="Articles published from this date/time on (default: the longest edition window)."
)
@click.option(
    "--force", is_flag=True, help="Make new summaries even where one is stored for this model and prompt."
)
@pass_app
def articles_summarize(app: App, since: str | None, force: bool) -> None:
    """Make AI summaries ahead of time ([summary] engine = "llm").

    Issues make them anyway when they are composed, only for the articles they
    choose; this fills them in earlier (say, before the scheduled run). Stored
    summaries for the current model and prompt are reused unless --force.

    \b
    Example:
      digest articles summarize --since 1d
    """
    config = app.config
    if config.summary.engine != "llm":
        click.echo(f'summary.engine is "{config.summary.engine}": nothing to make (set engine = "llm").')
        return
    when = parse_when(since or _default_since(config), zone=config.publication.timezone)
    report = summarize_since(app.db, config, when, force=force, progress=summary_progress())
    echo_warnings(report.warnings)
    click.echo(
        f"Summaries: {report.made} made, {report.reused} already stored, "
        f"{report.failed} left with the feed summary."
    )


@click.command(name="summary")
@click.argument("article_id", metavar="ID")
@click.option(
    "--set", "text", metavar="TEXT", help="Pin this summary: shown in new issues, never replaced by a model."
)
@click.option("--regenerate", is_flag=True, help="Ask the model for a new summary now (engine llm).")
@click.option("--clear", is_flag=True, help="Remove the pinned summary: the engine's shows again.")
@pass_app
def articles_summary(app: App, article_id: str, text: str | None, regenerate: bool, clear: bool) -> None:
    """Pin, regenerate or clear one article's summary (the editor's word is final).

    A pinned summary is labelled as the publication's own and wins over any
    engine's; issues already built keep what they froze. Give exactly one of
    --set, --regenerate, --clear.

    \b
    Example:
      digest articles summary 42 --set "The council approved the £24m plan."
      digest articles summary 42 --regenerate
      digest articles summary 42 --clear
    """
    chosen = [
        name for name, on in (("set", text is not None), ("regenerate", regenerate), ("clear", clear)) if on
    ]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --set TEXT, --regenerate, --clear")
    action = chosen[0]
    if action == "regenerate":
        edit = regenerate_summary_now(app.db, app.config, article_id)
        echo_warnings(edit.warnings)
        key, changed = edit.article_id, edit.changed
    else:  # the desk's store and code path: `digest articles edit --summary` does the same
        summary = editor_summary_text(text or "") if action == "set" else ""
        view = article_view(app.db, article_id)  # NotFound names the id
        key = int(view["id"])
        changed = action == "set" or view["editor"]["summary"] is not None
        if changed:
            edit_article(app.db, app.config, key, {"summary": summary}, local_editor())
    if action == "clear" and not changed:
        click.echo(f"Article {key} had no pinned summary.")
    elif action == "regenerate" and not changed:
        click.echo(f"Article {key}: the model's new summary could not be used (see the warning).")
    else:
        done = {"set": "pinned", "regenerate": "regenerated", "clear": "cleared"}[action]
        click.echo(f"Article {key}: summary {done}.")
    shown = shown_summary(app.db, app.config, key)
    click.echo(f"New issues show: {shown.label + ': ' if shown.label else ''}{shown.text or '(no summary)'}")
