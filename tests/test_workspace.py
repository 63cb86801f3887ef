"""Finding the workspace like git finds a repository: --config, DIGEST_CONFIG, then the
nearest digest.toml here or above; outside a workspace every command but init and demo
fails and creates nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

NO_WORKSPACE = "no digest.toml here or above; run `digest init`"

# One invocation of every command that works on a workspace (arguments valid enough that
# click lets them through to the command).
COMMANDS = [
    ["feeds", "list"],
    ["feeds", "add", "https://example.org/feed.xml", "--category", "World"],
    ["ingest"],
    ["articles", "list"],
    ["articles", "add", "--title", "T", "--url", "https://example.org/t"],
    ["issues", "list"],
    ["issues", "build", "daily"],
    ["issues", "show", "latest"],
    ["preview", "latest"],
    ["subscribers", "list"],
    ["subscribers", "add", "ada@example.org"],
    ["subscribers", "stats"],
    ["send", "latest", "--dry-run"],
    ["deliveries", "latest"],
    ["run", "--dry-run"],
    ["schedule", "list"],
    ["web", "serve", "--port", "0"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_outside_a_workspace_every_command_fails_and_creates_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert f"Error: {NO_WORKSPACE}" in result.output
    assert "Traceback" not in result.output
    assert list(empty.iterdir()) == []


def test_db_option_alone_does_not_make_a_workspace(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "feeds", "list"])
    assert result.exit_code == 1
    assert NO_WORKSPACE in result.output
    assert not (tmp_path / "x.db").exists()


def test_help_version_init_and_demo_work_without_a_workspace(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["--help"], ["--version"], ["feeds", "--help"], ["issues", "build", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    assert list(tmp_path.iterdir()) == []
    assert runner.invoke(cli, ["init", "ws"]).exit_code == 0
    assert (tmp_path / "ws" / "digest.toml").is_file()


def test_a_subfolder_uses_the_workspace_above(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = workspace / "drafts" / "2026"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    runner = CliRunner()
    added = runner.invoke(cli, ["feeds", "add", "https://example.org/feed.xml", "--category", "World"])
    assert added.exit_code == 0, added.output
    assert list(deep.iterdir()) == []  # no stray digest.db down here
    monkeypatch.chdir(workspace)
    listed = runner.invoke(cli, ["feeds", "list", "--json"])
    assert [f["url"] for f in json.loads(listed.output)] == ["https://example.org/feed.xml"]


def test_digest_config_variable_names_the_workspace(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("DIGEST_CONFIG", str(workspace / "digest.toml"))
    result = CliRunner().invoke(cli, ["feeds", "add", "https://example.org/a.xml"])
    assert result.exit_code == 0, result.output
    assert list(elsewhere.iterdir()) == []


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "feeds", "list"])
    assert result.exit_code == 1
    assert "nope.toml: config file not found" in result.output
    assert list(tmp_path.iterdir()) == []


def test_init_writes_the_config_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        result = CliRunner().invoke(cli, ["init", "ws"])
        forced = CliRunner().invoke(cli, ["init", "ws2"])
        again = CliRunner().invoke(cli, ["init", "--force", "ws2"])
    finally:
        os.umask(previous)
    assert result.exit_code == 0 and forced.exit_code == 0 and again.exit_code == 0, again.output
    for folder in ("ws", "ws2"):
        assert stat.S_IMODE((tmp_path / folder / "digest.toml").stat().st_mode) == 0o600
