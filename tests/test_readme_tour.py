"""The README's tour, run top to bottom as written in a fresh folder.

Every ``sh`` block of the "A tour" section runs line by line (``cd`` and ``cp`` included),
with a local HTTP server standing in for the feed at example.org and a local SMTP server
(with AUTH) for smtp.example.org. Only ``digest web serve`` is left out: it runs until
stopped (the web app has its own tests). Every command must exit 0.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from smtp_server import Handler, SMTPServer

from digest.cli import cli

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FEED_URL = "https://example.org/feed.xml"
SMTP_URL = "smtp://mailer@smtp.example.org:587?starttls=true"
SMTP_PASSWORD = "tour-password"
LONG_RUNNING = ("digest web serve", "digest schedule run")


def tour_commands() -> list[str]:
    """The command lines of the tour's ``sh`` blocks, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## A tour")
    end = text.index("\n## ", start + 1)
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text[start:end], re.S):
        lines.extend(line.strip() for line in block.splitlines() if line.strip())
    return lines


def _feed() -> bytes:
    items = []
    for n, (title, day, hour) in enumerate(
        [
            ("Storm closes the harbour", 22, 10),
            ("Bridge reopens after repairs", 22, 15),
            ("Old ferry sold", 19, 9),
        ],
        1,
    ):
        when = format_datetime(datetime(2026, 1, day, hour, tzinfo=UTC))
        items.append(
            f"<item><title>{title}</title><link>https://example.org/news/{n}</link>"
            f"<guid>example-{n}</guid><pubDate>{when}</pubDate>"
            f"<description>&lt;p&gt;{title}, and what it means.&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Example News</title>'
        f"<link>https://example.org/</link><description>News</description>{''.join(items)}</channel></rss>"
    ).encode()


@pytest.fixture
def feed_url() -> Iterator[str]:
    body = _feed()

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()


def test_the_tour_lists_the_commands_it_claims() -> None:
    commands = tour_commands()
    assert commands[0] == "digest init mynews --base-url https://news.example.org && cd mynews"
    assert any(FEED_URL in c for c in commands) and any(SMTP_URL in c for c in commands)
    assert any("examples/articles.jsonl" in c for c in commands)
    # a preview of a subscriber comes after that subscriber is added
    added = next(i for i, c in enumerate(commands) if c.startswith("digest subscribers add ada@"))
    previewed = next(i for i, c in enumerate(commands) if "--subscriber ada@" in c)
    assert added < previewed
    # the export does not overwrite the file just imported
    assert not any(c.startswith("digest subscribers export") and "people.csv" in c for c in commands)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_readme_tour_runs_top_to_bottom(
    tmp_path: Path, feed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.setenv("BROWSER", "true")  # `--open` hands the file to a browser: here, to true(1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # and the file it opens stays in tmp_path
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", SMTP_PASSWORD)
    handler = Handler()
    cwd = tmp_path
    outputs: dict[str, str] = {}
    with SMTPServer(handler, users={"mailer": SMTP_PASSWORD}) as smtp:
        smtp_url = smtp.url.replace("smtp://", "smtp://mailer@")
        for line in tour_commands():
            if line.startswith(LONG_RUNNING):
                continue
            for part in line.split(" && "):
                part = part.replace(FEED_URL, feed_url).replace(SMTP_URL, smtp_url)
                args = shlex.split(part, comments=True)
                if args[0] == "cd":
                    cwd = cwd / args[1]
                    continue
                monkeypatch.chdir(cwd)
                if args[0] == "cp":
                    for source in args[1:-1]:
                        shutil.copy(source, args[-1])
                    continue
                assert args[0] == "digest", line
                result = CliRunner().invoke(cli, args[1:])
                assert result.exit_code == 0, f"{line}\n{result.output}"
                assert "Traceback" not in result.output
                outputs[line] = result.output
    ws = tmp_path / "mynews"
    empty = next(out for cmd, out in outputs.items() if cmd.startswith("digest issues build daily  "))
    assert "no issue built" in empty and "try `digest issues build daily --date 2026-01-25`" in empty
    assert "Built issue daily/1" in outputs[next(c for c in outputs if "build daily --date" in c)]
    # the weekly went out through the SMTP server, the daily into the maildir
    assert handler.received and all("Weekly" in r.message["Subject"] for r in handler.received)
    assert list((ws / "outbox" / "new").iterdir())
    assert (ws / "issue.eml").read_bytes().startswith(b"") and b"ada@example.org" in (
        ws / "issue.eml"
    ).read_bytes()
    assert (ws / "people.csv").read_bytes() == (tmp_path / "examples" / "people.csv").read_bytes()
    assert (ws / "subscribers-backup.csv").is_file()
    assert sorted(p.name for p in ws.iterdir() if p.suffix == ".lock") == []
