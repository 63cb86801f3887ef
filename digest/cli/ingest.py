"""``digest ingest``: read feeds and article files into the database."""

from __future__ import annotations

import logging

import click

from digest.cli.common import App, is_terminal, pass_app
from digest.ingest.articles import recategorize_articles
from digest.ingest.source_read import SourceResult
from digest.ingest.sources import ingest_sources


def format_result(result: SourceResult) -> str:
    """The one line printed for a source."""
    if result.error:
        return f"Error: {result.error}"
    if result.not_modified:
        return f"{result.source}: not modified"
    return f"{result.source}: {result.new} new, {result.updated} updated, {result.unchanged} unchanged"


@click.command(name="ingest")
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--skip-invalid", is_flag=True, help="Store the valid rows of an article file; list the rest.")
@click.option(
    "--recategorize",
    is_flag=True,
    help="Fetch nothing: apply the current [ingest.category_aliases] to the stored articles.",
)
@pass_app
def ingest(app: App, sources: tuple[str, ...], skip_invalid: bool, recategorize: bool) -> None:
    """Fetch sources and store their articles.

    With no SOURCE, every stored feed. A SOURCE is a feed URL or file, or an article
    file: a JSON array, JSON Lines or CSV with title and url, and optionally summary,
    category, source, author, published (ISO 8601), body and guid. The format is read
    from the content, not the file name. Sources are fetched [ingest] concurrency at a
    time (default 8), each within [ingest] timeout; one line per source as it finishes.
    An article file with a bad row stores nothing unless --skip-invalid. Exit status 1
    when any source failed.

    --recategorize maps each stored article's category as its source gave it through
    today's [ingest.category_aliases] (after you changed them), in one transaction,
    and prints how many changed; a feed's own --category stays.

    \b
    Example:
      digest ingest
      digest ingest https://example.org/feed.xml articles.jsonl --skip-invalid
      digest ingest --recategorize
    """
    if recategorize:
        if sources:
            raise click.UsageError("--recategorize fetches nothing; give it no SOURCE")
        changed = recategorize_articles(app.db, app.config)
        click.echo(f"Recategorized {changed} article{'' if changed == 1 else 's'}")
        return
    if app.debug:
        # Show the traceback behind an "unexpected" per-source error.
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("digest").setLevel(logging.DEBUG)
    total = len(sources) if sources else None
    done = 0
    terminal = is_terminal()

    def show(result: SourceResult) -> None:
        # Each source's line as soon as it is read; on a terminal with a [done/total] count.
        nonlocal done
        done += 1
        prefix = f"[{done}/{total}] " if terminal and total else (f"[{done}] " if terminal else "")
        click.echo(prefix + format_result(result), err=bool(result.error))
        for warning in result.warnings:
            click.echo(f"  {warning}", err=True)

    if terminal and total is None:
        click.echo("Fetching every stored feed…", err=True)
    results = ingest_sources(
        app.db, app.config, list(sources) if sources else None, skip_invalid=skip_invalid, on_result=show
    )
    if not results:
        click.echo("No feeds to ingest. Add one: digest feeds add URL --category NAME")
        return
    if any(result.error for result in results):
        raise click.exceptions.Exit(1)
