"""``digest db``: which store a workspace uses and what it holds (``info``), bringing it to this
digest's schema (``migrate``), and moving it to another store (``copy``)."""

from __future__ import annotations

import sys
from typing import Any

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.errors import DigestError
from digest.store_tools import copy_store, migrate, store_info


@click.group(name="db")
def db() -> None:
    """The store: SQLite file (the default) or PostgreSQL ([storage] url).

    \b
    Example:
      digest db info
      digest db copy --to postgresql://digest@db.example.org/digest
    """


@db.command(name="info")
@json_option
@pass_app
def db_info(app: App, as_json: bool) -> None:
    """Which store is in use, its schema version against this digest's, and every table's rows.

    Reads only: a store that is behind is shown, not migrated (`digest db migrate` does that).

    \b
    Example:
      digest db info
      digest --db old.db db info --json
    """
    info = store_info(app.config.store)
    if as_json:
        echo_json(info.as_dict())
        return
    click.echo(f"Store: {info.store} ({info.kind})")
    if info.schema_name is None:
        click.echo("Schema: none yet; run `digest db migrate`")
    else:
        state = {
            "current": "current",
            "behind": f"behind: {len(info.missing)} migrations to apply; run `digest db migrate`",
            "ahead": f"ahead: {len(info.unknown)} migrations of a newer digest; upgrade digest",
        }[info.state]
        click.echo(f"Schema: {info.schema_number} {info.schema_name} ({state})")
    rows = [("table", "rows"), *((name, str(count)) for name, count in info.tables.items())]
    for line in columns(rows, right={1}):
        click.echo(f"  {line}")


@db.command(name="migrate")
@pass_app
def db_migrate(app: App) -> None:
    """Bring the store to this digest's schema (every command that writes does so as well).

    \b
    Example:
      digest --db old.db db migrate
    """
    applied = migrate(app.config.store)
    if applied:
        click.echo(f"Applied {len(applied)} migrations: {', '.join(applied)}")
    else:
        click.echo("The schema is current; nothing to apply")


@db.command(name="copy")
@click.option("--to", "to", metavar="TARGET", help="Copy the workspace's store into TARGET.")
@click.option("--from", "from_", metavar="SOURCE", help="Copy SOURCE into the workspace's store.")
@pass_app
def db_copy(app: App, to: str | None, from_: str | None) -> None:
    """Copy every row between the workspace's store and another, ids kept.

    TARGET and SOURCE are a postgresql://user@host/dbname URL (password from DIGEST_DB_PASSWORD
    or ~/.pgpass) or an SQLite file. The target gets this digest's schema and must hold no rows;
    the source must be at this digest's schema and is only read. The copy is one transaction:
    it ends with every table's row count and the ledger's totals checked, or with the target
    left empty. A progress bar shows on a terminal's stderr. Afterwards set [storage] url (or
    db) to the new store.

    \b
    Example:
      digest db copy --to postgresql://digest@db.example.org/digest
      digest db copy --from old.db
    """
    if (to is None) == (from_ is None):
        raise DigestError("give exactly one of --to TARGET and --from SOURCE")
    here = app.config.store
    source, target = (here, to) if to is not None else (from_, here)
    bar = _Bar()
    try:
        report = copy_store(source, target, progress=bar if sys.stderr.isatty() else None)
    finally:
        bar.close()
    click.echo(
        f"Copied {report.rows} rows in {len(report.tables)} tables from {report.source} to {report.target}; "
        f"every table's row count and the ledger's totals ({report.deliveries} deliveries) match"
    )
    if to is not None:
        click.echo("Next: set [storage] url (or db) in digest.toml to the new store")


class _Bar:
    """A click progress bar on stderr (a terminal's), made at the first batch, when the total
    is known."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.shown = 0

    def __call__(self, table: str, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Copying", file=sys.stderr)
            self.bar.__enter__()
        self.bar.label = f"Copying {table}"
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
