"""`digest config reference`: every key the config loader accepts, with its type, default and
meaning, made from the config's own definition (so it cannot drift from what is accepted),
and click's shell completion as the README documents it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.config_reference import (
    EDITION_SECTION,
    MEANINGS,
    config_keys,
    reference_markdown,
    toml_value,
)
from digest.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def loader_refusal(tmp_path: Path, text: str) -> str:
    """The loader's own error for ``text`` (which must be refused)."""
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, environ={})
    return str(refused.value)


def accepted_keys(tmp_path: Path) -> dict[str, set[str]]:
    """Section → keys, as the loader itself names them when refusing an unknown one."""
    sections = re.search(r"known: (.*)$", loader_refusal(tmp_path, "nonsense = 1\n")).group(1).split(", ")
    accepted: dict[str, set[str]] = {}
    for section in sections:
        table = "editions.daily" if section == "editions" else section
        error = loader_refusal(tmp_path, f"[{table}]\nnonsense = 1\n")
        known = re.search(r"known keys in \[[^]]+\]: (.*)$", error).group(1).split(", ")
        accepted[EDITION_SECTION if section == "editions" else section] = set(known)
    return accepted


def test_the_reference_lists_exactly_the_keys_the_loader_accepts(tmp_path: Path) -> None:
    listed: dict[str, set[str]] = {}
    for key in config_keys():
        listed.setdefault(key.section, set()).add(key.name)
    assert listed == accepted_keys(tmp_path)


def test_every_key_has_a_meaning_and_every_meaning_a_key() -> None:
    keys = config_keys()
    missing = [k.dotted for k in keys if not k.meaning.strip()]
    assert missing == [], f"add what these keys mean to digest.config_reference.MEANINGS: {missing}"
    assert set(MEANINGS) == {k.dotted for k in keys}, "MEANINGS names a key the config does not have"


def test_every_default_shown_loads_as_that_key(tmp_path: Path) -> None:
    # The reference's defaults, written back as TOML, are what the loader takes by default.
    tables: dict[str, list[str]] = {}
    for key in config_keys():
        table = "editions.daily" if key.section == EDITION_SECTION else key.section
        tables.setdefault(table, []).append(f"{key.name} = {toml_value(key.default)}")
    text = "".join(f"[{table}]\n" + "\n".join(lines) + "\n\n" for table, lines in tables.items())
    path = tmp_path / "digest.toml"
    path.write_text(text.replace('timezone = ""', 'timezone = "UTC"'), encoding="utf-8")
    config = load_config(path, environ={})
    assert config.delivery.concurrency == 4 and config.editions["daily"].window == "1d"


def test_the_reference_prints_without_a_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["config", "reference"])
    assert result.exit_code == 0, result.output
    assert "[delivery]" in result.output and "[editions.NAME]" in result.output
    assert 'transport = "maildir:outbox"    (string, env DIGEST_DELIVERY_TRANSPORT, DIGEST_TRANSPORT)' in (
        result.output
    )
    for key in config_keys():
        assert f"  {key.name} = " in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_linked_reference_page_is_the_generated_one() -> None:
    # docs/configuration.md is `digest config reference --format markdown`; regenerate it so.
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == reference_markdown(config_keys()), (
        "docs/configuration.md is stale: digest config reference --format markdown > docs/configuration.md"
    )
    assert "(docs/configuration.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_shell_completion_is_clicks_own() -> None:
    source = CliRunner().invoke(cli, [], prog_name="digest", env={"_DIGEST_COMPLETE": "bash_source"})
    assert source.exit_code == 0 and "_digest_completion()" in source.output
    words = CliRunner().invoke(
        cli,
        [],
        prog_name="digest",
        env={"_DIGEST_COMPLETE": "bash_complete", "COMP_WORDS": "digest con", "COMP_CWORD": "1"},
    )
    assert "plain,config" in words.output.splitlines()
