"""``digest editors``: who may sign in to the desk (``digest web serve``, under ``/desk``)."""

from __future__ import annotations

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.editors import add_editor, list_editors, remove_editor, signin_link
from subscribers.tokens import load_secret


@click.group(name="editors")
def editors() -> None:
    """The editors who sign in to the desk with a link mailed to them (no passwords).

    \b
    Example:
      digest editors add editor@example.org
      digest editors link editor@example.org
    """


@editors.command(name="add")
@click.argument("email")
@pass_app
def editors_add(app: App, email: str) -> None:
    """Let EMAIL sign in to the desk.

    \b
    Example:
      digest editors add editor@example.org
    """
    editor = add_editor(app.db, email)
    click.echo(f"Added editor {editor['email']}; they sign in at {_desk(app)}/signin")


@editors.command(name="list")
@json_option
@pass_app
def editors_list(app: App, as_json: bool) -> None:
    """List the editors and when each last signed in.

    \b
    Example:
      digest editors list --json
    """
    rows = list_editors(app.db)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No editors yet. Add one: digest editors add EMAIL")
        return
    table = [("EMAIL", "ADDED", "LAST SIGN-IN")]
    table += [(r["email"], r["added_at"], r["last_signin_at"] or "never") for r in rows]
    for line in columns(table):
        click.echo(line)


@editors.command(name="remove")
@click.argument("email")
@pass_app
def editors_remove(app: App, email: str) -> None:
    """Remove EMAIL: their sessions and unused sign-in links stop working at once.

    \b
    Example:
      digest editors remove editor@example.org
    """
    editor = remove_editor(app.db, email)
    click.echo(f"Removed editor {editor['email']}")


@editors.command(name="link")
@click.argument("email")
@pass_app
def editors_link(app: App, email: str) -> None:
    """Print a sign-in link for EMAIL instead of mailing it (single use, valid 15 minutes).

    \b
    Example:
      digest editors link editor@example.org
    """
    click.echo(signin_link(app.db, app.config, load_secret(app.config), email))


def _desk(app: App) -> str:
    return app.config.publication.base_url.rstrip("/") + "/desk"
