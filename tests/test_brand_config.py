"""The brand in ``[render]`` is checked when the config loads: a colour under 4.5:1 on its
card in light or dark mode is refused with the ratio and a colour that passes; a logo must
be a real PNG/JPEG/GIF in the workspace; a greeting names only the fields it can fill."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import new_workspace
from test_render_support import png_bytes

from digest.brand import DARK_CARD, LIGHT_CARD, accent_colors, contrast_ratio, read_logo
from digest.config import load_config
from digest.errors import ConfigError


def _workspace(tmp_path: Path, render: str):
    return new_workspace(tmp_path / "ws", config=f"[render]\n{render}\n", db=False)


def test_a_pale_accent_is_refused_at_load_with_its_ratio_and_a_darker_suggestion(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 'accent_color = "#ff9900"')
    result = ws.run_cli("subscribers", "list")
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "render.accent_color" in line and "2.14:1" in line and "light-mode" in line
    suggestion = line.rsplit('"', 2)[1]
    assert contrast_ratio(suggestion, LIGHT_CARD) >= 4.5
    ws.edit_config("#ff9900", suggestion)
    assert load_config(ws.config_file).render.accent_color == suggestion


def test_a_dark_mode_accent_too_dark_for_the_dark_card_is_refused(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 'accent_color_dark = "#1d4ed8"')
    with pytest.raises(ConfigError, match=r"accent_color_dark.*2\.\d\d:1 against the dark-mode card") as exc:
        load_config(ws.config_file)
    suggestion = str(exc.value).rsplit('"', 2)[1]
    assert contrast_ratio(suggestion, DARK_CARD) >= 4.5


def test_the_derived_dark_accent_always_passes() -> None:
    for accent in ("#1d4ed8", "#a86500", "#000000", "#7c2d12", "#065f46"):
        _light, dark = accent_colors(accent)
        assert contrast_ratio(dark, DARK_CARD) >= 4.5, (accent, dark)


def test_a_logo_is_read_for_its_real_size_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, 'logo = "brand/logo.png"')
    with pytest.raises(ConfigError, match=r"render\.logo.*does not exist"):
        load_config(ws.config_file)
    (ws.path / "brand").mkdir()
    (ws.path / "brand" / "logo.png").write_text("<svg/>")
    with pytest.raises(ConfigError, match="not a PNG, JPEG or GIF"):
        load_config(ws.config_file)
    (ws.path / "brand" / "logo.png").write_bytes(png_bytes(400, 100))
    config = load_config(ws.config_file)
    logo = read_logo(config.path(config.render.logo))
    assert (logo.width, logo.height, logo.ext) == (400, 100, "png")
    assert (logo.shown_width, logo.shown_height) == (384, 96)  # fits 544×96, same aspect


@pytest.mark.parametrize(
    ("render", "message"),
    [
        ('font = "comic"', "render.font.*sans, serif"),
        ('greeting = "Hi {nickname}!"', r"render\.greeting.*\{nickname\}.*\{first_name\}"),
        ('greeting_anonymous = "Hi {first_name}!"', "greeting_anonymous.*takes no fields"),
        ('accent_color = "blue"', "not a colour"),
    ],
)
def test_other_brand_mistakes_are_one_line_each(tmp_path: Path, render: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_workspace(tmp_path, render).config_file)


def test_the_sample_configs_brand_lines_load_once_uncommented(tmp_path: Path) -> None:
    from test_sample_config import uncomment_key

    from digest.init import sample_config

    text = sample_config()
    for key in ("logo", "masthead", "accent_color", "font", "greeting", "greeting_anonymous"):
        text = uncomment_key(text, "render", key)
    ws = new_workspace(tmp_path / "ws", config=text, db=False)
    (ws.path / "logo.png").write_bytes(png_bytes(120, 40))
    render = ws.config.render
    assert (render.greeting, render.greeting_anonymous) == ("Good morning, {first_name}!", "Good morning!")
    assert render.logo == "logo.png" and render.font == "sans"
