"""`digest db copy` benchmark: a large SQLite workspace copied to PostgreSQL.

    python bench/dbcopy.py [--subscribers 1000000] [--issues 10]

Builds a workspace of SUBSCRIBERS readers and ISSUES sent issues in bulk SQL (bench/stats.py's
builder: a delivery per reader and issue, bounces, events, click counts), starts a private
PostgreSQL (bench/pgstore.py: fsync off, 32 MB shared_buffers) and times
``digest --config digest.toml db copy --to URL`` as a subprocess (start-up, the copy in
batches, the row-count and ledger checks, the commit). Prints the wall time, rows per
second and the peak memory (PSS, sampled every 50 ms) of the copy's process tree, and the
server's alongside (its shared buffers included). Figures only; it never passes or fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fanout  # bench/fanout.py: TreeMemory
import pgstore  # bench/pgstore.py: the private server
import stats  # bench/stats.py: the bulk builder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--issues", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DIGEST_SECRET", "bench-secret-not-for-production-0123456789")
    with tempfile.TemporaryDirectory(prefix="digest-dbcopy-") as tmp:
        started = time.monotonic()
        config = stats.build(Path(tmp) / "ws", args.subscribers, args.issues)
        size = (config.parent / "digest.db").stat().st_size
        print(f"built in {time.monotonic() - started:.1f} s; the SQLite file is {size / 2**20:,.0f} MB")
        server = pgstore.start_server()
        try:
            url = server.fresh_database()
            postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
            server_memory = fanout.TreeMemory(postmaster)
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "digest", "--config", str(config), "db", "copy", "--to", url],
                env=pgstore.bench_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(config.parent),
            )
            memory = fanout.TreeMemory(proc.pid)
            out, err = proc.communicate()
            seconds = time.monotonic() - started
            peak, server_peak = memory.stop(), server_memory.stop()
            if proc.returncode != 0:
                raise SystemExit(f"digest db copy failed: {out.decode()}{err.decode()}")
            line = out.decode().splitlines()[0]
        finally:
            server.stop()
    rows = int(line.split("Copied ", 1)[1].split(" rows", 1)[0])
    print(
        f"digest db copy --to postgresql: {seconds:.1f} s wall ({rows / seconds:,.0f} rows/s, start-up incl.)"
    )
    mb, server_mb = peak / 1024, server_peak / 1024
    print(f"peak memory (PSS, process tree): digest {mb:,.0f} MB; PostgreSQL server {server_mb:,.0f} MB")
    print(f"its line: {line}")


if __name__ == "__main__":
    main()
