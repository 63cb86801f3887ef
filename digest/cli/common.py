"""What every command shares: the application context, output helpers, options."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import click
import sqlite_utils

from digest.config import Config
from digest.store.database import open_store
from digest.workspace_trust import load_workspace

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """Lazily loaded configuration and database for one CLI invocation."""

    config_path: str | None = None
    db_override: str | None = None
    debug: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def config(self) -> Config:
        """The validated configuration of the workspace: ``--config``, ``$DIGEST_CONFIG`` or
        the nearest ``digest.toml`` here or above. Without one this is an error (nothing is
        created); ``--db``/``$DIGEST_DB`` only moves that workspace's database. One found by
        walking up must be the user's own (digest.workspace_trust)."""
        return load_workspace(self.config_path, db=self.db_override)

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """The open, migrated database."""
        return open_store(self.config.store)


pass_app = click.make_pass_decorator(App, ensure=True)


def json_option(f: F) -> F:
    """Add ``--json`` to a listing command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (datetimes and paths as strings)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def is_terminal() -> bool:
    """True when stdout is an interactive terminal (progress bars are shown only then)."""
    return sys.stdout.isatty()


@contextmanager
def progress(items: Iterable[Any], *, length: int | None = None, label: str = "") -> Iterator[Iterable[Any]]:
    """A progress bar on a terminal; the plain iterable when piped."""
    if is_terminal():
        with click.progressbar(items, length=length, label=label, show_pos=True, show_eta=True) as bar:
            yield bar
    else:
        yield items


def columns(rows: Sequence[Sequence[str]], *, right: Collection[int] = ()) -> list[str]:
    """Lay out ``rows`` (the first one the header) as aligned columns, two spaces apart.

    Columns whose index is in ``right`` are right-aligned (numbers); the last column is
    never padded, so long subjects or errors do not push trailing spaces.
    """
    if not rows:
        return []
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = str(cell)
            if i == len(row) - 1:
                cells.append(text)
            elif i in right:
                cells.append(text.rjust(widths[i]))
            else:
                cells.append(text.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return lines
