"""`digest web serve` under slow clients: partial requests wait in the poller, not in a thread."""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path

from web_process import make_workspace, start_web

PARTIAL_CONNECTIONS = 2000
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def _get(port: int, request: bytes = HEALTHZ) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_a_request_is_answered_quickly_with_2000_partial_requests_open(tmp_path: Path) -> None:
    _raise_fd_limit(PARTIAL_CONNECTIONS + 256)
    web = start_web(make_workspace(tmp_path / "ws"), workers=1)
    port = int(web.url.rsplit(":", 1)[1])
    partial: list[socket.socket] = []
    try:
        for n in range(PARTIAL_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            # Half a request line, or a request line and part of the headers.
            sock.sendall(b"GET /archi" if n % 2 else b"GET /archive HTTP/1.1\r\nHost: x\r\n")
            partial.append(sock)
        time.sleep(0.5)  # let the worker accept them all
        started = time.monotonic()
        reply = _get(port)
        elapsed = time.monotonic() - started
    finally:
        for sock in partial:
            sock.close()
        web.stop()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert elapsed < 1.0, f"answered in {elapsed:.2f} s with {PARTIAL_CONNECTIONS} partial requests open"


def test_a_client_that_trickles_its_request_head_is_cut_at_the_header_deadline(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"), threads=2, timeout=2)  # header deadline 2 s
    port = int(web.url.rsplit(":", 1)[1])
    request = b"GET /archive HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200
    sent = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            try:
                for sent in range(len(request)):  # one byte every 50 ms: never a stall of 2 s
                    sock.sendall(request[sent : sent + 1])
                    time.sleep(0.05)
                    if sent == 5:
                        assert _get(port).startswith(b"HTTP/1.1 200")  # meanwhile, others are served
                hung_up = sock.recv(100) == b""
            except (BrokenPipeError, ConnectionResetError):
                hung_up = True
            elapsed = time.monotonic() - started
    finally:
        log = web.stop()
    assert hung_up
    assert 1.5 < elapsed < 4, f"cut after {elapsed:.1f} s ({sent} bytes sent)"
    assert "closed a connection that stalled mid-request" in log
    assert "Traceback" not in log


def test_kept_alive_connections_and_oversized_heads(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"))
    port = int(web.url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            replies = b""
            for _ in range(3):  # the second and third heads are read in the poller too
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.2)
                replies += sock.recv(65536)
        huge = _get(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
    finally:
        log = web.stop()
    assert replies.count(b"HTTP/1.1 200") == 3, replies
    assert huge.startswith(b"HTTP/1.1 431"), huge[:100]
    assert "Traceback" not in log


def test_a_partial_request_pipelined_behind_a_whole_one_holds_no_thread(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"), threads=2)
    port = int(web.url.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    try:
        for _ in range(4):  # twice the threads: each answers the first request, then waits for the second
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
            held.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        reply = _get(port)
        elapsed = time.monotonic() - started
    finally:
        for sock in held:
            sock.close()
        web.stop()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert elapsed < 1.0, f"answered in {elapsed:.2f} s behind 4 pipelined partial requests"
