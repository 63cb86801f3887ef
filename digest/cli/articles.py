"""``digest articles``: list, show and add articles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.cli.issue_edits import local_editor
from digest.compose.editing import article_view, edit_article, hide_article, unhide_article
from digest.ingest.article_edits import EDITABLE
from digest.ingest.articles import add_article, list_articles, published_local
from digest.when import parse_when

if TYPE_CHECKING:
    from digest.summary.stored import StoredSummary


@click.group(name="articles")
def articles() -> None:
    """Browse and add the stored articles.

    \b
    Example:
      digest articles list --since 2d --category World
    """


@articles.command(name="list")
@click.option("--since", help="From this date/time on (YYYY-MM-DD, ISO time, or a span like 2d).")
@click.option("--until", help="Before this date/time (same forms as --since).")
@click.option("--category", help="Only this category.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N articles.")
@json_option
@pass_app
def articles_list(
    app: App,
    since: str | None,
    until: str | None,
    category: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List articles, newest first.

    \b
    Example:
      digest articles list --since 2026-01-01 --until 2026-01-08 --limit 20
    """
    zone = app.config.publication.timezone
    rows = list_articles(
        app.db,
        since=parse_when(since, zone=zone, label="--since") if since else None,
        until=parse_when(until, zone=zone, label="--until") if until else None,
        category=category,
        limit=limit,
    )
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No articles match.")
        return
    table = [("ID", f"PUBLISHED ({zone})", "CATEGORY", "TITLE")]
    estimated = False
    for row in rows:
        when = published_local(row, zone).strftime("%Y-%m-%d %H:%M")
        if row["date_estimated"]:
            when, estimated = f"{when} ~", True
        table.append((str(row["id"]), when, row["category"][:18], row["title"]))
    for line in columns(table, right={0}):
        click.echo(line)
    if estimated:
        click.echo("~ the source gave no date: the time digest first saw the article")


@articles.command(name="show")
@click.argument("article_id", metavar="ID")
@json_option
@pass_app
def articles_show(app: App, article_id: str, as_json: bool) -> None:
    """Show one article, with the summaries a model made of it (`digest articles summarize`).

    A generated summary is marked with its label and model, and says when it was made for
    other [summary] settings (another model or prompt), so new issues no longer show it, or
    when its source does not support it (naming the words or sentences at fault).

    \b
    Example:
      digest articles show 42
      digest articles show 42 --json
    """
    from digest.summary.stored import stored_summaries  # lazy: start-up

    row = article_view(app.db, article_id)
    generated = stored_summaries(app.db, app.config, row["id"])
    if as_json:
        echo_json({**row, "generated_summaries": [s.as_dict() for s in generated]})
        return
    zone = app.config.publication.timezone
    when = published_local(row, zone).strftime("%Y-%m-%d %H:%M %Z")
    click.echo(row["title"])
    click.echo(row["url"])
    click.echo(f"Category:  {row['category']}")
    if row["source"]:
        click.echo(f"Source:    {row['source']}")
    if row["author"]:
        click.echo(f"Author:    {row['author']}")
    click.echo(f"Published: {when}{' (estimated)' if row['date_estimated'] else ''}")
    click.echo(f"Reading:   {row['reading_minutes']} min")
    edited = [name for name, value in row["editor"].items() if value is not None and name in EDITABLE]
    if edited:
        click.echo(f"Edited:    {', '.join(edited)} (the feed's: `digest articles show {row['id']} --json`)")
    if row["editor"]["hidden"]:
        click.echo("Hidden:    kept out of every issue (`digest articles unhide`)")
    for summary in generated:
        click.echo("")
        click.echo(f"{summary.label} ({_summary_note(summary)}):")
        click.echo(summary.text)
    if row["summary_text"]:
        click.echo("")
        if generated:
            click.echo("From the feed:")
        click.echo(row["summary_text"])


def _summary_note(summary: StoredSummary) -> str:
    """Who made a stored summary, and why a new issue would not show it."""
    if summary.editor:
        return "pinned by an editor; shown in new issues"
    note = f"model {summary.model}"
    if not summary.current:
        return note + "; made for other settings, not shown in new issues"
    if summary.grounding in ("unsupported", "refuted"):
        return note + "; not used, not supported by its source: " + "; ".join(summary.unsupported)
    if summary.grounding is None:
        return note + "; not checked yet, checked when next used"
    return note


@articles.command(name="add")
@click.option("--title", required=True, help="Headline.")
@click.option("--url", required=True, help="Link to the article (http/https).")
@click.option("--category", help="Category (else ingest.default_category).")
@click.option("--summary", help="Short summary (HTML is sanitised).")
@click.option("--source", help="Publication or site name.")
@click.option("--published", help="Publication time, ISO 8601 (default: now).")
@pass_app
def articles_add(
    app: App,
    title: str,
    url: str,
    category: str | None,
    summary: str | None,
    source: str | None,
    published: str | None,
) -> None:
    """Add one article by hand (same identity rules as ingest: the URL decides).

    \b
    Example:
      digest articles add --title "Rust 2.0 released" --url https://example.org/rust2 --category Technology
    """
    result = add_article(
        app.db,
        app.config,
        title=title,
        url=url,
        category=category,
        summary=summary,
        source=source,
        published=published,
    )
    verb = {"new": "Added", "updated": "Updated", "unchanged": "Unchanged"}[result.status]
    click.echo(f"{verb} article {result.article['id']}: {result.article['title']}")


# `digest articles summarize` lives with the summaries (digest/cli/summaries.py).
from digest.cli.summaries import articles_summarize, articles_summary  # noqa: E402 - after the group exists

articles.add_command(articles_summarize)


@articles.command(name="edit")
@click.argument("article_id", metavar="ID", type=int)
@click.option("--title", help="The title issues show.")
@click.option("--summary", help="The summary issues show (plain text; a blank line starts a paragraph).")
@click.option("--category", help="The category (section) it goes into.")
@click.option("--byline", help="The author shown.")
@pass_app
def articles_edit(
    app: App,
    article_id: int,
    title: str | None,
    summary: str | None,
    category: str | None,
    byline: str | None,
) -> None:
    """Set an editor's title, summary, category or byline for article ID.

    They are stored beside the feed's values (an empty value goes back to the feed's), win
    over them in every issue built after, survive a re-ingest, and the drafts that carry the
    article are remade with them. `digest articles show ID --json` shows both.

    \b
    Example:
      digest articles edit 42 --title "Flood: the river peaks tonight" --category World
      digest articles edit 42 --title ""
    """
    values = {"title": title, "summary": summary, "category": category, "byline": byline}
    row = edit_article(app.db, app.config, article_id, values, local_editor())
    changed = ", ".join(k for k, v in values.items() if v is not None)
    click.echo(f"Article {row['id']}: {changed} set")
    for name in row["issues"]:
        click.echo(f"  {name} remade with it")


@articles.command(name="hide")
@click.argument("article_id", metavar="ID", type=int)
@pass_app
def articles_hide(app: App, article_id: int) -> None:
    """Keep article ID out of every issue (drafts that carry it are remade without it).

    \b
    Example:
      digest articles hide 42
    """
    row = hide_article(app.db, app.config, article_id, local_editor())
    click.echo(f"Article {row['id']} is hidden from every issue" + _remade(row["issues"]))


@articles.command(name="unhide")
@click.argument("article_id", metavar="ID", type=int)
@pass_app
def articles_unhide(app: App, article_id: int) -> None:
    """Let article ID into issues again.

    \b
    Example:
      digest articles unhide 42
    """
    row = unhide_article(app.db, app.config, article_id, local_editor())
    click.echo(f"Article {row['id']} is no longer hidden" + _remade(row["issues"]))


def _remade(names: list[str]) -> str:
    return f"; remade {', '.join(names)}" if names else ""


articles.add_command(articles_summary)
