"""``digest demo``: the quick start, offline, in a few seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from digest.compose.build import plural
from digest.compose.issues import issue_name
from digest.demo import run_demo


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@click.command(name="demo")
@click.option(
    "--dir",
    "directory",
    default="digest-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo workspace.",
)
def demo(directory: Path) -> None:
    """Try digest in one command: a workspace with a demo feed and readers, today's daily
    issue built and delivered into a local maildir, plus an HTML preview. Offline; safe to
    run again.

    \b
    Example:
      digest demo
      digest demo --dir /tmp/try-digest
    """
    r = run_demo(directory)
    click.echo(f"{'Created' if r.workspace_created else 'Reused'} the demo workspace {_shown(r.directory)}/")
    click.echo(f"  config       {_shown(r.config_path)}")
    click.echo(f"  feed         {_shown(r.feed_path)} ({r.ingested_new} new articles ingested)")
    readers = []
    for s in r.subscribers:
        categories = ", ".join(json.loads(s["categories"])) if s["categories"] else "all categories"
        readers.append(f"{s['email']} ({s['timezone'] or 'edition zone'}; {categories})")
    added = f", {len(r.subscribers_added)} new" if r.subscribers_added else ""
    click.echo(f"  subscribers  {len(r.subscribers)}{added}:")
    for line in readers:
        click.echo(f"                 {line}")
    verb = "built" if r.issue_created else "already built"
    click.echo(
        f"  issue        {issue_name(r.issue)} {r.issue['subject']!r} {verb}: "
        f"{plural(r.articles, 'article')} in {', '.join(r.categories)}"
    )
    if r.sent:
        click.echo(f"  delivered    {r.sent} messages (each reader gets only their categories)")
    else:
        click.echo(f"  delivered    already, earlier ({r.already_sent} messages); nobody gets it twice")
    click.echo(f"  messages in  {_shown(r.outbox / 'new')}/  (a maildir; any mail client opens it)")
    click.echo(f"  preview      {_shown(r.preview_path)}  (open it in a browser)")
    click.echo("")
    click.echo("Next, try:")
    for command in r.next_commands:
        click.echo(f"  {command}")
