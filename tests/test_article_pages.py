"""``[summary] fetch_article``: the article's own page, served by a real HTTP server on
127.0.0.1, is fetched within ingest's limits, after robots.txt, one request per site at a time;
its main text (no navigation, boilerplate or comments) is stored, is what the model reads and
what the summary is checked against, and gives the reading time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from store_switch import store_at
from summary_support import canned_model, summary_workspace
from test_summary import build, canned_toml, cards

from digest.config import load_config
from digest.ingest.articles import add_article
from digest.ingest.pages import PAGE_TEXT_MAX, page_texts

STORY = (
    "The tidal barrier at Port Elwyn cost £31m to build, engineer Olwen Price told the harbour "
    "council on Tuesday, and its steel gates weigh 900 tonnes each. "
)
PARAGRAPHS = [
    STORY,
    *(
        f"Paragraph {n} of the report describes how crews worked through the autumn nights, how the "
        "sensors along the estuary measured the water, and how residents of the three districts "
        "watched the gates close for the first time during the spring tide test. " * 2
        for n in range(2, 9)
    ),
]
ARTICLE_PAGE = f"""<!doctype html>
<html><head><title>Barrier cost revealed | Estuary Wire</title></head>
<body>
<header><nav><ul>
  <li><a href="/">Home</a></li><li><a href="/world">World</a></li><li><a href="/sport">Sport</a></li>
  <li><a href="/subscribe">Subscribe to our newsletter for NAVIGATION-ONLY offers</a></li>
</ul></nav></header>
<aside class="sidebar"><h3>Most read</h3>
  <ul><li><a href="/x">SIDEBAR-ONLY celebrity story</a></li></ul></aside>
<main><article>
<h1>Barrier cost revealed</h1>
{"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}
</article></main>
<section id="comments" class="comments"><h2>Comments</h2>
  <div class="comment"><p>COMMENT-ONLY: first! the barrier really cost £99m, trust me.</p></div>
</section>
<footer><p>© Estuary Wire. FOOTER-ONLY cookie policy and terms.</p></footer>
</body></html>"""
MAX_BYTES = 60_000
# Distinct stories (the story merge would fold look-alikes into one card).
TOPICS = [
    ("Barrier story", "The barrier is finished, the council says."),
    ("Ferry timetable rewritten", "Operators publish a new ferry timetable for the winter."),
    ("Lighthouse keeper retires", "The lighthouse keeper hands over the lamp after decades."),
]


class _Site(BaseHTTPRequestHandler):
    """One news site: robots.txt keeps /private/ out; every page takes a little while."""

    requests: list[str] = []
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.requests.append(self.path)
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            if self.path == "/robots.txt":
                self._send(b"User-agent: *\nDisallow: /private/\n", "text/plain")
            elif self.path.startswith("/news/"):
                time.sleep(0.1)
                self._send(ARTICLE_PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/huge":
                self._send(ARTICLE_PAGE.encode() + b"<p>" + b"filler " * 20_000 + b"</p>", "text/html")
            else:
                self._send(b"private story", "text/html")
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    _Site.requests, _Site.in_flight, _Site.most_in_flight = [], 0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def llm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """llm's keys, aliases and logs live in a temp folder, never the user's."""
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm-home"))
    return tmp_path / "llm-home"


def page_workspace(tmp_path: Path, site: str, paths: list[str], fetch: bool = True) -> Path:
    settings = canned_toml(fetch_article=str(fetch).lower())
    path = summary_workspace(
        tmp_path / "ws",
        settings.replace('fetch_article = "true"', "fetch_article = true").replace(
            'fetch_article = "false"', "fetch_article = false"
        ),
        extra=f"[ingest]\nmax_bytes = {MAX_BYTES}\ntimeout = 5\n",
    )
    config = load_config(path)
    db = store_at(config.db_path)
    for (title, summary), page in zip(TOPICS, paths, strict=False):
        add_article(
            db,
            config,
            title=title,
            url=f"{site}{page}",
            summary=summary,
            category="World",
            published="2026-01-23T05:00:00Z",
        )
    db.conn.close()
    return path


def test_the_article_page_is_the_source_and_gives_the_reading_time(tmp_path: Path, site: str) -> None:
    path = page_workspace(tmp_path, site, ["/news/barrier", "/news/second", "/news/third"])
    answer = "The barrier cost £31m, engineer Olwen Price told the council; its gates weigh 900 tonnes."
    with canned_model() as model:
        model.script = {"Barrier story": answer}
        model.default = "A plain summary."
        _, db, result = build(path)
    shown = cards(result.issue)
    card = shown["Barrier story"]
    assert card["summary"] == answer
    assert card["summary_label"] == "AI-generated summary, checked against the article"
    assert card["reading_minutes"] == 3  # the page's ~700 words, not the feed's one sentence
    pages = page_texts(db, [card["id"]])
    text = pages[card["id"]].text
    assert STORY.strip() in text and "Paragraph 8 of the report" in text
    for left_out in ("NAVIGATION-ONLY", "SIDEBAR-ONLY", "COMMENT-ONLY", "FOOTER-ONLY"):
        assert left_out not in text
    [prompt] = [p for p in model.calls if "Barrier story" in p]
    assert "Olwen Price" in prompt and "COMMENT-ONLY" not in prompt
    # One robots.txt for the site, then its three pages one at a time.
    assert sorted(_Site.requests) == ["/news/barrier", "/news/second", "/news/third", "/robots.txt"]
    assert _Site.most_in_flight == 1
    # Fetched once: a rebuild does not knock again.
    before = len(_Site.requests)
    build(path, "big")
    assert len(_Site.requests) == before


def test_robots_txt_refusal_and_an_oversized_page_leave_the_feed_text(tmp_path: Path, site: str) -> None:
    path = page_workspace(tmp_path, site, ["/private/story", "/huge"])
    with canned_model() as model:
        # What a model would say from the feed's one sentence: grounded in it.
        model.script = {title: summary for title, summary in TOPICS}
        _, db, result = build(path)
    assert "/private/story" not in _Site.requests and "/huge" in _Site.requests
    shown = cards(result.issue)
    ids = {title: shown[title]["id"] for title, _ in TOPICS[:2]}
    pages = page_texts(db, ids.values())
    assert pages[ids["Barrier story"]].error == "robots.txt does not allow it"
    too_big = f"larger than the {MAX_BYTES}-byte limit (ingest.max_bytes)"
    assert too_big in pages[ids["Ferry timetable rewritten"]].error
    assert all(page.text == "" for page in pages.values())
    warnings = " ".join(result.warnings)
    assert "its page was not used (robots.txt does not allow it)" in warnings
    assert "larger than the 60000-byte limit" in warnings
    for title in ids:  # the summary came from the feed's text, and says so
        assert shown[title]["summary_label"] == "AI-generated summary, checked against the feed's text"


def test_without_fetch_article_no_page_is_requested(tmp_path: Path, site: str) -> None:
    path = page_workspace(tmp_path, site, ["/news/barrier"], fetch=False)
    with canned_model() as model:
        model.default = "The barrier cost £31m, engineer Olwen Price said."  # not in the feed's text
        _, db, result = build(path)
    assert _Site.requests == []
    assert cards(result.issue)["Barrier story"]["summary_label"] == ""  # unsupported by the feed
    assert db["article_pages"].count == 0
    assert PAGE_TEXT_MAX == 50_000
