"""``digest init``."""

from __future__ import annotations

import click

from digest.init import init_workspace


@click.command(name="init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing digest.toml.")
def init(directory: str, force: bool) -> None:
    """Create a workspace: a commented digest.toml and the database.

    \b
    Example:
      digest init mynews
    """
    result = init_workspace(directory, force=force)
    verb = "Wrote" if result.config_written else "Kept existing"
    click.echo(f"{verb} {result.config_path}")
    click.echo(f"Database ready at {result.db_path}")
    click.echo(f"Next: cd {directory} && digest feeds add URL --category NAME")
