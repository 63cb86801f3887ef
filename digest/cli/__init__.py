"""The ``digest`` command line: parses, calls one core function, prints.

Each command group lives in its own module; this one only assembles them and
turns :class:`~digest.errors.DigestError` into ``Error: …`` with exit status 1.
"""

from __future__ import annotations

import importlib
import sqlite3
from typing import Any

import click

from digest import __version__
from digest.cli.common import App
from digest.errors import DigestError
from digest.store.database import MAX_ID


class DigestGroup(click.Group):
    """The root group: loads command modules on demand and shows DigestError as one line
    (a traceback only with --debug)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*_COMMANDS, *(n for n in self.commands if n not in _COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        module = _COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(module), cmd_name)
        self.commands[cmd_name] = command
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Like click's, but a mistyped command name gets the nearest one suggested."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib  # lazy: start-up; only for a mistyped name: not on every start-up

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(str(exc)) from None
        except OverflowError as exc:
            # An id past 2**63 - 1 that a lookup passed to SQLite as it was: it names nothing.
            if _debug(ctx) or "SQLite INTEGER" not in str(exc):
                raise
            raise click.ClickException(f"not found: ids are at most {MAX_ID}") from None
        except sqlite3.DatabaseError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(database_error_text(exc)) from None


def database_error_text(exc: sqlite3.DatabaseError) -> str:
    """One line for a database error; "retry" only when a retry can fix it (a lock)."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return f"database error: {text}; another digest is writing: retry in a moment"
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return f"database error: {text}; the file is damaged: restore it from a backup"
    return f"database error: {text}; run with --debug for details"


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
    help="Config file (default: the nearest digest.toml in this folder or above, used only if it is "
    "yours and not writable by others, or its folder is in DIGEST_SAFE_DIRECTORIES).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    envvar="DIGEST_DB",
    help="Use this database file instead of the workspace's (a digest.toml is still needed).",
)
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


# Command name → module holding a command object of that name. Modules are imported only
# when their command runs (or help lists it), so `digest run` does not pay for Flask,
# premailer and MJML at start-up.
_COMMANDS = {
    "init": "digest.cli.init",
    "config": "digest.cli.config",
    "feeds": "digest.cli.feeds",
    "ingest": "digest.cli.ingest",
    "articles": "digest.cli.articles",
    "issues": "digest.cli.issues",
    "preview": "digest.cli.preview",
    "subscribers": "digest.cli.subscribers",
    "send": "digest.cli.send",
    "deliveries": "digest.cli.deliveries",
    "verify": "digest.cli.verify",
    "stats": "digest.cli.stats",
    "bounces": "digest.cli.bounces",
    "dmarc": "digest.cli.dmarc",
    "run": "digest.cli.run",
    "schedule": "digest.cli.schedule",
    "web": "digest.cli.web",
    "editors": "digest.cli.editors",
    "archive": "digest.cli.archive",
    "demo": "digest.cli.demo",
    "doctor": "digest.cli.doctor",
    "db": "digest.cli.db",
}


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")
