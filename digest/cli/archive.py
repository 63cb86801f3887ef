"""`digest archive` commands: the archive of sent issues as static files, and test links."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.common import App, pass_app
from digest.compose.issues import ISSUE_NAME_HELP


@click.group(name="archive")
def archive() -> None:
    """The public archive of sent issues.

    \b
    Example:
      digest archive build public/
    """


@archive.command(name="build")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@pass_app
def archive_build(app: App, outdir: Path) -> None:
    """Write the archive, every sent issue and the Atom feed as static files into OUTDIR.

    Pages link to each other relatively (index.html, page-2.html, issues/7.html),
    so the folder can be served from any path of any static host; the feed's
    links start with publication.base_url, as feed readers need absolute ones.

    \b
    Example:
      digest archive build public/ && rsync -a public/ host:/var/www/digest/
    """
    from digest.web.static import build_static_archive  # lazy: start-up

    counts = build_static_archive(app.db, app.config, outdir)
    click.echo(
        f"Wrote {counts['pages']} archive page(s), {counts['issues']} issue(s) and feed.atom to {outdir}."
    )


@archive.command(name="test-link", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@pass_app
def archive_test_link(app: App, issue: str) -> None:
    """Print the web address that shows ISSUE (daily/3, latest, daily/latest or an id) to
    whoever holds it, even as a draft.

    \b
    Example:
      digest archive test-link daily/12
    """
    from digest.compose.issues import get_issue  # lazy: start-up
    from digest.render.archive import issue_test_link  # lazy: start-up
    from subscribers.tokens import load_secret  # lazy: start-up

    found = get_issue(app.db, issue)
    click.echo(issue_test_link(app.config, load_secret(app.config), int(found["id"])))
