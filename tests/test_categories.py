"""A subscriber's categories must be ones the workspace knows, and an edition's `order`
(old name `categories`) orders sections without filtering them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError


def _subscribers(run_cli) -> list[dict]:
    return json.loads(run_cli("subscribers", "list", "--json").output)


def test_an_unknown_category_is_refused_with_the_known_ones(run_cli) -> None:
    result = run_cli("subscribers", "add", "ada@example.org", "--category", "Gardening")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    line = result.output.strip()
    assert line.startswith("Error: ") and "\n" not in line
    assert "unknown category 'Gardening'" in line
    # the config's categories (the editions' order, the default, the alias targets)
    for known in ("World", "Technology", "Science", "Culture", "General"):
        assert known in line
    assert "--allow-new-category" in line
    assert _subscribers(run_cli) == []


def test_a_known_category_takes_its_spelling(run_cli) -> None:
    result = run_cli("subscribers", "add", "ada@example.org", "--category", "science")
    assert result.exit_code == 0, result.output
    assert _subscribers(run_cli)[0]["categories"] == ["Science"]


def test_categories_that_articles_and_feeds_have_are_known(run_cli) -> None:
    added = run_cli(
        "articles", "add", "--title", "Roses", "--url", "https://example.org/roses", "--category", "Gardening"
    )
    assert added.exit_code == 0, added.output
    assert run_cli("feeds", "add", "https://example.org/f.xml", "--category", "Sailing").exit_code == 0
    result = run_cli(
        "subscribers", "add", "ada@example.org", "--category", "gardening", "--category", "Sailing"
    )
    assert result.exit_code == 0, result.output
    assert _subscribers(run_cli)[0]["categories"] == ["Gardening", "Sailing"]


def test_allow_new_category_accepts_one(run_cli) -> None:
    result = run_cli(
        "subscribers", "add", "ada@example.org", "--category", "Gardening", "--allow-new-category"
    )
    assert result.exit_code == 0, result.output
    assert _subscribers(run_cli)[0]["categories"] == ["Gardening"]


def test_set_refuses_an_unknown_category(run_cli) -> None:
    assert run_cli("subscribers", "add", "ada@example.org", "--category", "World").exit_code == 0
    result = run_cli("subscribers", "set", "ada@example.org", "--category", "Gardening")
    assert result.exit_code == 1 and "unknown category 'Gardening'" in result.output
    assert _subscribers(run_cli)[0]["categories"] == ["World"]
    allowed = run_cli(
        "subscribers", "set", "ada@example.org", "--category", "Gardening", "--allow-new-category"
    )
    assert allowed.exit_code == 0, allowed.output
    assert _subscribers(run_cli)[0]["categories"] == ["Gardening"]


def test_import_refuses_an_unknown_category_and_writes_nothing(run_cli, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("email,categories\nada@example.org,World\nbob@example.org,World;Gardening\n")
    result = run_cli("subscribers", "import", str(people))
    assert result.exit_code == 1
    assert "line 3" in result.output and "unknown category 'Gardening'" in result.output
    assert _subscribers(run_cli) == []
    allowed = run_cli("subscribers", "import", str(people), "--allow-new-category")
    assert allowed.exit_code == 0, allowed.output
    assert len(_subscribers(run_cli)) == 2


def _config(tmp_path: Path, edition: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(f'[editions.daily]\nschedule = "0 7 * * *"\n{edition}\n')
    return path


def test_order_orders_sections(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'order = ["World", "Science"]'))
    assert config.editions["daily"].order == ["World", "Science"]


def test_the_old_name_categories_reads_as_order(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'categories = ["Science"]'))
    assert config.editions["daily"].order == ["Science"]


def test_order_and_its_old_name_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both 'order' and its old name 'categories'"):
        load_config(_config(tmp_path, 'order = ["World"]\ncategories = ["Science"]'))
