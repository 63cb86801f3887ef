"""`digest stats --html`: one self-contained page (no script, nothing fetched) whose SVG
charts show in headless Chromium at phone (375 px) and desktop (1280 px) widths.

Set ``SCREENSHOT_DIR=/some/folder`` to keep the PNGs for a look.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_render_screenshots import CHROMIUM, shot_colours
from test_stats_figures import known  # noqa: F401 - the fixture: a workspace with known figures

from digest.cli import cli


@pytest.fixture
def stats_page(known, tmp_path: Path) -> Path:  # noqa: F811
    ws, _ = known
    out = tmp_path / "stats.html"
    result = CliRunner().invoke(cli, ["--config", str(ws.config_path), "stats", "--html", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_page_is_self_contained(stats_page: Path) -> None:
    text = stats_page.read_text("utf-8")
    assert "<script" not in text.lower()
    assert "<svg" in text and text.count("<svg") >= 4
    # The only URL is SVG's namespace name, which is never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(link|img|iframe|object|embed)\b", text)
    assert "@import" not in text and "url(" not in text
    assert "0.15 % ⚠" in text and "0.35 % ✘" in text
    clicks = text.split("Clicks per story")[1]
    assert ">12<" in clicks and "&lt;5" in clicks and ">4<" not in clicks  # the 4 never shows


def test_an_unwritable_page_path_is_one_line(known, tmp_path: Path) -> None:  # noqa: F811
    ws, _ = known
    out = tmp_path / "missing" / "stats.html"
    result = CliRunner().invoke(cli, ["--config", str(ws.config_path), "stats", "--html", str(out)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {out}: cannot write the page (No such file or directory); pick a writable path"
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("width", [375, 1280])
def test_the_page_shows_its_charts_in_chromium(stats_page: Path, tmp_path: Path, width: int) -> None:
    colours, _rows = shot_colours(stats_page, tmp_path, "stats", width)
    assert colours[bytes((0xFF, 0xFF, 0xFF))] > 10_000  # the white cards
    assert colours[bytes((0xDB, 0xEA, 0xFE))] > 500  # the list-size area
    assert colours[bytes((0x25, 0x63, 0xEB))] > 100  # the clicks bars
    assert colours[bytes((0x7C, 0x3A, 0xED))] > 50  # the complaint-rate bar
