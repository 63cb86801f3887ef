"""Stats benchmark: prints figures, never passes or fails.

    python bench/stats.py [--readers 100000] [--issues 10]

Builds a workspace with READERS × ISSUES deliveries (1,000,000 by default) in bulk SQL,
with 0.5 % bounces, 0.05 % complaints, unsubscribes and click counts, then times
``digest stats`` (every issue of the last 30 days), ``digest stats latest``,
``digest stats --list`` and ``digest stats --html`` as subprocesses (start-up included).
The goal from issue #26: ``digest stats`` under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import new_workspace

from digest.store.database import iso, open_store


def build(folder: Path, readers: int, issues: int) -> Path:
    """The workspace, filled in bulk; returns its config path."""
    ws = new_workspace(folder, config="")
    db = open_store(ws.path / "digest.db")
    now = datetime.now(UTC)
    long_ago = iso(now - timedelta(days=60))
    conn = db.conn
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO subscribers (email, status, source, created_at, updated_at, confirmed_at)"
        " SELECT 'r' || i || '@example.org', 'active', 'web', ?, ?, ? FROM n",
        [readers, long_ago, long_ago, long_ago],
    )
    conn.execute(
        "INSERT INTO events (subscriber_id, kind, source, at)"
        " SELECT id, 'subscribe', 'web', created_at FROM subscribers"
    )
    stories = [{"id": k, "title": f"Story {k}", "url": f"https://example.org/{k}"} for k in range(1, 9)]
    snapshot = json.dumps({"categories": [{"name": "News", "articles": stories}]})
    for n in range(1, issues + 1):
        sent = now - timedelta(days=issues - n + 1)
        conn.execute(
            "INSERT INTO issues (id, edition, number, period_start, period_end, subject, status, snapshot,"
            " created_at, frozen_at, sent_at) VALUES (?, 'daily', ?, ?, ?, ?, 'sent', ?, ?, ?, ?)",
            [
                n,
                n,
                iso(sent - timedelta(days=1)),
                iso(sent),
                f"Issue {n}",
                snapshot,
                iso(sent),
                iso(sent),
                iso(sent),
            ],
        )
        conn.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, email, status, updated_at, sent_at)"
            " SELECT ?, id, email, CASE WHEN id % 500 = 0 THEN 'failed' ELSE 'sent' END, ?, ?"
            " FROM subscribers",
            [n, iso(sent), iso(sent)],
        )
        conn.execute(
            "INSERT INTO bounces (subscriber_id, issue_id, kind, source_message_id, received_at)"
            " SELECT id, ?,"
            " CASE WHEN id % 2000 = 0 THEN 'complaint' WHEN id % 400 = 0 THEN 'hard' ELSE 'soft' END,"
            " 'b' || ? || '-' || id, ? FROM subscribers WHERE id % 200 = ?",
            [n, n, iso(sent + timedelta(hours=1)), n % 200],
        )
        conn.execute(
            "INSERT INTO events (subscriber_id, kind, source, at)"
            " SELECT id, 'unsubscribe', 'web', ? FROM subscribers WHERE id % 1000 = ?",
            [iso(sent + timedelta(hours=5)), n],
        )
        conn.executemany(
            "INSERT INTO link_clicks (issue_id, link, clicks, scanner) VALUES (?, ?, ?, ?)",
            [(n, str(k), 100 * k, 10) for k in range(1, 9)],
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    count = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    conn.close()
    print(f"workspace: {readers:,} readers, {issues} issues, {count:,} deliveries")
    return ws.config_file


def timed(config: Path, *args: str) -> float:
    """Best of three wall-clock runs of ``digest --config CONFIG ARGS``, in seconds."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), *args], capture_output=True, text=True
        )
        best = min(best, time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(result.stderr)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--issues", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DIGEST_SECRET", "bench-secret-not-for-production-0123456789")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        config = build(Path(tmp) / "ws", args.readers, args.issues)
        print(f"built in {time.perf_counter() - started:.1f} s")
        startup = timed(config, "--version")
        print(f"{'digest --version (start-up alone)':<36} {startup:6.3f} s")
        for label, extra in (
            ("digest stats", []),
            ("digest stats latest", ["latest"]),
            ("digest stats --list", ["--list"]),
            ("digest stats --html", ["--html", str(Path(tmp) / "stats.html")]),
        ):
            print(f"{label:<36} {timed(config, 'stats', *extra):6.3f} s")


if __name__ == "__main__":
    main()
