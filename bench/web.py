"""Web benchmark: prints figures, never passes or fails.

    python bench/web.py [--workers 2] [--threads 8] [--seconds 5] [--clients 16]

Serves one workspace two ways in the same run, with the same worker and thread counts:
``digest web serve`` (gunicorn with digest's idle-safe worker and redacting logs) and plain
gunicorn (stock ``gthread`` worker, access log on) serving the same ``create_app``. For each
it measures requests per second for the unsubscribe page (GET) and the RFC 8058 one-click
POST, from keep-alive client connections in several processes, and then the idle test:
2,000 connections opened and left silent, and how long one normal request then takes.
The goal from the issue: digest web serve ≥ 0.9× plain gunicorn; the request with 2,000
idle connections open answered in under a second. The load generator shares the machine
with the servers, so the figures are noisy: compare the two columns of one run.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from web_process import SECRET, free_port, make_workspace, serve_env, start_web

IDLE = 2000
SUBSCRIBERS = 2000


def _prepare(folder: Path) -> tuple[Path, list[str]]:
    from digest.config import load_config
    from digest.store.database import open_store
    from subscribers.store import add_subscriber
    from subscribers.tokens import load_secret, make_token

    os.environ["DIGEST_SECRET"] = SECRET
    config_path = make_workspace(folder / "ws")
    config = load_config(config_path)
    db = open_store(config.db_path)
    tokens = []
    for n in range(SUBSCRIBERS):
        subscriber = add_subscriber(db, f"reader{n}@example.org", source="import")
        tokens.append(make_token(load_secret(config), subscriber["id"], "unsubscribe"))
    db.conn.close()
    return config_path, tokens


def _client(args: tuple[int, str, list[str], float, int, bool]) -> int:
    port, method, paths, seconds, threads, _ = args
    import threading

    done = [0] * threads
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = b"List-Unsubscribe=One-Click" if method == "POST" else None
        headers = {"User-Agent": "Mozilla/5.0 bench"}  # a browser's, not a link scanner's
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        n = index
        while time.monotonic() < deadline:
            path = paths[n % len(paths)]
            n += threads
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status < 400:  # a page, or a redirect (a counted click)
                    done[index] += 1
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done)


def requests_per_second(port: int, method: str, paths: list[str], seconds: float, clients: int) -> float:
    """Keep-alive clients spread over two processes; successful requests per second."""
    processes = 2
    per = max(1, clients // processes)
    with multiprocessing.Pool(processes) as pool:
        counts = pool.map(_client, [(port, method, paths, seconds, per, False)] * processes)
    return sum(counts) / seconds


def _reset_then(config_path: Path, measure):
    """Make every subscriber active again, so each server's one-click POSTs really unsubscribe."""
    import sqlite3

    with sqlite3.connect(config_path.parent / "digest.db", timeout=30) as conn:
        conn.execute("UPDATE subscribers SET status = 'active', unsubscribed_at = NULL")
    conn.close()
    return measure()


def idle_test(port: int) -> float:
    """Seconds one GET /healthz takes with IDLE silent connections open (inf on failure)."""
    idle = []
    try:
        for _ in range(IDLE):
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            except OSError as exc:
                print(f"idle test: connection {len(idle) + 1} failed: {exc}", file=sys.stderr)
                return float("inf")
        time.sleep(0.5)
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError as exc:
            print(f"idle test: the request failed: {exc}", file=sys.stderr)
            ok = False
        return time.monotonic() - started if ok else float("inf")
    finally:
        for sock in idle:
            sock.close()


def start_plain_gunicorn(
    config_path: Path, workers: int, threads: int
) -> tuple[subprocess.Popen[bytes], int]:
    """Plain gunicorn (stock gthread worker) serving digest.web.create_app for the same config."""
    port = free_port()
    module = config_path.parent / "bench_wsgi.py"
    module.write_text(
        "from digest.config import load_config\n"
        "from digest.web import create_app\n"
        f"app = create_app(load_config({str(config_path)!r}))\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
            "--no-control-socket",
            "--chdir",
            str(config_path.parent),
            "bench_wsgi:app",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=serve_env(port),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("plain gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config_path, tokens = _prepare(Path(tmp))
        get_paths = [f"/unsubscribe/{t}" for t in tokens]
        results: dict[str, dict[str, float]] = {}
        # digest web serve, with the same threads as plain gunicorn below.
        served = start_web(config_path, workers=args.workers, threads=args.threads)
        served_port = int(served.url.rsplit(":", 1)[1])
        plain, plain_port = start_plain_gunicorn(config_path, args.workers, args.threads)
        servers = {"digest web serve": served_port, "plain gunicorn": plain_port}
        try:
            # Two rounds in opposite orders, averaged: whoever runs second gets a warmer machine.
            for order in (list(servers), list(reversed(servers))):
                for name in order:
                    port = servers[name]
                    get = requests_per_second(port, "GET", get_paths, args.seconds, args.clients)
                    post = _reset_then(
                        config_path,
                        lambda p=port: requests_per_second(p, "POST", get_paths, args.seconds, args.clients),
                    )
                    figures = results.setdefault(
                        name, {"GET /unsubscribe/<token>": 0.0, "POST one-click": 0.0}
                    )
                    figures["GET /unsubscribe/<token>"] += get / 2
                    figures["POST one-click"] += post / 2
            for name, port in servers.items():
                results[name]["idle"] = idle_test(port)
        finally:
            served.stop()
            plain.terminate()
            plain.wait(30)
    print(
        f"workers={args.workers} threads={args.threads} clients={args.clients} seconds={args.seconds}"
        " (2 rounds, opposite orders, averaged)"
    )
    print(f"{'':28}{'digest web serve':>18}{'plain gunicorn':>16}{'ratio':>8}")
    for key in ("GET /unsubscribe/<token>", "POST one-click"):
        ours, theirs = results["digest web serve"][key], results["plain gunicorn"][key]
        print(f"{key + ' req/s':28}{ours:>18.0f}{theirs:>16.0f}{ours / theirs if theirs else 0:>8.2f}")
    ours, theirs = results["digest web serve"]["idle"], results["plain gunicorn"]["idle"]
    print(f"{f'1 request, {IDLE} idle conns (s)':28}{ours:>18.3f}{theirs:>16.3f}")


if __name__ == "__main__":
    main()
