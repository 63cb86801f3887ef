"""Bounce benchmark: `digest bounces process` over a maildir against a large ledger.

    python bench/bounces.py [--subscribers 100000] [--reports 2000]

Builds a database with N active subscribers and one sent issue (one delivered
ledger row each, inserted directly), then a maildir of reports: a third VERP
DSNs (mapped by token), a third DSNs quoting the original's Message-ID, a third
DSNs naming only the recipient's address (the latest-delivery lookup). Prints
the time per report of ``process_bounces`` (and of the second, no-op pass),
and the cost of one ``ReturnPath.for_delivery`` call (the send engine calls
it per message). Figures only; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from bounce_support import dsn  # noqa: E402

from digest.bounces import process_bounces  # noqa: E402
from digest.config import load_config  # noqa: E402
from digest.mail.message import message_id  # noqa: E402
from digest.mail.verp import ReturnPath, VerpSigner  # noqa: E402
from digest.store.database import open_store, transaction  # noqa: E402

CONFIG = """
[publication]
from = "Bench <digest@news.example.org>"
base_url = "https://news.example.org"

[delivery]
bounce_address = "bounces@news.example.org"

[editions.daily]
schedule = "0 7 * * *"
"""
STAMP = "2026-11-03T06:00:00+00:00"


def build(root: Path, subscribers: int) -> None:
    (root / "digest.toml").write_text(CONFIG, encoding="utf-8")
    config = load_config(root / "digest.toml")
    db = open_store(root / "digest.db")
    with transaction(db):
        db.execute(
            "INSERT INTO issues (id, edition, number, period_start, period_end, subject, status, created_at)"
            " VALUES (1, 'daily', 1, ?, ?, 'Daily #1', 'sent', ?)",
            ["2026-11-02T06:00:00+00:00", STAMP, STAMP],
        )
        db.conn.executemany(
            "INSERT INTO subscribers (id, email, status, created_at, updated_at)"
            " VALUES (?, ?, 'active', ?, ?)",
            ((i, f"reader{i}@example.org", STAMP, STAMP) for i in range(1, subscribers + 1)),
        )
        db.conn.executemany(
            "INSERT INTO deliveries"
            " (id, issue_id, subscriber_id, email, status, message_id, updated_at, sent_at)"
            " VALUES (?, 1, ?, ?, 'sent', ?, ?, ?)",
            (
                (i, i, f"reader{i}@example.org", message_id(config, 1, i), STAMP, STAMP)
                for i in range(1, subscribers + 1)
            ),
        )
    db.close()


def fill(root: Path, config, subscribers: int, reports: int) -> None:
    signer = VerpSigner(os.environ["DIGEST_SECRET"])
    box = mailbox.Maildir(str(root / "bounces"), create=True)
    step = max(1, subscribers // reports)
    for n in range(reports):
        i = 1 + (n * step) % subscribers
        address = f"reader{i}@example.org"
        mid = f"<bench.{n}@relay.example>"
        if n % 3 == 0:
            data = dsn(address, to=f"bounces+{signer.token(i)}@news.example.org", mid=mid)
        elif n % 3 == 1:
            data = dsn("forwarded@elsewhere.example", original_id=message_id(config, 1, i), mid=mid)
        else:
            data = dsn(address, mid=mid)
        box.add(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("DIGEST_SECRET", "bench-secret-not-for-production")
    with tempfile.TemporaryDirectory(prefix="digest-bench-bounces-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        build(root, args.subscribers)
        config = load_config(root / "digest.toml")
        fill(root, config, args.subscribers, args.reports)
        print(f"setup: {args.subscribers} subscribers and ledger rows, {args.reports} reports "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        db = open_store(root / "digest.db")
        source = f"maildir:{root / 'bounces'}"
        t0 = time.perf_counter()
        report = process_bounces(db, config, source)
        first = time.perf_counter() - t0
        print(f"process: {report.summary()}")
        print(f"  {first:.2f} s, {first / args.reports * 1000:.2f} ms per report")
        box = mailbox.Maildir(str(root / "bounces"), create=False)
        processed = box.get_folder("processed")
        for key in list(processed.iterkeys()):
            box.add(processed.get_bytes(key))
            processed.remove(key)
        t0 = time.perf_counter()
        again = process_bounces(db, config, source)
        second = time.perf_counter() - t0
        print(f"second pass (all seen before): {again.already} skipped in {second:.2f} s")
        path = ReturnPath(config)
        calls = 200_000
        t0 = time.perf_counter()
        for i in range(1, calls + 1):
            path.for_delivery(i)
        per_call = (time.perf_counter() - t0) / calls * 1e6
        print(f"ReturnPath.for_delivery: {per_call:.2f} µs per call (e.g. {path.for_delivery(123456)})")


if __name__ == "__main__":
    main()
