"""``digest init``."""

from __future__ import annotations

import click

from digest.init import init_workspace


@click.command(name="init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing digest.toml.")
@click.option(
    "--base-url",
    metavar="URL",
    help="Public https address of `digest web serve` (links in every email); "
    "default http://localhost:8080, which only local and test sends accept.",
)
@click.option(
    "--example",
    is_flag=True,
    help="Also write the README tour's sample files: feed.xml, articles.jsonl, people.csv, bounces.mbox, "
    "dmarc.mbox "
    "(files already there are kept).",
)
@click.option(
    "--db-url",
    metavar="URL",
    help="Keep the data in PostgreSQL (postgresql://user@host:5432/dbname, no password: set "
    "DIGEST_DB_PASSWORD or use ~/.pgpass) instead of the SQLite file; creates the schema there.",
)
def init(directory: str, force: bool, base_url: str | None, example: bool, db_url: str | None) -> None:
    """Create a workspace: a commented digest.toml and the database.

    \b
    Example:
      digest init mynews --base-url https://news.example.org
      digest init mynews --example
      digest init mynews --db-url postgresql://digest@db.example.org/digest
    """
    result = init_workspace(directory, force=force, base_url=base_url, example=example, db_url=db_url)
    verb = "Wrote" if result.config_written else "Kept existing"
    click.echo(f"{verb} {result.config_path}")
    click.echo(f"Database ready at {result.store}")
    for path in result.examples_written:
        click.echo(f"Wrote sample {path}")
    for path in result.examples_kept:
        click.echo(f"Kept existing {path}")
    if example:
        click.echo(f"Next: cd {directory} && digest feeds add feed.xml --category World")
    else:
        click.echo(f"Next: cd {directory} && digest feeds add URL --category NAME")
