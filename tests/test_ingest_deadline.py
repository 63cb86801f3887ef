"""ingest.timeout is a deadline for a whole fetch, and sources are fetched concurrently.

Real servers on 127.0.0.1: a raw socket server that trickles its status line and headers
a byte at a time (or says nothing at all), and an HTTP server with good feeds.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from store_switch import store_at

from digest.config import load_config
from digest.ingest.articles import list_articles
from digest.ingest.source_read import SourceResult
from digest.ingest.sources import ingest_sources

NOW = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
TIMEOUT = 1.0


def rss(n: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed</title>'
        f"<item><title>Story {n}</title><link>https://good.example.org/{n}</link>"
        f"<pubDate>Mon, 05 Jan 2026 08:00:00 GMT</pubDate><description>Text {n}.</description></item>"
        "</channel></rss>"
    ).encode()


@pytest.fixture
def good_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = rss(int(self.path.strip("/").split(".")[0]))
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class BadServer:
    """Accepts connections and then trickles the response head a byte at a time
    (``trickle``) or never says anything (``hang``), until the client goes away."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: slow\r\n" * 10_000
        with conn:
            conn.recv(65536)
            for byte in head:
                if self.stop.is_set():
                    return
                if self.mode == "trickle":
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return
                time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def bad_servers() -> Iterator[dict[str, BadServer]]:
    servers = {"trickle": BadServer("trickle"), "hang": BadServer("hang")}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture
def setup(tmp_path):
    config = load_config(None, db=str(tmp_path / "digest.db"))
    config.ingest.timeout = TIMEOUT
    db = store_at(config.db_path)
    yield db, config
    db.close()


def test_a_server_trickling_its_headers_is_cut_at_the_timeout(setup, good_server, bad_servers) -> None:
    db, config = setup
    trickle = f"{bad_servers['trickle'].url}/feed.xml"
    start = time.monotonic()
    slow, good = ingest_sources(db, config, [trickle, f"{good_server}/1.xml"], now=NOW)
    elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT + 1
    assert slow.error == f"{trickle}: timed out after 1s (ingest.timeout)"
    assert "\n" not in slow.error
    assert good.ok and good.new == 1
    assert [a["title"] for a in list_articles(db)] == ["Story 1"]


def test_fifty_feeds_with_five_hanging_take_one_timeout(setup, good_server, bad_servers) -> None:
    db, config = setup
    # A roomier deadline than the one-feed tests: on a loaded 2-core machine a good feed
    # queued behind 44 others must not be mistaken for a hanging one.
    timeout = config.ingest.timeout = 3.0
    sources = [f"{good_server}/{n}.xml" for n in range(45)]
    for n in range(5):
        sources.insert(n * 10, f"{bad_servers['hang'].url}/hang-{n}.xml")
    seen: list[SourceResult] = []
    start = time.monotonic()
    results = ingest_sources(db, config, sources, now=NOW, on_result=seen.append)
    elapsed = time.monotonic() - start
    assert timeout <= elapsed <= timeout + 2
    assert [r.source for r in results] == sources  # reported in the order given
    assert sum(1 for r in results if r.error) == 5
    assert sum(r.new for r in results) == 45
    # Lines come as sources finish: every good feed before the hanging ones give up.
    assert all(r.error for r in seen[-5:]) and not any(r.error for r in seen[:45])


def test_the_cli_prints_each_source_as_it_finishes(tmp_path, good_server, bad_servers) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    hang = f"{bad_servers['hang'].url}/feed.xml"
    config = tmp_path / "digest.toml"  # the CLI runs only inside a workspace
    config.write_text('[storage]\ndb = "d.db"\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "ingest", hang, f"{good_server}/7.xml"],
        env={"DIGEST_INGEST_TIMEOUT": "1"},
    )
    assert result.exit_code == 1
    assert result.stdout == f"{good_server}/7.xml: 1 new, 0 updated, 0 unchanged\n"
    assert result.stderr == f"Error: {hang}: timed out after 1s (ingest.timeout)\n"
