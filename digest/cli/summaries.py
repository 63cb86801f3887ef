"""``digest articles summarize`` and the progress line shown while summaries are made."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

import click

from digest.cli.common import App, pass_app
from digest.config import Config
from digest.ingest.articles import parse_when
from digest.summary import summarize_since


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
