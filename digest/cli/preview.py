"""`digest preview`: an issue as a subscriber (or a category set) would get it."""

from __future__ import annotations

import sys
import tempfile
import webbrowser
from pathlib import Path

import click

from digest.cli.common import App, pass_app
from digest.compose.issues import ISSUE_NAME_HELP, issue_name
from digest.mail.preview import FORMATS, preview_issue

_SUFFIX = {"html": ".html", "text": ".txt", "eml": ".eml"}


@click.command(name="preview", epilog=ISSUE_NAME_HELP)
@click.argument("issue", default="latest")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True)
@click.option("--subscriber", metavar="EMAIL", help="Render as this subscriber (categories, name, links).")
@click.option("--categories", metavar="A,B", help="Render the variant for these categories.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.option("--open", "open_browser", is_flag=True, help="Write a file and open it in the browser.")
@pass_app
def preview(
    app: App,
    issue: str,
    fmt: str,
    subscriber: str | None,
    categories: str | None,
    output: Path | None,
    open_browser: bool,
) -> None:
    """Preview ISSUE (daily/3, latest, daily/latest or an id) as HTML, text or a
    complete .eml message.

    Without --subscriber, the personal fields are sample values.

    \b
    Example:
      digest preview latest --format text
      digest preview daily/3 --subscriber ada@example.org --format eml -o issue.eml
      digest preview --categories World,Science --open
    """
    if subscriber and categories:
        raise click.UsageError("use either --subscriber or --categories, not both")
    wanted = [c.strip() for c in categories.split(",") if c.strip()] if categories is not None else None
    result = preview_issue(app.db, app.config, issue, fmt=fmt, subscriber=subscriber, categories=wanted)
    if open_browser and output is None:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the file must outlive this command for the browser
            prefix=f"digest-issue-{result.issue['id']}-", suffix=_SUFFIX[fmt], delete=False
        )
        handle.close()
        output = Path(handle.name)
    if output is None:
        sys.stdout.buffer.write(result.content)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(result.content)
    note = f" ({result.trimmed} articles only in the web version)" if result.trimmed else ""
    variant = "* (all its categories)" if result.variant == "*" else result.variant
    click.echo(f"Wrote {output} — issue {issue_name(result.issue)}, variant {variant}{note}", err=True)
    if open_browser:
        webbrowser.open(output.resolve().as_uri())
