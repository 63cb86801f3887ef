"""The logo every email shows is published where the emails load it: ``/assets/logo.<ext>``
from the real web server (``digest web serve``), and the same file in ``digest archive build``."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import new_workspace
from test_render_support import png_bytes
from web_process import start_web

LOGO = png_bytes(200, 50, (157, 23, 77))


def _workspace(tmp_path: Path):
    ws = new_workspace(tmp_path / "ws")
    ws.edit_config("[render]\n", '[render]\nlogo = "logo.png"\n')
    (ws.path / "logo.png").write_bytes(LOGO)
    assert ws.config.render.logo == "logo.png"
    return ws


def test_the_web_server_serves_the_logo_at_its_stable_address(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    web = start_web(ws.config_file)
    try:
        with urllib.request.urlopen(f"{web.url}/assets/logo.png", timeout=10) as response:
            assert response.read() == LOGO
            assert response.headers["Content-Type"] == "image/png"
            # Loaded by mail clients on other origins (webmail), cached for a day.
            assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
            assert "max-age=86400" in response.headers["Cache-Control"]
        for missing in ("/assets/logo.svg", "/assets/other.png"):
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(f"{web.url}{missing}", timeout=10)
            assert exc.value.code == 404
    finally:
        web.stop()


def test_the_static_archive_carries_the_logo(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    out = tmp_path / "public"
    result = ws.run_cli("archive", "build", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "assets" / "logo.png").read_bytes() == LOGO
