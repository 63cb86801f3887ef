"""The ``digest`` command line: parses, calls one core function, prints.

Each command group lives in its own module; this one only assembles them and
turns :class:`~digest.errors.DigestError` into ``Error: …`` with exit status 1.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import click

from digest import __version__
from digest.cli.common import App
from digest.errors import DigestError


class DigestGroup(click.Group):
    """A group that shows DigestError as one line (a traceback only with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(str(exc)) from None
        except sqlite3.OperationalError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(f"database error: {exc}; retry, or run with --debug") from None


def _debug(ctx: click.Context) -> bool:
    app = ctx.find_object(App)
    return bool(app and app.debug)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="DIGEST_CONFIG",
    help="Config file (default: ./digest.toml when present).",
)
@click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="DIGEST_DB", help="Database file.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db_path: str | None, debug: bool) -> None:
    """digest: collect articles, compose numbered digest issues, deliver them.

    \b
    Example:
      digest init mynews && cd mynews
      digest feeds add https://example.org/feed.xml --category World
      digest ingest && digest issues build daily && digest preview latest
    """
    ctx.obj = App(config_path=config_path, db_override=db_path, debug=debug)


def _register() -> None:
    from digest.cli import (
        articles,
        deliveries,
        demo,
        feeds,
        ingest,
        init,
        issues,
        preview,
        run,
        schedule,
        send,
        web,
    )
    from subscribers import cli as subscribers_cli

    for module in (
        init,
        feeds,
        ingest,
        articles,
        issues,
        preview,
        send,
        deliveries,
        demo,
        run,
        schedule,
        web,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(subscribers_cli.subscribers)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")
