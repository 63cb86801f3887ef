"""Benchmark: `digest subscribers import` of a 1,000,000-row CSV against sqlite3's bare `.import`.

Generates the CSV in a temp folder (about 1% case-variant duplicates, 0.5%
internationalised addresses that take email-validator's path, a spread of names,
editions, categories and zones), imports it into a fresh digest database with
validation, normalisation, dedupe and the consent events, then times the
sqlite3 command-line tool importing the same file into an empty table with no
checks at all. Prints both, the ratio, and the peak memory of this process.

Run: python bench/import.py [--rows N] [--keep]
Needs the `sqlite3` command (Debian: apt-get install sqlite3). Not run in CI.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def run_digest_import(folder: Path, csv_path: Path) -> tuple[float, object]:
    """Import with digest's importer into a fresh database; returns (seconds, report)."""
    from digest.store import open_store
    from subscribers.importer import import_csv

    db = open_store(folder / "digest.db")
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


def run_sqlite_import(folder: Path, csv_path: Path) -> float:
    """sqlite3's bare `.import` of the same file into an empty database; returns seconds."""
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        sys.exit("the sqlite3 command is missing; install it (Debian: apt-get install sqlite3)")
    started = time.perf_counter()
    subprocess.run([sqlite3, str(folder / "ref.db"), f".import --csv {csv_path} subscribers_raw"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder and print its path.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="digest-bench-import-"))
    try:
        csv_path = folder / "subscribers.csv"
        started = time.perf_counter()
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f}s")

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        digest_s, report = run_digest_import(folder, csv_path)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sqlite_s = run_sqlite_import(folder, csv_path)

        print(
            f"digest import:  {digest_s:7.2f}s  ({args.rows / digest_s:,.0f} rows/s; "
            f"{report.added:,} added, {report.duplicates:,} duplicates, {report.invalid:,} invalid)"
        )
        print(f"sqlite3 .import:{sqlite_s:7.2f}s  ({args.rows / sqlite_s:,.0f} rows/s; no validation)")
        print(f"ratio:          {digest_s / sqlite_s:7.2f}x  (target <= 5x)")
        print(f"peak RSS:       {rss_before:.0f} MB before import, {rss_after:.0f} MB after")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
