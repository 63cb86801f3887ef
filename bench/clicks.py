"""Counted-link benchmark: prints figures, never passes or fails.

    python bench/clicks.py [--workers 2] [--threads 8] [--seconds 5] [--clients 16]

One workspace with ``[render] count_clicks = true`` and an issue delivered to a few readers,
served by ``digest web serve``; requests per second for the counted story link
(``GET /r/<issue>/<link>``, answered with a redirect) and for the unsubscribe page
(``GET /unsubscribe/<token>``), from keep-alive clients in two processes, two rounds in
opposite orders. The goal from issue #26: the redirect ≥ 0.9× the unsubscribe page. The
load generator shares the machine with the server: compare the two figures of one run.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from click.testing import CliRunner
from test_schedule_support import add_readers, article_times, grow_feed, make_workspace, utc
from web import requests_per_second
from web_process import SECRET, messages_to, start_web

from digest.cli import cli

READERS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "ws")
        ws.config_path.write_text(
            ws.config_path.read_text("utf-8") + "\n[render]\ncount_clicks = true\n", "utf-8"
        )
        readers = [f"reader{n}@example.org" for n in range(READERS)]
        add_readers(ws, dict.fromkeys(readers))
        grow_feed(
            ws, article_times(utc(2026, 11, 2), utc(2026, 11, 4, 5), timedelta(hours=3)), utc(2026, 11, 5)
        )
        web = start_web(ws.config_path, workers=args.workers, threads=args.threads)
        os.environ.update({"DIGEST_SECRET": SECRET, "DIGEST_BASE_URL": web.url})
        try:
            for step in (
                ["ingest"],
                ["issues", "build", "daily", "--date", "2026-11-03"],
                ["send", "latest"],
            ):
                result = CliRunner().invoke(cli, ["--config", str(ws.config_path), *step])
                assert result.exit_code == 0, result.output
            stories, unsubscribes = set(), []
            for reader in readers:
                [msg] = messages_to(ws.outbox, reader)
                text = msg.get_body(preferencelist=("plain",)).get_content()
                stories |= {urlsplit(u).path for u in re.findall(r"https?://\S+/r/\d+/\d+\.\w+", text)}
                unsubscribes += [urlsplit(u).path for u in re.findall(r"https?://\S+/unsubscribe/\S+", text)]
            port = int(web.url.rsplit(":", 1)[1])
            paths = {"redirect /r/…": sorted(stories), "unsubscribe page": unsubscribes}
            results: dict[str, list[float]] = {name: [] for name in paths}
            for order in (list(paths), list(reversed(paths))):
                for name in order:
                    results[name].append(
                        requests_per_second(port, "GET", paths[name], args.seconds, args.clients)
                    )
        finally:
            web.stop()
        print(f"{len(stories)} story links, {len(unsubscribes)} unsubscribe links; {args.workers} workers")
        for name, figures in results.items():
            mean = sum(figures) / len(figures)
            print(f"{name:<20} {mean:8.0f} requests/s  (rounds: {figures[0]:.0f}, {figures[1]:.0f})")
        redirect, page = (sum(results[n]) / 2 for n in paths)
        print(f"redirect / unsubscribe page: {redirect / page:.2f}× (goal ≥ 0.9×)")


if __name__ == "__main__":
    main()
