"""A private PostgreSQL for the benchmarks (fanout.py --store postgresql, scale.py, dbcopy.py).

Not a benchmark itself: it starts the tests' :class:`PgServer` (tests/pg_server.py: initdb in
a temporary folder, a loopback port, durability off) with ``pg_stat_statements`` loaded, so a
benchmark can read how long the server spent in each statement, and moves a bench workspace
onto a fresh database of it with ``digest db copy --to`` (the way a publisher moves one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from pg_server import PgServer, find_binary, missing_reason  # noqa: E402 - after the path tweak


def start_server() -> PgServer:
    """A running private server with pg_stat_statements preloaded; stop() it when done."""
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    server = PgServer()
    server.start()
    server.admin("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    pg_ctl = find_binary("pg_ctl")
    assert pg_ctl
    log = str(server.folder / "server.log")  # its output must not go to the pipes _run reads
    server._run(pg_ctl, "-D", str(server.data), "-l", log, "-m", "fast", "-w", "restart")
    server.admin("CREATE EXTENSION pg_stat_statements")  # its view (in "postgres") sees every database
    return server


def bench_env() -> dict[str, str]:
    """The environment of a bench's `digest` subprocess: this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_SECRET"] = "bench-secret-not-for-production"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return env


def copy_to(toml: Path, url: str) -> float:
    """`digest db copy --to url` of the workspace of ``toml``; wall seconds."""
    import time

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(toml), "db", "copy", "--to", url],
        env=bench_env(),
        capture_output=True,
        text=True,
        cwd=str(toml.parent),
    )
    if done.returncode != 0:
        raise SystemExit(f"digest db copy failed: {done.stdout}{done.stderr}")
    return time.monotonic() - started


def pg_config(toml: Path, url: str, name: str = "pg.toml") -> Path:
    """A config beside ``toml`` whose store is ``url`` (the rest the same)."""
    text = toml.read_text(encoding="utf-8")
    if "[storage]\n" not in text:
        raise SystemExit(f"{toml}: no [storage] table to add the url to")
    pg = toml.with_name(name)
    pg.write_text(text.replace("[storage]\n", f'[storage]\nurl = "{url}"\n'), encoding="utf-8")
    return pg


def statement_ms(url: str, like: str) -> tuple[float, int]:
    """Total server time (ms) and calls of the statements whose text contains ``like``."""
    import psycopg  # lazy: start-up (only the PostgreSQL benches need it)

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0)"
            " FROM pg_stat_statements WHERE query LIKE %s",
            [f"%{like}%"],
        ).fetchone()
    return float(row[0]), int(row[1])


def reset_statements(url: str) -> None:
    """Forget the statement figures gathered so far."""
    import psycopg  # lazy: start-up

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
