"""Every command has help text with an example, and --version works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from digest import __version__
from digest.cli import cli


def _walk(group: click.Group, path: list[str]):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"`digest {' '.join([*path, name])}` cannot be loaded"
        yield [*path, name], command
        if isinstance(command, click.Group):
            yield from _walk(command, [*path, name])


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    seen = 0
    for path, _command in _walk(cli, []):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, f"`digest {' '.join(path)} --help` shows no example"
        seen += 1
    assert seen >= 30


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_dash_m_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "digest", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_readme_mentions_every_command() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [
        " ".join(path)
        for path, command in _walk(cli, [])
        if not isinstance(command, click.Group) and f"digest {' '.join(path)}" not in readme
    ]
    assert not missing, f"README.md shows no example of: {', '.join(missing)}"


def test_a_mistyped_command_gets_the_nearest_one_suggested() -> None:
    result = CliRunner().invoke(cli, ["isues", "list"])
    assert result.exit_code == 2
    assert "No such command 'isues'. Did you mean 'issues'?" in result.output
    result = CliRunner().invoke(cli, ["subscriber", "list"])
    assert "Did you mean 'subscribers'?" in result.output
    result = CliRunner().invoke(cli, ["zzz"])
    assert "No such command 'zzz'." in result.output and "Did you mean" not in result.output
