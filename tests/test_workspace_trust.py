"""A digest.toml found by walking up, and the templates folder it names, are used only when
they are the user's own and nobody else may write to them; DIGEST_SAFE_DIRECTORIES or an
explicit --config / DIGEST_CONFIG trusts them anyway (as git's safe.directory does)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from store_switch import store_at

from digest.cli import cli

NOBODY = pwd.getpwnam("nobody").pw_uid
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
ADD = ["feeds", "add", "https://example.org/feed.xml", "--category", "World"]


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _feeds(workspace: Path) -> int:
    db = store_at(workspace / "digest.db", migrate=False)
    try:
        return db.execute("SELECT count(*) FROM feeds").fetchone()[0]
    finally:
        db.close()


def _found_from_below(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a subfolder, so the config is found by walking up."""
    below = workspace / "drafts"
    below.mkdir()
    monkeypatch.chdir(below)
    return workspace / "digest.toml"


def _assert_refused(result: Result, workspace: Path, *words: str) -> None:
    assert result.exit_code == 1, result.output
    line = result.output
    assert line.count("\n") == 1 and line.startswith("Error: refusing "), line
    for word in (*words, f"DIGEST_SAFE_DIRECTORIES={workspace.resolve()}", "--config "):
        assert word in line, (word, line)
    assert _feeds(workspace) == 0


def _assert_trusted_each_way(workspace: Path, config: Path) -> None:
    """Accepted when the workspace is listed, with '*', and when the config is named."""
    listed = os.pathsep.join(["/nowhere", str(workspace)])
    ways = (
        ([], {"DIGEST_SAFE_DIRECTORIES": listed}),
        ([], {"DIGEST_SAFE_DIRECTORIES": "*"}),
        (["--config", str(config)], None),
        ([], {"DIGEST_CONFIG": str(config)}),
    )
    for n, (options, env) in enumerate(ways):
        result = _run(*options, "feeds", "add", f"https://example.org/{n}.xml", env=env)
        assert result.exit_code == 0, (options, env, result.output)
    assert _feeds(workspace) == len(ways)


@needs_root
def test_a_config_owned_by_another_user_is_refused(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _found_from_below(workspace, monkeypatch)
    os.chown(config, NOBODY, -1)
    _assert_refused(_run(*ADD), workspace, f"{config}: ", "owned by nobody (uid 65534), not by you (root);")
    _assert_trusted_each_way(workspace, config)


def test_a_config_anyone_may_write_is_refused(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _found_from_below(workspace, monkeypatch)
    config.chmod(0o666)
    _assert_refused(_run(*ADD), workspace, "may be written by anyone (mode 0666: chmod o-w")
    _assert_trusted_each_way(workspace, config)


@needs_root
def test_a_templates_folder_anyone_may_write_is_refused(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _found_from_below(workspace, monkeypatch)
    templates = workspace / "templates"
    templates.mkdir()
    (templates / "issue.mjml.j2").write_text("{{ planted }}")
    os.chown(templates / "issue.mjml.j2", NOBODY, -1)
    _set_templates(config, "templates")
    result = _run(*ADD)
    _assert_refused(result, workspace, "templates folder", "issue.mjml.j2 is owned by nobody")
    os.chown(templates / "issue.mjml.j2", 0, -1)
    templates.chmod(0o777)
    _assert_refused(_run(*ADD), workspace, "templates folder", "it may be written by anyone (mode 0777")
    _assert_trusted_each_way(workspace, config)


def test_own_workspace_found_by_walking_up_is_used(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _found_from_below(workspace, monkeypatch)
    (workspace / "templates").mkdir(mode=0o755)
    _set_templates(config, "templates")
    assert _run(*ADD).exit_code == 0
    assert _feeds(workspace) == 1


def _set_templates(config: Path, folder: str) -> None:
    text = config.read_text()
    assert "\n[render]\n" in text
    config.write_text(text.replace("\n[render]\n", f'\n[render]\ntemplates = "{folder}"\n', 1))
