"""``digest feeds``: add, list and remove the stored sources."""

from __future__ import annotations

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.ingest.feeds import add_feed, list_feeds, remove_feed


@click.group(name="feeds")
def feeds() -> None:
    """Manage the feeds that `digest ingest` reads.

    \b
    Example:
      digest feeds add https://example.org/feed.xml --category World
      digest feeds list
    """


@feeds.command(name="add")
@click.argument("url_or_path")
@click.option("--category", help="Category for every item of this feed (else the item's own).")
@click.option("--name", help="Display name (else the feed's title on first ingest).")
@pass_app
def feeds_add(app: App, url_or_path: str, category: str | None, name: str | None) -> None:
    """Add a feed by http(s) URL or local file path.

    \b
    Example:
      digest feeds add https://example.org/feed.xml --category World --name "Example News"
    """
    feed = add_feed(app.db, url_or_path, category=category, name=name)
    click.echo(f"Added feed {feed['id']}: {feed['url']}")


@feeds.command(name="list")
@json_option
@pass_app
def feeds_list(app: App, as_json: bool) -> None:
    """List stored feeds with their category and last fetch.

    \b
    Example:
      digest feeds list --json
    """
    rows = list_feeds(app.db)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No feeds yet. Add one: digest feeds add URL --category NAME")
        return
    table = [("ID", "URL", "NAME", "CATEGORY", "ARTICLES", "LAST FETCH")]
    for row in rows:
        label = row["name"] or "-"
        category = row["category"] or "(from items)"
        # The stored error names its source; the URL column already does.
        error = (row["last_error"] or "").removeprefix(f"{row['url']}: ")
        state = error or row["last_status"] or "never fetched"
        table.append((str(row["id"]), row["url"], label, category, str(row["articles"]), state))
    for line in columns(table, right={0, 4}):
        click.echo(line)


@feeds.command(name="remove")
@click.argument("id_or_url")
@pass_app
def feeds_remove(app: App, id_or_url: str) -> None:
    """Remove a feed by id, URL or path (its articles stay).

    \b
    Example:
      digest feeds remove 3
    """
    feed = remove_feed(app.db, id_or_url)
    click.echo(f"Removed feed {feed['id']}: {feed['url']}")
