"""Benchmark: `digest subscribers import` of a 1,000,000-row CSV against sqlite3's bare `.import`.

Generates the CSV in a temp folder (about 1% case-variant duplicates, 0.5%
internationalised addresses that take email-validator's path, a spread of names,
editions, categories and zones), imports it into a fresh digest database with
validation, normalisation, dedupe and the consent events, and times the sqlite3
command-line tool importing the same file into an empty table with no checks at
all. The two alternate for ``--rounds`` rounds (each into a new database, after an
``os.sync()`` so that no run pays for the previous one's writes) and the medians
are compared. Prints each round, both medians, the ratio, and the peak
memory of this process.

A fresh list takes the bulk load (the address index is built once at the end).
``--into N`` first fills the list with N other subscribers, e.g. ``--into 2000000``
for a file smaller than the list, which takes the row-by-row index path.

Run: python bench/import.py [--rows N] [--rounds 3] [--into N] [--keep]
Needs the `sqlite3` command (Debian: apt-get install sqlite3). Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ZONES = ["", "", "", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]
CATEGORIES = ["", "", "World", "Technology;Science", "Culture", "World;Culture;Science"]
EDITIONS = ["", "", "", "daily", "weekly", "daily;weekly"]
FIRST = ["Ada", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Günter", "Hana", "Ian", "Jia", "", ""]
LAST = ["Lovelace", "Okafor", "Müller", "Nakamura", "O'Brien", "Smith", "Zhang", "García"]
LOCAL = ["ada", "bjorn", "chloe", "dmitri", "e.okafor", "fatima_n", "guenter", "hana-s", "ian+news", "jia"]
DOMAINS = ["example.org", "example.com", "mail.example.net", "news.example.co.uk", "post.example.de"]
IDN_DOMAINS = ["bücher.example", "exämple.org", "例え.example"]


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """Write the benchmark CSV: ``rows`` data lines after the header."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,editions,categories,timezone,status\n")
        recent: list[str] = []
        for i in range(rows):
            roll = rnd.random()
            if roll < 0.01 and recent:
                email = rnd.choice(recent).upper()  # a duplicate in another case
            elif roll < 0.015:
                email = f"nutzer.{i}@{rnd.choice(IDN_DOMAINS)}"
            else:
                email = f"{rnd.choice(LOCAL)}.{i}@{rnd.choice(DOMAINS)}"
            if len(recent) < 1000:
                recent.append(email)
            else:
                recent[i % 1000] = email
            first = rnd.choice(FIRST)
            name = f"{first} {rnd.choice(LAST)}" if first else ""
            if "'" in name or "," in name:
                name = '"' + name.replace('"', '""') + '"'
            status = "unsubscribed" if roll > 0.98 else ""
            out.write(
                f"{email},{name},{rnd.choice(EDITIONS)},{rnd.choice(CATEGORIES)},{rnd.choice(ZONES)},{status}\n"
            )


def run_digest_import(db_path: Path, csv_path: Path, into: int) -> tuple[float, object]:
    """Import with digest's importer into a new database (with ``into`` subscribers already
    there); returns (seconds, report)."""
    from digest.store.database import open_store
    from subscribers.importer import import_csv

    db = open_store(db_path)
    if into:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO subscribers (email, status, source, created_at, updated_at)"
            " SELECT 'earlier.' || i || '@example.net', 'active', 'cli', '2026-01-01T00:00:00+00:00',"
            " '2026-01-01T00:00:00+00:00' FROM n",
            [into],
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.sync()  # the list's own writes are not part of the import
    started = time.perf_counter()
    report = import_csv(
        db,
        csv_path,
        known_editions=["daily", "weekly"],
        known_categories=["World", "Technology", "Science", "Culture"],
    )
    elapsed = time.perf_counter() - started
    db.conn.close()
    return elapsed, report


def run_sqlite_import(db_path: Path, csv_path: Path) -> float:
    """sqlite3's bare `.import` of the same file into an empty database; returns seconds."""
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        sys.exit("the sqlite3 command is missing; install it (Debian: apt-get install sqlite3)")
    started = time.perf_counter()
    subprocess.run([sqlite3, str(db_path), f".import --csv {csv_path} subscribers_raw"], check=True)
    return time.perf_counter() - started


def _remove(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="digest runs, alternating with sqlite3")
    parser.add_argument("--into", type=int, default=0, help="subscribers already on the list")
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder and print its path.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="digest-bench-import-"))
    try:
        csv_path = folder / "subscribers.csv"
        started = time.perf_counter()
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f}s")
        if args.into:
            print(f"importing into a list of {args.into:,} subscribers")

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ours: list[float] = []
        theirs: list[float] = []
        report = None
        for round_no in range(1, args.rounds + 1):
            os.sync()  # each run starts with the previous one's writes on disk, not still in flight
            theirs.append(run_sqlite_import(folder / "ref.db", csv_path))
            os.sync()
            seconds, report = run_digest_import(folder / "digest.db", csv_path, args.into)
            ours.append(seconds)
            print(f"round {round_no}: digest {seconds:6.2f}s, sqlite3 .import {theirs[-1]:5.2f}s")
            if round_no < args.rounds or not args.keep:
                _remove(folder / "ref.db")
                _remove(folder / "digest.db")
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        digest_s, sqlite_s = median(ours), median(theirs)
        print(
            f"digest import:  {digest_s:7.2f}s  median ({args.rows / digest_s:,.0f} rows/s; "
            f"{report.added:,} added, {report.updated:,} updated, {report.duplicates:,} duplicates, "
            f"{report.invalid:,} invalid)"
        )
        print(f"sqlite3 .import:{sqlite_s:7.2f}s  median ({args.rows / sqlite_s:,.0f} rows/s; no validation)")
        print(f"ratio:          {digest_s / sqlite_s:7.2f}x  (target <= 5x)")
        print(f"peak RSS:       {rss_before:.0f} MB before import, {rss_after:.0f} MB after")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
