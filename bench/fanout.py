"""Fan-out benchmark: `digest send` against postfix's smtp-sink, next to smtp-source.

    python bench/fanout.py [--recipients 20000] [--sessions 8] [--rounds 3] [--memory 10000,100000]
                           [--kills 10] [--kill-recipients 3000] [--store postgresql]

Builds a workspace with one ~60 KB issue and N subscribers, starts
``smtp-sink`` on a loopback port, and measures in the same run, alternating
(smtp-source, digest, smtp-source, digest, ...; medians compared):

* digest: ``deliver_issue`` with the ledger and personalisation on (freeze,
  snapshot, per-recipient links and Message-ID, a row marked ``sending``
  before and ``sent`` after each 250), ``--concurrency`` = sessions;
* smtp-source: the same number of messages of the same size over the same
  number of persistent sessions (``-d``).

Prints both rates and their ratio (digest's rate is taken over ``deliver_issue``,
as its summary line reports it, and also end to end with interpreter start-up);
the same for a DKIM-signed send (RSA-2048, OpenSSL) against the unsigned
smtp-source; the cost of a per-recipient fill and of signing one message in
isolation (minimum of repeats: the RSA signature by OpenSSL, the rest of the signing,
and dkimpy's pure-Python RSA for comparison); the duplicates after a SIGKILL of the whole
process group at ``--kills`` points of a ``--kill-recipients`` send (each followed
by a resuming send; counted per recipient by an aiosmtpd server); and the peak
memory (PSS of the whole process tree, sampled every 50 ms) of a ``digest send``
at each recipient count in ``--memory``. Figures only; it never passes or fails
on time.

``--store postgresql`` adds, in the same rounds, the same send on a private PostgreSQL
(bench/pgstore.py: each round a fresh database filled by ``digest db copy --to`` from the
same pristine workspace, then ``digest send`` on it against the same sink) and prints its
rate next to SQLite's and their ratio (medians; the goal of issue #23 is at least 0.8).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from click.testing import CliRunner  # noqa: E402 - after the path tweak

from digest.cli import cli  # noqa: E402
from digest.compose.build import compose_issue  # noqa: E402
from digest.config import load_config  # noqa: E402
from digest.ingest.articles import add_article  # noqa: E402
from digest.store.database import iso, open_store, transaction, utcnow  # noqa: E402

SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
PERIOD_END = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
WORDS = [
    *("harbour", "tide", "vessel", "crane", "berth", "quay", "cargo", "pilot", "dredging", "lock"),
    *("ferry", "navigation", "chart", "buoy", "beacon", "storm", "surge", "wharf", "container"),
    *("shipping", "route", "weather", "forecast", "captain", "crew", "port", "authority"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_workspace(root: Path, recipients: int, articles: int = 34) -> Path:
    """`digest init`, ~60 KB of articles, one composed issue, ``recipients`` active subscribers."""
    result = CliRunner().invoke(cli, ["init", str(root)])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    toml = root / "digest.toml"
    toml.write_text(
        toml.read_text().replace(
            'base_url = "http://localhost:8080"', 'base_url = "https://news.example.org"'
        )
    )
    config = load_config(toml)
    db = open_store(config.db_path)
    categories = ["World", "Technology", "Science", "Culture"]
    for i in range(articles):
        words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(70))
        add_article(
            db,
            config,
            title=f"Story {i}: the {WORDS[i % len(WORDS)]} report for the week",
            url=f"https://news.example.com/{i}/the-{WORDS[i % len(WORDS)]}-report",
            category=categories[i % len(categories)],
            summary=f"<p>{words.capitalize()}.</p>",
            published=PERIOD_END - timedelta(minutes=20 * (i + 1)),
            now=PERIOD_END,
        )
    compose_issue(db, config, "daily", period_end=PERIOD_END)
    add_subscribers(db, recipients)
    return toml


def add_subscribers(db, count: int) -> None:
    """Bulk insert (setup, not the thing measured)."""
    stamp = iso(utcnow())
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO subscribers (email, name, status, source, attributes, created_at, updated_at)"
            " VALUES (?, ?, 'active', 'import', '{}', ?, ?)",
            ((f"reader{i}@example.net", f"Reader Nummer {i}", stamp, stamp) for i in range(count)),
        )


def message_size(toml: Path) -> int:
    from digest.mail.message import build_message
    from digest.render.variants import render_issue

    config = load_config(toml)
    db = open_store(config.db_path)
    rendered = render_issue(db, config, 1, "*")
    recipient = {
        "email": "reader1@example.net",
        "name": "Reader Nummer 1",
        "unsubscribe_url": "https://news.example.org/unsubscribe/1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "preferences_url": "https://news.example.org/preferences/1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "subscriber_id": 1,
    }
    issue = next(db.query("SELECT * FROM issues WHERE id = 1"))
    return len(build_message(config, issue, rendered, recipient))


class Sink:
    """smtp-sink on a loopback port (it advertises PIPELINING)."""

    def __init__(self) -> None:
        self.port = free_port()
        args = [SINK]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.proc = subprocess.Popen(
            [*args, f"127.0.0.1:{self.port}", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("smtp-sink did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    """Seconds smtp-source needs for ``messages`` of ``size`` bytes over ``sessions`` sessions."""
    started = time.monotonic()
    subprocess.run(
        [
            *(SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size), "-d"),
            *("-f", "digest@example.org", "-t", "reader@example.net", f"127.0.0.1:{port}"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


class TreeMemory:
    """Samples the summed memory of a process and its descendants (Linux /proc).

    PSS (proportional set size) when the kernel offers it: forked workers share most pages
    with their parent, and RSS would count those once per process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, self._sample())

    def _sample(self) -> int:
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
        tree = {self.pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        total = 0
        for pid in tree:
            m = None
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    m = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
            except OSError:
                pass
            if m is None:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
                except OSError:
                    continue
            total += int(m.group(1)) if m else 0
        return total

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def digest_send(toml: Path, port: int, sessions: int) -> tuple[float, int, str]:
    """Run `digest send 1` as its own process; wall seconds, peak tree memory (kB), summary line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_SECRET"] = "bench-secret-not-for-production"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "digest", "--config", str(toml), "send", "1"),
            *("--transport", f"smtp://127.0.0.1:{port}", "--concurrency", str(sessions)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(toml.parent),
    )
    memory = TreeMemory(proc.pid)
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    peak = memory.stop()
    if proc.returncode != 0:
        raise SystemExit(f"digest send failed: {err.decode()}")
    return seconds, peak, out.decode().strip()


def dkim_cost(toml: Path, tmp: Path, repeats: int = 15) -> dict[str, float]:
    """Milliseconds per message, each the minimum over ``repeats`` (the machine may be shared):
    ``fill`` without DKIM, ``signed`` fill with DKIM RSA-2048 (OpenSSL), ``rsa`` the OpenSSL
    signature alone, ``rest`` = signed - fill - rsa (canonicalising, hashing, folding), and
    ``dkimpy`` a fill signed by dkimpy's own pure-Python RSA (parse and all)."""
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    from digest.mail.message import prepare_message
    from digest.render.variants import render_issue

    key = tmp / "dkim.private"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    config = load_config(toml)
    db = open_store(config.db_path)
    issue = next(db.query("SELECT * FROM issues WHERE id = 1"))
    rendered = render_issue(db, config, 1, "*")
    recipient = {
        "email": "reader1@example.net",
        "name": "Reader",
        "unsubscribe_url": "https://news.example.org/unsubscribe/1.x",
        "preferences_url": "https://news.example.org/preferences/1.x",
        "subscriber_id": 1,
    }
    plain = prepare_message(config, issue, rendered)
    config.dkim.domain, config.dkim.selector, config.dkim.key_file = "example.org", "bench", str(key)
    signed = prepare_message(config, issue, rendered)
    slow = prepare_message(config, issue, rendered)
    assert slow.signer is not None and signed.signer is not None
    slow.signer = copy.copy(slow.signer)  # dkim_signer() hands every caller the same signer
    object.__setattr__(slow.signer, "_rsa", None)  # dkimpy's own pure-Python RSA (and its parse)
    slow._signing = None
    rsa, digest = signed.signer._rsa, hashlib.sha256(b"bench").digest()

    def per_message(work, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            work()
        return (time.perf_counter() - started) * 1000 / n

    runs: dict[str, list[float]] = {"fill": [], "signed": [], "rsa": [], "dkimpy": []}
    for _ in range(repeats):  # interleaved, so a burst of load hits all of them alike
        runs["fill"].append(per_message(lambda: plain.fill(recipient), 200))
        runs["signed"].append(per_message(lambda: signed.fill(recipient), 50))
        runs["rsa"].append(
            per_message(lambda: rsa.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())), 50)
        )
    runs["dkimpy"].append(per_message(lambda: slow.fill(recipient), 10))
    costs = {name: min(values) for name, values in runs.items()}
    costs["rest"] = costs["signed"] - costs["fill"] - costs["rsa"]
    return costs


def keep_pristine(db_file: Path) -> Path:
    """A copy of the database as it is now (WAL checkpointed first, or the copy lacks the issue)."""
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pristine = db_file.with_name("pristine.db")
    shutil.copyfile(db_file, pristine)
    return pristine


def restore_pristine(pristine: Path, db_file: Path) -> None:
    """Put the copy from :func:`keep_pristine` back (its WAL and shared-memory files gone too)."""
    for extra in ("-wal", "-shm"):
        Path(f"{db_file}{extra}").unlink(missing_ok=True)
    shutil.copyfile(pristine, db_file)


def kill_points(root: Path, recipients: int, sessions: int, kills: int) -> list[tuple[int, bool]]:
    """SIGKILL a send's whole process group after about k/(kills+1) of the messages, k = 1..kills;
    resume it; return (duplicates, everyone got it) per kill. An aiosmtpd server counts."""
    from collections import Counter

    from aiosmtpd.controller import Controller

    class Counting:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.counts: Counter[str] = Counter()
            self.total = 0

        async def handle_DATA(self, server, session, envelope):
            with self.lock:
                self.counts.update(envelope.rcpt_tos)
                self.total += 1
            return "250 2.0.0 queued"

    toml = build_workspace(root, recipients)
    db_file = toml.parent / "digest.db"
    pristine = keep_pristine(db_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_SECRET"] = "bench-secret-not-for-production"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    results = []
    for k in range(1, kills + 1):
        for journal in toml.parent.glob("*.journal"):
            journal.unlink()
        restore_pristine(pristine, db_file)
        handler = Counting()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            command = [sys.executable, "-m", "digest", "--config", str(toml), "send", "1"]
            command += ["--transport", f"smtp://127.0.0.1:{port}", "--concurrency", str(sessions)]
            proc = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
                cwd=str(toml.parent),
            )
            target = recipients * k // (kills + 1)
            while handler.total < target and proc.poll() is None:
                time.sleep(0.002)
            if proc.poll() is not None:
                raise SystemExit(f"the send ended before the kill point: {proc.stderr.read().decode()}")
            os.killpg(proc.pid, 9)
            proc.wait()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=str(toml.parent))
        finally:
            controller.stop()
        duplicates = sum(n - 1 for n in handler.counts.values())
        results.append((duplicates, len(handler.counts) == recipients))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="digest runs, alternating with smtp-source")
    parser.add_argument(
        "--kills", type=int, default=10, help="SIGKILL points for the duplicate count (0: none)"
    )
    parser.add_argument("--kill-recipients", type=int, default=3000)
    parser.add_argument(
        "--memory", default="10000,100000", help="recipient counts for the memory runs ('' = none)"
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: also the same send on PostgreSQL in each round, and its ratio to SQLite",
    )
    args = parser.parse_args()
    for tool in (SINK, SOURCE):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} not found: install postfix (Debian) for smtp-sink and smtp-source")

    with tempfile.TemporaryDirectory(prefix="digest-fanout-") as tmpdir:
        tmp = Path(tmpdir)
        toml = build_workspace(tmp / "rate", args.recipients)
        size = message_size(toml)
        print(
            f"issue: one message is {size / 1024:.1f} KB; "
            f"{args.recipients} recipients; {args.sessions} sessions"
        )
        cost = dkim_cost(toml, tmp)
        print(
            f"per-recipient fill: {cost['fill']:.3f} ms; with DKIM RSA-2048: {cost['signed']:.3f} ms"
            f" = RSA signature (OpenSSL) {cost['rsa']:.3f} ms + the rest of signing {cost['rest']:.3f} ms"
            f" (min of 15); dkimpy's pure-Python RSA: {cost['dkimpy']:.2f} ms"
        )

        # Rounds alternate smtp-source and digest on the same sink, each digest round on a
        # fresh copy of the database (the issue still a draft): a shared machine's load
        # shifts over time, and alternating spreads it over both. Medians are compared.
        db_file = toml.parent / "digest.db"
        pristine = keep_pristine(db_file)
        signed_toml = toml.with_name("signed.toml")
        signed_toml.write_text(
            toml.read_text()
            + f'\n[dkim]\ndomain = "example.org"\nselector = "bench"\nkey_file = "{tmp / "dkim.private"}"\n'
        )
        sources: list[float] = []
        engines: list[float] = []
        walls: list[float] = []
        signed: list[float] = []
        peak, line, signed_line = 0, "", ""
        on_pg: list[float] = []
        pg_line = ""
        server = None
        if args.store == "postgresql":
            import pgstore  # lazy: start-up (bench/pgstore.py, only with --store postgresql)

            server = pgstore.start_server()
        sink = Sink()
        try:
            sources.append(run_smtp_source(sink.port, args.recipients, args.sessions, size))
            for _ in range(args.rounds):
                for config_file, into in ((toml, engines), (signed_toml, signed)):
                    restore_pristine(pristine, db_file)
                    seconds, round_peak, round_line = digest_send(config_file, sink.port, args.sessions)
                    m = re.search(r" in ([\d.]+)s \(", round_line)
                    into.append(float(m.group(1)) if m else seconds)
                    if into is engines:
                        walls.append(seconds)
                        peak = max(peak, round_peak)
                        line = round_line
                    else:
                        signed_line = round_line
                    sources.append(run_smtp_source(sink.port, args.recipients, args.sessions, size))
                if server is not None:
                    restore_pristine(pristine, db_file)
                    url = server.fresh_database()
                    pgstore.copy_to(toml, url)
                    _, _, pg_line = digest_send(pgstore.pg_config(toml, url), sink.port, args.sessions)
                    m = re.search(r" in ([\d.]+)s \(", pg_line)
                    if m is None:
                        raise SystemExit(f"no time in the summary line: {pg_line}")
                    on_pg.append(float(m.group(1)))
                    server.drop_database(url)
                    sources.append(run_smtp_source(sink.port, args.recipients, args.sessions, size))
        finally:
            sink.close()
            if server is not None:
                server.stop()
        n = args.recipients
        ours, end_to_end, theirs = n / median(engines), n / median(walls), n / median(sources)
        print(f"digest send:  {ours:,.0f} msg/s (median; deliver_issue = freeze, snapshot, send)")
        print(f"              {end_to_end:,.0f} msg/s end to end (incl. interpreter start + imports)")
        print(f"              rounds: {', '.join(f'{n / e:,.0f}' for e in engines)} msg/s; last: [{line}]")
        print(
            f"smtp-source:  {theirs:,.0f} msg/s "
            f"(median; rounds: {', '.join(f'{n / t:,.0f}' for t in sources)})"
        )
        print(f"ratio:        {ours / theirs:.2f} (end to end: {end_to_end / theirs:.2f})")
        signed_rate = n / median(signed)
        rounds = ", ".join(f"{n / e:,.0f}" for e in signed)
        print(
            f"signed send:  {signed_rate:,.0f} msg/s (median; rounds: {rounds});"
            f" ratio to unsigned smtp-source: {signed_rate / theirs:.2f}; last: [{signed_line}]"
        )
        if on_pg:
            pg_rate = n / median(on_pg)
            rounds = ", ".join(f"{n / e:,.0f}" for e in on_pg)
            print(
                f"PostgreSQL:   {pg_rate:,.0f} msg/s (median; rounds: {rounds});"
                f" ratio to SQLite: {pg_rate / ours:.2f} (goal >= 0.8); last: [{pg_line}]"
            )
        if args.kills:
            kills = kill_points(tmp / "kill", args.kill_recipients, args.sessions, args.kills)
            total = sum(d for d, _ in kills)
            print(
                f"SIGKILL:      {args.kills} kills of a {args.kill_recipients}-recipient send"
                f" ({args.sessions} sessions): duplicates per kill {[d for d, _ in kills]},"
                f" total {total}; every recipient got it: {all(ok for _, ok in kills)}"
            )
        print(f"peak memory of the send (process tree PSS): {peak / 1024:.0f} MB at {n} recipients")

        for count in [int(c) for c in args.memory.split(",") if c.strip()]:
            toml = build_workspace(tmp / f"mem{count}", count)
            sink = Sink()
            try:
                seconds, peak, _ = digest_send(toml, sink.port, args.sessions)
            finally:
                sink.close()
            print(
                f"memory: {count:>7,} recipients: peak {peak / 1024:.0f} MB (process tree PSS), "
                f"{count / seconds:,.0f} msg/s end to end"
            )


if __name__ == "__main__":
    main()
