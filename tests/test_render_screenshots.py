"""The fixture issue in headless Chromium at desktop (600 px) and phone (375 px) widths.

Set ``SCREENSHOT_DIR=/some/folder`` to keep the PNGs for a look.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest
from test_render_support import fixture_issue, make_store

from digest.render.personalise import personalise
from digest.render.variants import render_issue

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

RECIPIENT = {
    "name": "Ada",
    "email": "ada@example.org",
    "unsubscribe_url": "https://news.harbour-gazette.example/unsubscribe/t0k3n",
    "preferences_url": "https://news.harbour-gazette.example/preferences/t0k3n",
}


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of 8-bit RGB/RGBA pixels of a non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    if bpp == 4:
        rows = [b"".join(r[i : i + 3] for i in range(0, stride, 4)) for r in rows]
    return width, height, rows


def _pixels(rows: list[bytes]) -> Counter:
    counts: Counter = Counter()
    for row in rows:
        counts.update(row[i : i + 3] for i in range(0, len(row), 3))
    return counts


def screenshot(html_file: Path, out: Path, width: int, profile: Path) -> bytes:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},2000",
        f"--screenshot={out}",
        html_file.as_uri(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"chromium made no screenshot (exit {result.returncode}):\n{result.stderr[-2000:]}"
    return out.read_bytes()


def shot_colours(html_file: Path, tmp_path: Path, name: str, width: int) -> tuple[Counter, list[bytes]]:
    """Screenshot ``html_file`` at ``width`` (a copy kept in $SCREENSHOT_DIR when set), check
    its size, and count its colours; also its rows of RGB bytes."""
    out = tmp_path / f"{name}-{width}.png"
    png = screenshot(html_file, out, width, tmp_path / "profile")
    keep = os.environ.get("SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(keep) / out.name)
    w, h, rows = decode_png(png)
    assert w == width and h == 2000
    colours = _pixels(rows)
    assert len(colours) >= 50, f"only {len(colours)} colours: a blank page?"
    return colours, rows


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shot")
    config, db = make_store(folder / "ws")
    issue = fixture_issue(config, db)
    html = personalise(render_issue(db, config, issue["id"]).html, RECIPIENT, html=True)
    path = folder / "issue.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [600, 375])
def test_fixture_issue_renders_and_is_not_blank(page: Path, tmp_path: Path, width: int) -> None:
    colours, rows = shot_colours(page, tmp_path, "issue", width)
    # The page background, the white card, dark text and the accent blue are all there.
    assert colours[bytes((0xEE, 0xF0, 0xF3))] > 1000
    assert colours[bytes((0xFF, 0xFF, 0xFF))] > 10_000
    dark = sum(n for c, n in colours.items() if max(c) < 80)
    assert dark > 500, "no text drawn"
    blue = sum(n for c, n in colours.items() if c[2] > 150 and c[0] < 80 and c[1] < 120)
    assert blue > 100, "no accent-coloured links or headings"
    # Nothing spills past the viewport on a phone: the rightmost column is background.
    right = _pixels([r[-3 * 4 :] for r in rows[:1500]])
    assert set(right) <= {bytes((0xEE, 0xF0, 0xF3)), bytes((0xFF, 0xFF, 0xFF))}, right.most_common(5)
