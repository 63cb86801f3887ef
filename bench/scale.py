"""Scale benchmark: 1, 2 and 3 `digest send` processes on one issue of a PostgreSQL store.

    python bench/scale.py [--recipients 15000] [--concurrency 4] [--rounds 2] [--senders 1,2,3]

Builds a workspace with one ~60 KB issue and N subscribers (bench/fanout.py's), starts a
private PostgreSQL (bench/pgstore.py, with pg_stat_statements) and three postfix
``smtp-sink`` on loopback ports. Each round runs, for each sender count k, a fresh database
filled by ``digest db copy --to`` from the same pristine workspace, then k ``digest send 1``
processes started together, sender i against sink i (``--concurrency`` connections each).
Rounds alternate the counts (1, 2, 3, 1, 2, 3, ...), since a shared machine's load shifts.

Prints per count (medians over the rounds where there are several):

* each sender's messages and rate as its summary line reports it (its own ``deliver_issue``);
* together: all messages over the window from the first sender's start to the last one's
  end (``wall``: interpreter start-up included), and over the longest ``deliver_issue``;
* claim contention, as the server measured it (pg_stat_statements, total execution time of
  the statements, summed over all senders): the claim (``SELECT ... FOR UPDATE OF d SKIP
  LOCKED``, which never waits for another sender's rows: it skips them), the claim's
  ``UPDATE ... 'sending'``, and the advisory locks a sender may wait on (the freeze lock and
  the reclaim lock). The time a worker spends between asking for rows and getting them in
  Python (round trips, commit) is not measured separately: the senders do not count it;
* the check: each sink's message count, their sum against the ledger's ``sent`` rows and the
  recipients (a sum above the ledger is a duplicate), rows left ``queued``/``sending``, and
  how many senders hold rows in the ledger (``leased_by``).

On a 2-core machine more senders cannot add cores: the figures show whether adding senders
loses throughput or duplicates anything. Figures only; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import fanout  # bench/fanout.py: the workspace, the sink, the pristine copy
import pgstore  # bench/pgstore.py: the private server

from digest.store.database import open_store

CLAIM_STATEMENTS = {
    "claim SELECT ... SKIP LOCKED": "FOR UPDATE OF d SKIP LOCKED",
    # pg_stat_statements shows constants as $n: 'sending' reads "status = $1"
    "claim UPDATE ... 'sending'": "message_id = $%leased_by = $%lease_until = $",
    "freeze lock (advisory)": "pg_advisory_xact_lock",
    "reclaim lock (advisory)": "SELECT pg_advisory_lock",
}
SUMMARY = re.compile(r"sent (\d+), failed (\d+).* in ([\d.]+)s \(")


class CountingSink(fanout.Sink):
    """smtp-sink with its running counter (``-c``) written to a file: its messages so far."""

    def __init__(self, folder: Path) -> None:
        self.out = folder / f"sink-{id(self)}.out"
        self.port = fanout.free_port()
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [fanout.SINK, "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "256"],
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
        _wait(self.port)

    def messages(self) -> int:
        """Messages received since it started (the counter's last ``mesg=``)."""
        found = re.findall(rb"mesg=(\d+)", self.out.read_bytes())
        return int(found[-1]) if found else 0


def _wait(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def run_senders(config: Path, ports: list[int], concurrency: int) -> tuple[float, list[tuple[int, float]]]:
    """Start one `digest send 1` per port together; (wall seconds, [(sent, deliver seconds)])."""
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "digest", "--config", str(config), "send", "1"),
                *("--transport", f"smtp://127.0.0.1:{port}", "--concurrency", str(concurrency)),
            ],
            env=pgstore.bench_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(config.parent),
        )
        for port in ports
    ]
    outputs = [proc.communicate() for proc in procs]
    wall = time.monotonic() - started
    each = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise SystemExit(f"digest send failed: {out.decode()}{err.decode()}")
        m = SUMMARY.search(out.decode())
        if m is None:
            raise SystemExit(f"no summary line: {out.decode()}")
        each.append((int(m.group(1)), float(m.group(3))))
    return wall, each


def ledger_check(url: str) -> tuple[int, int, int]:
    """(rows sent, rows still queued or sending, distinct senders in leased_by)."""
    db = open_store(url, migrate=False)
    try:
        counts = dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall())
        holders = db.execute("SELECT leased_by FROM deliveries WHERE leased_by IS NOT NULL").fetchall()
    finally:
        db.conn.close()
    senders = {by.rsplit("/", 1)[0] for (by,) in holders}
    return counts.get("sent", 0), counts.get("queued", 0) + counts.get("sending", 0), len(senders)


def one_round(server, toml: Path, pristine: Path, sinks: list[CountingSink], k: int, args) -> dict:
    """k senders on a fresh copy of the workspace; this round's figures."""
    fanout.restore_pristine(pristine, toml.parent / "digest.db")
    url = server.fresh_database()
    pgstore.copy_to(toml, url)
    config = pgstore.pg_config(toml, url)
    before = [sink.messages() for sink in sinks[:k]]
    pgstore.reset_statements(server.url())
    wall, each = run_senders(config, [sink.port for sink in sinks[:k]], args.concurrency)
    time.sleep(0.3)  # smtp-sink's counter is written as it goes; let the last update land
    received = [sink.messages() - b for sink, b in zip(sinks[:k], before, strict=True)]
    contention = {name: pgstore.statement_ms(server.url(), like) for name, like in CLAIM_STATEMENTS.items()}
    sent, left, holders = ledger_check(url)
    server.drop_database(url)
    return {
        "wall": wall,
        "each": each,
        "received": received,
        "contention": contention,
        "sent": sent,
        "left": left,
        "holders": holders,
    }


def report(k: int, rounds: list[dict], n: int) -> None:
    """Print the figures of k senders (medians over the rounds)."""
    print(f"{k} sender{'s' if k > 1 else ''}:")
    for i in range(k):
        rates = [r["each"][i][0] / r["each"][i][1] for r in rounds]
        sent = [r["each"][i][0] for r in rounds]
        print(f"  sender {i + 1}: {median(rates):,.0f} msg/s (sent {sent}; rounds {_list(rates)})")
    walls = [n / r["wall"] for r in rounds]
    longest = [n / max(s for _, s in r["each"]) for r in rounds]
    print(
        f"  together: {median(walls):,.0f} msg/s over the wall (start-up incl.; rounds {_list(walls)});"
        f" {median(longest):,.0f} msg/s over the longest send (rounds {_list(longest)})"
    )
    last = rounds[-1]
    wall_ms = last["wall"] * 1000 * k
    for name in CLAIM_STATEMENTS:
        ms, calls = last["contention"][name]
        share = ms / max(wall_ms, 1)
        print(f"  server time, {name}: {ms:,.0f} ms in {calls} calls ({share:.1%} of senders' wall)")
    checks = [
        (sum(r["received"]), r["sent"], r["left"], r["holders"]) for r in rounds
    ]  # per round: sinks' sum, ledger sent, left, senders
    ok = all(got == sent == n and left == 0 for got, sent, left, _ in checks)
    print(
        f"  check: sinks received {[r['received'] for r in rounds]} (sum per round {[c[0] for c in checks]}),"
        f" ledger sent {[c[1] for c in checks]} of {n}, left queued/sending {[c[2] for c in checks]},"
        f" senders in the ledger {[c[3] for c in checks]}: {'no duplicate, none lost' if ok else 'MISMATCH'}"
    )


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=15_000)
    parser.add_argument("--concurrency", type=int, default=4, help="connections per sender")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--senders", default="1,2,3", help="sender counts (at most 3: one sink each)")
    args = parser.parse_args()
    counts = [int(c) for c in args.senders.split(",") if c.strip()]
    if not counts or max(counts) > 3 or min(counts) < 1:
        raise SystemExit("--senders: counts from 1 to 3 (one smtp-sink each)")
    if not Path(fanout.SINK).exists():
        raise SystemExit(f"{fanout.SINK} not found: install postfix (Debian) for smtp-sink")

    with tempfile.TemporaryDirectory(prefix="digest-scale-") as tmpdir:
        tmp = Path(tmpdir)
        toml = fanout.build_workspace(tmp / "ws", args.recipients)
        pristine = fanout.keep_pristine(toml.parent / "digest.db")
        print(
            f"issue: one ~{fanout.message_size(toml) / 1024:.0f} KB message; {args.recipients} recipients;"
            f" {args.concurrency} connections per sender; {args.rounds} rounds; PostgreSQL private, fsync off"
        )
        server = pgstore.start_server()
        sinks: list[CountingSink] = []
        results: dict[int, list[dict]] = {k: [] for k in counts}
        try:
            sinks = [CountingSink(tmp) for _ in range(3)]
            for _ in range(args.rounds):
                for k in counts:
                    results[k].append(one_round(server, toml, pristine, sinks, k, args))
        finally:
            for sink in sinks:
                sink.close()
            server.stop()
        for k in counts:
            report(k, results[k], args.recipients)


if __name__ == "__main__":
    main()
