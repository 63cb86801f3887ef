"""Configuration: the sample file, strict validation, environment overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config, parse_duration
from digest.errors import ConfigError


def test_sample_config_loads_with_two_editions(workspace: Path) -> None:
    config = load_config(workspace / "digest.toml")
    assert set(config.editions) == {"daily", "weekly"}
    assert config.editions["weekly"].window_delta.days == 7
    assert config.db_path == workspace / "digest.db"
    assert config.delivery.transport == "maildir:outbox"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[publication]\nnmae = 'x'\n", "unknown key 'publication.nmae'"),
        ("[delivery]\nconcurrency = 'four'\n", "'delivery.concurrency' must be an integer"),
        ("[bogus]\na = 1\n", "unknown section or key 'bogus'"),
        ("[delivery]\npassword = 'hunter2'\n", "read only from the environment"),
        ("[editions.daily]\nwindow = 'forever'\n", "'editions.daily.window'"),
        ("[editions.daily]\ntimezone = 'Mars/Base'\n", "not an IANA time zone"),
        (
            "[editions.daily]\nschedule = '0 25 * * *'\n",
            "'editions.daily.schedule' = '0 25 * * *' is not a valid",
        ),
        ("[editions.daily]\nschedule = '0 7 * * funday'\n", "'editions.daily.schedule'"),
        ("[editions.daily]\nwindow = '0d'\n", "'editions.daily.window' = '0d' must be longer than zero"),
        ("[editions.daily]\nwindow = '99999999999w'\n", "'editions.daily.window'"),
        ("[publication\n", "invalid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_bad_config_is_one_line_exit_1_through_cli(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text("[delivery]\nconcurency = 4\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "subscribers", "--help"])
    assert result.exit_code == 0  # help never needs the config
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown key 'delivery.concurency'" in result.output
    assert "Traceback" not in result.output


def test_environment_overrides_file(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_TRANSPORT", "mbox:out.mbox")
    monkeypatch.setenv("DIGEST_DELIVERY_CONCURRENCY", "9")
    monkeypatch.setenv("DIGEST_PUBLICATION_NAME", "Env Name")
    config = load_config(workspace / "digest.toml")
    assert config.delivery.transport == "mbox:out.mbox"
    assert config.delivery.concurrency == 9
    assert config.publication.name == "Env Name"


def test_bad_environment_value_names_variable(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY_RATE", "fast")
    with pytest.raises(ConfigError, match="DIGEST_DELIVERY_RATE"):
        load_config(workspace / "digest.toml")


def test_db_option_overrides_config(workspace: Path, tmp_path: Path) -> None:
    config = load_config(workspace / "digest.toml", db=str(tmp_path / "other.db"))
    assert config.db_path == tmp_path / "other.db"


def test_config_module_imports_without_apscheduler() -> None:
    """The cron check imports APScheduler only while validating, never at import time."""
    code = "import sys, digest.config; assert 'apscheduler' not in sys.modules, 'apscheduler imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_durations() -> None:
    assert parse_duration("6h").total_seconds() == 6 * 3600
    assert parse_duration("2w").days == 14
    with pytest.raises(ConfigError):
        parse_duration("6 hours")


def test_an_environment_override_is_checked_like_the_file(monkeypatch, run_cli, edit_config) -> None:
    """`DIGEST_*` values meet the same checks as the file's, and numbers have floors."""
    monkeypatch.setenv("DIGEST_SUMMARY_ENGINE", "bogus")
    result = run_cli("issues", "list")
    assert result.exit_code == 1 and "'summary.engine' = 'bogus' must be" in result.output, result.output
    monkeypatch.delenv("DIGEST_SUMMARY_ENGINE")
    for var, value, said in [
        ("DIGEST_DELIVERY_CONCURRENCY", "-3", "'delivery.concurrency' = -3 must be at least 1"),
        ("DIGEST_INGEST_TIMEOUT", "0", "'ingest.timeout' = 0.0 must be more than 0"),
        ("DIGEST_RENDER_MAX_HTML_BYTES", "10", "'render.max_html_bytes' = 10 must be at least 10000"),
    ]:
        monkeypatch.setenv(var, value)
        refused = run_cli("issues", "list")
        assert refused.exit_code == 1 and said in refused.output, refused.output
        monkeypatch.delenv(var)
    edit_config("\nrate = 0\n", "\nrate = -5\n")
    from_file = run_cli("issues", "list")
    assert from_file.exit_code == 1 and "'delivery.rate' = -5" in from_file.output, from_file.output
