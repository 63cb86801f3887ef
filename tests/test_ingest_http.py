"""Ingest over HTTP against a real server on 127.0.0.1: conditional GET, limits, timeouts."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from store_switch import store_at

from digest.config import load_config
from digest.ingest.articles import list_articles
from digest.ingest.feeds import add_feed, get_feed
from digest.ingest.sources import ingest_sources

NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)


def rss(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://quay.example.net/{i}</link>"
        f"<guid>https://quay.example.net/{i}</guid><pubDate>Mon, 0{i + 1} Jan 2026 08:00:00 GMT</pubDate>"
        f"<description>About {t}.</description></item>"
        for i, t in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Quay News</title>'
        f"<link>https://quay.example.net/</link>{items}</channel></rss>"
    ).encode()


@dataclass
class Site:
    """What the test server serves; tests change it between requests."""

    feed: bytes = field(default_factory=lambda: rss("Tide tables", "Crane repaired"))
    etag: str = '"v1"'
    modified: str = "Mon, 05 Jan 2026 08:00:00 GMT"
    requests: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            state.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            route = getattr(self, "route_" + self.path.strip("/").replace("-", "_").replace(".", "_"), None)
            if route is None:
                self.send_error(404, "Not Found")
                return
            route()

        def route_feed_xml(self) -> None:
            if self.headers.get("If-None-Match") == state.etag:
                self.send_response(304)
                self.send_header("ETag", state.etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", state.etag)
            self.send_header("Last-Modified", state.modified)
            self.send_header("Content-Length", str(len(state.feed)))
            self.end_headers()
            self.wfile.write(state.feed)

        def route_gzipped_xml(self) -> None:
            body = gzip.compress(rss("Packed news"))
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route_bomb_xml(self) -> None:
            body = gzip.compress(b"<rss>" + b" " * 5_000_000)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route_big_xml(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5000000")
            self.end_headers()

        def route_endless_xml(self) -> None:
            # No Content-Length: the size limit has to trip while reading.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"<!-- padding -->" * 4096
            try:
                for _ in range(200):
                    self.wfile.write(chunk)
            except OSError:
                pass

        def route_slow_xml(self) -> None:
            state.release.wait(10)  # never answers until the test is over

        def route_stall_xml(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<rss>")
            self.wfile.flush()
            state.release.wait(10)

        def route_moved_xml(self) -> None:
            self.send_response(301)
            self.send_header("Location", "/feed.xml")
            self.end_headers()

        def route_to_ftp_xml(self) -> None:
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/feed.xml")
            self.end_headers()

        def route_export_bin(self) -> None:
            body = b'{"title": "Pier reopens", "url": "https://quay.example.net/pier"}\n'
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def db(tmp_path):
    return store_at(tmp_path / "http.db")


@pytest.fixture
def config():
    cfg = load_config(None)
    cfg.ingest.user_agent = "digest-test/1.0 (+https://quay.example.net/bot)"
    cfg.ingest.timeout = 1.0
    return cfg


def test_conditional_get_304_stores_nothing(site, db, config) -> None:
    state, base = site
    feed = add_feed(db, f"{base}/feed.xml", category="Harbour")

    (first,) = ingest_sources(db, config, None, now=NOW)
    assert first.error is None and first.new == 2
    stored = get_feed(db, feed["id"])
    assert stored["etag"] == '"v1"'
    assert stored["modified"] == "Mon, 05 Jan 2026 08:00:00 GMT"
    assert state.requests[0]["user-agent"] == config.ingest.user_agent
    assert "if-none-match" not in state.requests[0]

    # The server's content changes but it still claims "not modified": nothing is read or stored.
    state.feed = rss("Tide tables", "Crane repaired", "Storm warning")
    (second,) = ingest_sources(db, config, None, now=NOW)
    assert second.error is None and second.not_modified
    assert (second.new, second.updated, second.unchanged) == (0, 0, 0)
    assert state.requests[1]["if-none-match"] == '"v1"'
    assert state.requests[1]["if-modified-since"] == "Mon, 05 Jan 2026 08:00:00 GMT"
    assert len(list_articles(db)) == 2
    assert get_feed(db, feed["id"])["last_status"] == "not modified"

    # A new ETag: fetched and stored.
    state.etag = '"v2"'
    (third,) = ingest_sources(db, config, None, now=NOW)
    assert (third.new, third.unchanged) == (1, 2)
    assert get_feed(db, feed["id"])["etag"] == '"v2"'
    assert {r["category"] for r in list_articles(db)} == {"Harbour"}


def test_a_failed_fetch_keeps_the_validators(site, db, config) -> None:
    state, base = site
    feed = add_feed(db, f"{base}/feed.xml")
    ingest_sources(db, config, None, now=NOW)
    state.feed = b"this is not a feed at all"
    state.etag = '"broken"'
    (result,) = ingest_sources(db, config, None, now=NOW)
    assert result.error is not None
    stored = get_feed(db, feed["id"])
    assert stored["etag"] == '"v1"' and stored["last_error"] == result.error
    assert len(list_articles(db)) == 2


def test_size_limit(site, db, config) -> None:
    _, base = site
    config.ingest.max_bytes = 20_000
    results = ingest_sources(
        db, config, [f"{base}/big.xml", f"{base}/endless.xml", f"{base}/bomb.xml"], now=NOW
    )
    for result in results:
        assert result.error == f"{result.source}: larger than the 20000-byte limit (ingest.max_bytes)"
    assert list_articles(db) == []


def test_timeout(site, db, config) -> None:
    _, base = site
    config.ingest.timeout = 0.3
    results = ingest_sources(db, config, [f"{base}/slow.xml", f"{base}/stall.xml"], now=NOW)
    for result in results:
        assert result.error is not None
        assert result.error.startswith(result.source) and "timed out after 0.3s" in result.error


def test_http_errors_and_other_sources_carry_on(site, db, config) -> None:
    _, base = site
    results = ingest_sources(
        db,
        config,
        [f"{base}/missing.xml", "http://127.0.0.1:9/feed.xml", f"{base}/gzipped.xml", f"{base}/export.bin"],
        now=NOW,
    )
    assert results[0].error == f"{base}/missing.xml: HTTP 404 Not Found"
    assert results[1].error is not None and results[1].error.startswith(
        "http://127.0.0.1:9/feed.xml: unreachable"
    )
    assert (results[2].error, results[2].new) == (None, 1)  # gzip body
    assert (results[3].error, results[3].kind, results[3].new) == (None, "articles", 1)  # sniffed JSON Lines
    assert sorted(r["title"] for r in list_articles(db)) == ["Packed news", "Pier reopens"]


def test_redirects_are_followed_to_http_only(site, db, config) -> None:
    _, base = site
    moved, ftp = ingest_sources(db, config, [f"{base}/moved.xml", f"{base}/to-ftp.xml"], now=NOW)
    assert (moved.error, moved.new) == (None, 2)
    assert ftp.error is not None and "non-HTTP" in ftp.error
