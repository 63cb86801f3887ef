"""`digest web serve` under load it must survive: idle connections, and token-shaped paths in its logs."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from web_process import make_workspace, start_web

IDLE_CONNECTIONS = 2000
TOKEN = "7.ZmFrZVRva2VuQnV0TG9uZ0Vub3VnaFRvTG9va0xpa2VPbmVB"


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def test_a_request_is_answered_quickly_with_2000_idle_connections_open(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"), workers=1)
    port = int(web.url.rsplit(":", 1)[1])
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.3)  # let the worker accept them all
        started = time.monotonic()
        reply = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        elapsed = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
        web.stop()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert elapsed < 1.0, f"answered in {elapsed:.2f} s with {IDLE_CONNECTIONS} idle connections open"


def test_the_logs_never_contain_a_token_however_the_path_is_spelled(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"))
    port = int(web.url.rsplit(":", 1)[1])
    encoded = "".join(f"%{ord(c):02X}" for c in TOKEN)
    spellings = [
        f"/unsubscribe/{TOKEN}",
        f"//unsubscribe//{TOKEN}",
        f"/%75nsubscribe/{TOKEN}",
        f"/UNSUBSCRIBE/{TOKEN}",
        f"/unsubscribe/{encoded}",
        f"/preferences/{TOKEN}?saved=1",
        f"/confirm/{TOKEN}/extra",
        f"/issues/1/test/{TOKEN}",
        f"/nowhere/{TOKEN}",
    ]
    try:
        for path in spellings:
            _raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        # Malformed request lines: gunicorn logs these itself, before the app sees them.
        _raw(port, f"GET /unsubscribe/{TOKEN} HTTP/1.1 junk\r\n\r\n".encode())
        _raw(port, f"GET /unsubscribe/{TOKEN}\r\n\r\n".encode())
        _raw(port, f"BREW /confirm/{TOKEN} HTTP/9.9\r\n\r\n".encode())
    finally:
        log = web.stop()
    assert "GET //unsubscribe//… HTTP/1.1" in log or "GET //unsubscribe//…" in log
    for piece in (TOKEN, TOKEN[2:], TOKEN[2:30], encoded[:30]):
        assert piece not in log, log


def test_a_client_that_stalls_mid_request_is_cut_off_after_the_timeout(tmp_path: Path) -> None:
    web = start_web(make_workspace(tmp_path / "ws"), threads=2, timeout=1)
    port = int(web.url.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(3):  # more than the threads: each holds one until the timeout
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /archive HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            stalled.append(sock)
        started = time.monotonic()
        reply = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        elapsed = time.monotonic() - started
        closed = [sock.recv(100) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
        log = web.stop()
    assert reply.startswith(b"HTTP/1.1 200")
    assert elapsed < 10, elapsed  # a few timeouts of 1 s at most, never the stalled clients' pace
    assert closed == [b"", b"", b""]  # the server hung up on each
    assert "closed a connection that stalled mid-request" in log
    assert "Traceback" not in log
