"""No article can stop an issue: the real-world corpus plus a feed whose items carry every
C0/C1 control, U+FFFE/U+FFFF and a lone surrogate in every field are ingested, built,
rendered and sent to a maildir, and every clean article arrives.

The corpus is ../shared/corpus/feeds (skipped when absent), read in place.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import new_workspace

from digest.cli import cli
from digest.compose.build import compose_issue
from digest.config import load_config
from digest.store.database import open_store, utcnow

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds"

CONFIG = """
[publication]
name = "Hostile Test"
from = "Hostile Test <digest@example.org>"
base_url = "https://news.example.org"
postal_address = "1 Test Street, Testville"

[delivery]
transport = "maildir:outbox"

[render]
max_html_bytes = 50000000

[editions.all]
title = "Everything"
schedule = "0 7 * * *"
timezone = "UTC"
window = "40000d"
max_articles = 100000
"""

# Every C0 control but NUL (XML cannot carry it even escaped; raw it ends the parse), DEL,
# every C1 control, U+FFFE, U+FFFF and a lone surrogate, as character references.
HOSTILE = "".join(f"&#x{c:x};" for c in [*range(1, 32), *range(0x7F, 0xA0), 0xFFFE, 0xFFFF, 0xD800])
RAW = "\x07\x1b\x0b\x0c"  # and some raw control bytes, which break strict XML parsing


def hostile_feed() -> str:
    items = []
    for i in range(5):
        items.append(
            f"<item><title>Hostile {i} {HOSTILE}{RAW} title</title>"
            f"<link>https://hostile.example.org/{i}/{HOSTILE}{RAW}path</link>"
            f"<guid>hostile-{i}-{HOSTILE}</guid>"
            f"<description>Summary {i} {HOSTILE}{RAW} &lt;b&gt;bold{HOSTILE}&lt;/b&gt;</description>"
            f"<content:encoded><![CDATA[<p>Body {i} {RAW}</p>]]>{HOSTILE}</content:encoded>"
            f"<category>Cat{HOSTILE}{RAW}</category>"
            f"<author>writer@example.org (Writer {HOSTILE}{RAW})</author>"
            "<pubDate>Mon, 05 Jan 2026 08:00:00 GMT</pubDate></item>"
        )
    items.append(  # no title, no date: named by its first words, and "undated"
        "<item><link>https://hostile.example.org/untitled</link>"
        f"<description>Harbour cranes {HOSTILE} were repaired overnight by the crew.</description></item>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Hostile {HOSTILE}</title><link>https://hostile.example.org/</link>"
        + "".join(items)
        + "</channel></rss>"
    )


BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus folder {CORPUS} is absent")
def test_corpus_and_hostile_feed_go_out_with_every_clean_article(tmp_path: Path) -> None:
    new_workspace(tmp_path, config=CONFIG, db=False)
    feed = tmp_path / "hostile.xml"
    feed.write_text(hostile_feed(), encoding="utf-8")
    sources = [str(p) for p in sorted(CORPUS.glob("*.xml"))] + [str(feed)]
    env = {"DIGEST_SECRET": "test-secret-not-for-production"}
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, ["--config", str(tmp_path / "digest.toml"), *args], env=env)

    ingested = run("ingest", *sources)
    assert "Traceback" not in ingested.output
    hostile_line = [line for line in ingested.stdout.splitlines() if line.startswith(str(feed))]
    assert hostile_line == [f"{feed}: 6 new, 0 updated, 0 unchanged"]
    assert run("subscribers", "add", "reader@example.org", "--name", "Reader").exit_code == 0

    config = load_config(tmp_path / "digest.toml")
    db = open_store(config.store)
    articles = db.execute("SELECT id, title, url, author, category, summary_text FROM articles").fetchall()
    assert len(articles) > 100
    for row in articles:  # nothing stored carries a control character
        for value in row[1:]:
            assert not BAD_CHARS.search(value or ""), row
        assert not re.search(r"\s", row[2]), row  # a URL never carries white space
    titles = {row[1] for row in articles}
    assert "Hostile 0 title" in titles
    assert "Harbour cranes were repaired overnight by the crew." in titles
    issue = compose_issue(db, config, "all", period_end=utcnow() + timedelta(days=1)).issue
    assert issue is not None
    db.close()

    sent = run("send", str(issue["id"]))
    assert sent.exit_code == 0, sent.output
    (message_file,) = (tmp_path / "outbox" / "new").iterdir()
    message = email.message_from_bytes(message_file.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert not BAD_CHARS.search(text) and not BAD_CHARS.search(html)
    # A story told by several feeds is one card; the others are its "Also covered by" links.
    missing = [
        url for _, _, url, *_ in articles if f"Read more: {url}\n" not in text and f"<{url}>" not in text
    ]
    assert missing == []
    assert "undated" in text and "undated" in html  # the untitled item has no date
    assert "Hostile 3 title" in text
