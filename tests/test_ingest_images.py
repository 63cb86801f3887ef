"""Lead images a feed names without a size: measured at ingest from their first bytes (a real
HTTP server on 127.0.0.1 serves them), within the source's time limit; nothing is fetched from
image servers while ``render.images`` is off."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from store_switch import store_at
from test_render_support import png_bytes

from digest.config import load_config
from digest.ingest.image_sizes import HEAD_BYTES, image_size
from digest.ingest.sources import ingest_sources

NOW = datetime(2026, 1, 23, 6, 0, tzinfo=UTC)
PHOTO = png_bytes(800, 450) + b"\0" * 300_000  # a big file: only its first bytes are needed


@pytest.fixture
def images() -> Iterator[tuple[dict, str]]:
    """A server of pictures: /photo.png (big), /pixel.png (1×1), /slow.png (never answers in time)."""
    seen: dict = {"paths": [], "ranges": [], "sent": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen["paths"].append(self.path)
            seen["ranges"].append(self.headers.get("Range"))
            if self.path == "/slow.png":
                time.sleep(3)
            body = png_bytes(1, 1) if self.path == "/pixel.png" else PHOTO
            self.send_response(200)  # ignores Range: the client must stop reading by itself
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(0, len(body), 16384):
                    self.wfile.write(body[i : i + 16384])
                    seen["sent"] = i + 16384
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield seen, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _feed(tmp_path: Path, base: str) -> Path:
    items = "".join(
        f"<item><title>{title}</title><link>https://news.example/{title}</link>"
        f'<media:content url="{base}/{name}" medium="image"/><description>Words.</description></item>'
        for title, name in (("photo", "photo.png"), ("pixel", "pixel.png"))
    )
    path = tmp_path / "feed.rss"
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">'
        f"<channel><title>Photos</title>{items}</channel></rss>",
        encoding="utf-8",
    )
    return path


def _stored_images(tmp_path: Path, images_on: bool, feed: Path, timeout: float = 5.0) -> dict:
    config = load_config(None)
    config.render.images = images_on
    config.ingest.timeout = timeout
    db = store_at(tmp_path / f"{images_on}.db")
    (result,) = ingest_sources(db, config, [str(feed)], now=NOW)
    assert result.ok, result.error
    rows = db.query("SELECT title, image FROM articles")
    return {r["title"]: json.loads(r["image"] or "null") for r in rows}


def test_an_unsized_picture_is_measured_from_its_first_bytes(images, tmp_path: Path) -> None:
    seen, base = images
    stored = _stored_images(tmp_path, True, _feed(tmp_path, base))
    assert stored["photo"] == {"url": f"{base}/photo.png", "width": 800, "height": 450}
    assert stored["pixel"] is None  # measured 1×1: a tracking pixel
    assert seen["ranges"] == [f"bytes=0-{HEAD_BYTES - 1}"] * 2
    assert seen["sent"] < len(PHOTO)  # the reader hung up after the first bytes


def test_nothing_is_fetched_from_image_servers_while_images_are_off(images, tmp_path: Path) -> None:
    seen, base = images
    stored = _stored_images(tmp_path, False, _feed(tmp_path, base))
    assert stored == {"photo": None, "pixel": None} and seen["paths"] == []


def test_a_slow_image_server_costs_no_more_than_the_sources_time_limit(images, tmp_path: Path) -> None:
    _seen, base = images
    feed = _feed(tmp_path, base)
    feed.write_text(feed.read_text().replace("photo.png", "slow.png"), encoding="utf-8")
    started = time.monotonic()
    stored = _stored_images(tmp_path, True, feed, timeout=1.0)
    assert time.monotonic() - started < 2.5
    assert stored["photo"] is None  # not measured in time: left out, the article kept


def test_image_size_reads_only_what_the_header_says() -> None:
    assert image_size(png_bytes(40, 30)[:33]) == (40, 30)
    assert image_size(b"<html>not a picture</html>") is None
    assert image_size(b"") is None
