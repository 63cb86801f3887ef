"""The engine: runs the connection workers as threads, or as processes of threads, and watches them.

:func:`execute` only schedules: it starts ``connections`` workers
(:class:`digest.delivery.worker.Worker`) — as threads here, or split over
forked processes when a big SMTP send would be CPU-bound, with one thread per
process that DKIM-signs claimed rows ahead of their connections — reports progress
from the ledger, turns SIGINT/SIGTERM into "finish what is in flight, record
it, stop" (remembering which signal, for the exit status), and collects the
counts and fatal errors of every worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlite_utils

from digest.delivery.ledger import done_count
from digest.delivery.throttle import Pace
from digest.delivery.worker import Counters, Run, Worker
from digest.errors import DigestError

__all__ = ["execute"]

SIGNING_THREADS = 1
"""Threads per process that sign claimed rows' messages ahead of their connections."""


def execute(
    db: sqlite_utils.Database,
    run: Run,
    connections: int,
    processes: int,
    rate: float,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    """Run the connection workers (threads here, or processes of threads); report progress."""
    base = done_count(db, run.issue_id)
    children: list[tuple[multiprocessing.Process, Any]] = []
    threads: list[threading.Thread] = []
    previous = _install_signals(run, children)
    try:
        if processes <= 1:
            threads = _start_workers(run, connections, rate)
        else:
            _fork_children(run, connections, processes, rate, children)

        def alive() -> bool:
            return any(t.is_alive() for t in threads) or any(p.is_alive() for p, _ in children)

        while alive():
            if progress is not None:
                progress(done_count(db, run.issue_id) - base, total)
            time.sleep(0.05 if total < 100 else 0.2)
            for proc, _ in children:
                if not proc.is_alive() and proc.exitcode not in (0, None) and not run.stop.is_set():
                    # A worker that failed takes the others down with it (they finish in-flight work).
                    run.stop.set()
                    _signal_children(children)
        _stop_signing(run)
        if progress is not None:
            progress(done_count(db, run.issue_id) - base, total)
        counts = run.counters.as_dict()
        _collect_children(run, children, counts)
        return counts
    finally:
        _restore_signals(previous)


def _fork_children(
    run: Run,
    connections: int,
    processes: int,
    rate: float,
    children: list[tuple[multiprocessing.Process, Any]],
) -> None:
    """Fork ``processes`` workers sharing the connections and the rate; each is appended to
    ``children`` as it starts (the signal handlers pass a stop on to what is there)."""
    ctx = multiprocessing.get_context("fork")
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    parent_pid = os.getpid()
    # Everything imported so far is long-lived: keep it out of the workers' garbage
    # collections (and their pages shared with this process).
    gc.freeze()
    for i, share in enumerate(shares):
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child_main,
            args=(run, share, rate * share / connections if rate > 0 else 0.0, writer, parent_pid),
            name=f"digest-send-{i}",
            daemon=False,
        )
        proc.start()
        writer.close()
        children.append((proc, reader))
    gc.unfreeze()


def _collect_children(
    run: Run, children: list[tuple[multiprocessing.Process, Any]], counts: dict[str, int]
) -> None:
    """Wait for each child; add its counts, fatal errors, refusals and stop to this run's."""
    for proc, reader in children:
        proc.join()
        if reader.poll():
            with contextlib.suppress(EOFError, OSError):
                message = reader.recv()
                for key, value in message["counts"].items():
                    counts[key] += value
                run.fatal.extend(message["fatal"])
                run.refused.extend(message["refused"])
                if message["stopped"]:
                    run.stop.set()
        elif proc.exitcode not in (0, None):
            run.fatal.append(f"a send worker died (exit status {proc.exitcode}); run `digest send` again")


def _start_workers(run: Run, connections: int, rate: float) -> list[threading.Thread]:
    """This process's share of the connections, as threads sharing one pace (rate 0: none, until
    the relay throttles; see :mod:`digest.delivery.throttle`),
    and, for a DKIM-signed send over several connections, the pool that signs ahead."""
    run.limiter = Pace(rate, connections, run.clock)
    signed = any(p.signer is not None for p in run.prepared.values())
    run.ahead = ThreadPoolExecutor(SIGNING_THREADS, "digest-sign") if signed and connections > 1 else None
    threads = [
        threading.Thread(target=_connection_worker, args=(run, n), daemon=True) for n in range(connections)
    ]
    # Counted before any starts: a connection that ends early with bad mailboxes held waits for
    # the others (RefusalWindow.park), also for those whose thread has not run yet.
    with run.counters.lock:
        run.running += connections
    for t in threads:
        t.start()
    return threads


def _stop_signing(run: Run) -> None:
    """The connections are done: drop what the signing pool has not started, wait for the rest."""
    if run.ahead is not None:
        run.ahead.shutdown(wait=True, cancel_futures=True)
        run.ahead = None


def _connection_worker(run: Run, number: int) -> None:
    try:
        Worker(run, number).loop()
    except DigestError as exc:
        run.fatal.append(str(exc))
        run.stop.set()
        _cut_connections(run)
    except Exception as exc:  # noqa: BLE001 - a worker thread must report, not vanish silently
        run.fatal.append(f"send worker failed: {type(exc).__name__}: {exc}")
        run.stop.set()


def _cut_connections(run: Run) -> None:
    """The run is over: wake the other connections from their waits (their rows are released)."""
    for transport in list(run.live):
        abort = getattr(transport, "abort", None)
        if abort is not None:
            abort()


def _signal_children(children: list[tuple[multiprocessing.Process, Any]]) -> None:
    for proc, _ in children:
        if proc.is_alive() and proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)


def _install_signals(run: Run, children: list[tuple[multiprocessing.Process, Any]]) -> dict[int, Any]:
    """SIGINT/SIGTERM: finish what is in flight, record it, stop. Only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        run.signal = run.signal or signum
        run.stop.set()
        _signal_children(children)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


def _child_main(run: Run, connections: int, rate: float, writer: Any, parent_pid: int) -> None:
    """A worker process: its own stop flag, its own DB connections; dies with the parent."""
    with contextlib.suppress(OSError, AttributeError):
        # If the parent is killed, finish the message in flight and stop (PR_SET_PDEATHSIG).
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    run.stop = threading.Event()
    run.fatal = []
    run.refused = []
    run.counters = Counters()
    if os.getppid() != parent_pid:
        run.stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: run.stop.set())
    threads = _start_workers(run, connections, rate)
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.5)
            if os.getppid() != parent_pid:
                run.stop.set()
    _stop_signing(run)
    writer.send(
        {
            "counts": run.counters.as_dict(),
            "fatal": run.fatal,
            "refused": run.refused,
            "stopped": run.stop.is_set(),
        }
    )
    writer.close()
    if run.fatal:
        sys.exit(3)  # the parent stops the other workers
