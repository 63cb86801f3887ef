"""`digest init`'s sample digest.toml: it loads as shipped, and every commented block or key
loads too once uncommented, with the values digest.config takes by default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import new_workspace

from digest.config import Bounces, Dmarc, Subscribers, Web
from digest.init import sample_config

SETTING = re.compile(r"^# ?(\[[a-z_.]+\]|[a-z_]+ = .*)$")
"""A commented-out setting: a section header or ``key = value`` (prose comments never look so)."""


def uncomment_block(text: str, section: str) -> str:
    """``text`` with ``# [section]`` and the commented settings right under it made live."""
    lines = text.splitlines()
    start = lines.index(f"# [{section}]")
    lines[start] = f"[{section}]"
    for n in range(start + 1, len(lines)):
        found = SETTING.match(lines[n])
        if not found or found.group(1).startswith("["):
            break
        lines[n] = found.group(1)
    return "\n".join(lines) + "\n"


def uncomment_key(text: str, section: str, key: str) -> str:
    """``text`` with the commented ``key = …`` inside the live ``[section]`` made live."""
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    for n in range(start + 1, len(lines)):
        if lines[n].startswith("["):
            break
        if lines[n].startswith(f"# {key} = "):
            lines[n] = lines[n][2:]
            return "\n".join(lines) + "\n"
    raise AssertionError(f"no commented {key} in [{section}]")


def load(folder: Path, text: str):
    return new_workspace(folder, config=text, db=False).config


def test_the_sample_loads_with_the_list_sections_at_their_defaults(tmp_path: Path) -> None:
    config = load(tmp_path / "ws", sample_config())
    assert config.bounces == Bounces() and config.subscribers == Subscribers() and config.web == Web()
    assert config.delivery.bounce_address == "" and config.delivery.unsubscribe_mailto == ""


@pytest.mark.parametrize(
    ("section", "dataclass", "examples"),
    [
        ("bounces", Bounces, {"source": "maildir:bounces"}),
        ("dmarc", Dmarc, {"source": "maildir:dmarc", "our_ips": ["192.0.2.0/28"]}),
        ("subscribers", Subscribers, {}),
        ("web", Web, {}),
    ],
)
def test_each_commented_list_block_loads_with_every_key_at_its_default(
    tmp_path: Path, section: str, dataclass: type, examples: dict[str, str]
) -> None:
    text = uncomment_block(sample_config(), section)
    config = load(tmp_path / "ws", text)
    loaded = getattr(config, section)
    # Every key of the section is in the sample, and each shows the default (or a named example).
    assert dataclasses.asdict(loaded) == {**dataclasses.asdict(dataclass()), **examples}
    block = text.split(f"[{section}]\n", 1)[1].split("\n\n", 1)[0]
    for field in dataclasses.fields(dataclass):
        assert re.search(rf"^{field.name} = ", block, re.M), f"[{section}] {field.name} is not in the sample"


@pytest.mark.parametrize(
    ("key", "value"),
    [("bounce_address", "bounces@example.org"), ("unsubscribe_mailto", "unsubscribe@example.org")],
)
def test_the_commented_delivery_keys_load(tmp_path: Path, key: str, value: str) -> None:
    config = load(tmp_path / "ws", uncomment_key(sample_config(), "delivery", key))
    assert getattr(config.delivery, key) == value


def test_everything_commented_loads_at_once(tmp_path: Path) -> None:
    text = sample_config()
    for section in ("bounces", "subscribers", "web", "dkim"):
        text = uncomment_block(text, section)
    for key in ("bounce_address", "unsubscribe_mailto", "reply_to"):
        section = "publication" if key == "reply_to" else "delivery"
        text = uncomment_key(text, section, key)
    config = load(tmp_path / "ws", text)
    assert config.bounces.source == "maildir:bounces" and config.web.form_version == "1"
    assert config.delivery.bounce_address == "bounces@example.org"
