"""The gunicorn worker ``digest web serve`` runs: request heads are read in the poller.

gunicorn's stock ``gthread`` worker gives a connection to a thread as soon as
its first bytes arrive; the thread then blocks until the whole request head is
in. 2,000 clients that each send half a request line therefore hold every
thread until the request timeout, and a normal request waits behind them.

:class:`HeadFirstWorker` keeps each connection (new or kept alive) in the
poller and reads its request head there, without blocking, into a buffer.
Only when the blank line that ends the head has arrived does the connection go
to a thread, with the buffered bytes handed to gunicorn's parser as if just
read. A head must be complete within the header deadline from the moment the
connection is accepted (or, kept alive, sends its next first byte); a client
that sends nothing, or trickles, is closed at that deadline by the poller. A
head larger than :data:`MAX_HEAD_BYTES` is answered 431 and closed.

The request body is still read by the thread, bounded by the socket timeout
(the request timeout) set on every accepted socket.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import selectors
import socket
import struct
import time
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

MAX_HEAD_BYTES = 64 * 1024  # gunicorn's own limits (request line, 50 fields) fit well inside
HEADER_SECONDS = 10.0  # the header deadline, at most; never longer than the request timeout
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class _Head:
    """The part of a request head read so far, and when it must be complete."""

    __slots__ = ("buffer", "deadline", "done")

    def __init__(self, deadline: float) -> None:
        self.buffer = bytearray()
        self.deadline = deadline
        self.done = False


class HeadFirstWorker(ThreadWorker):
    """The ``gthread`` worker, except that a thread gets a connection only with a whole request head."""

    request_timeout: float = 30.0  # set by serve() in the master; forked workers inherit it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[int, tuple[TConn, _Head]] = {}
        self._deadlines: list[tuple[float, int, TConn, _Head]] = []
        self._order = itertools.count()

    @property
    def header_seconds(self) -> float:
        """How long a request head may take to arrive (the request timeout, at most 10 s)."""
        return min(HEADER_SECONDS, self.request_timeout)

    def accept(self, listener: socket.socket) -> None:
        """Accept one connection and read its request head in the poller."""
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        _limit_stalls(client, self.request_timeout)
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        self._read_head(conn, registered=False)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection sends again: read its next head in the poller too."""
        self.keepalived_conns.remove(conn)
        self._read_head(conn, registered=True)

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        """After a kept-alive response: bytes the client pipelined behind it (read ahead by the
        parser) start the next head in the poller too, instead of in a thread that would wait
        for the rest of it."""
        if self.alive and not fs.cancelled() and fs.exception() is None and fs.result() is True:
            pending = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
            if pending and not conn.is_http2:
                conn.sock.setblocking(False)
                self._read_head(conn, registered=False, pending=pending)
                return
            if pending:
                conn.parser.unreader.unread(pending)
        super().finish_request(conn, fs)

    def _read_head(self, conn: TConn, *, registered: bool, pending: bytes = b"") -> None:
        """Start reading a head (``pending``: bytes of it already read). What has arrived is read
        at once: a request that came whole goes to a thread without waiting in the poller."""
        head = _Head(time.monotonic() + self.header_seconds)
        head.buffer += pending
        if not _complete(head.buffer) and not self._receive(conn, head):
            if registered:
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()
            return
        if _complete(head.buffer) or len(head.buffer) > MAX_HEAD_BYTES:
            if registered:
                self.poller.unregister(conn.sock)
            self._head_read(conn, head)
            return
        # Not all here yet: wait in the poller, until the deadline at most.
        self._heads[id(conn)] = (conn, head)
        heapq.heappush(self._deadlines, (head.deadline, next(self._order), conn, head))
        callback = partial(self._on_head_bytes, conn, head)
        if registered:  # a kept-alive connection: still in the poller, under its old callback
            self.poller.modify(conn.sock, selectors.EVENT_READ, callback)
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ, callback)

    def _receive(self, conn: TConn, head: _Head) -> bool:
        """Add what the socket holds to ``head``; False when the client has hung up."""
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        head.buffer += data
        return bool(data)

    def _on_head_bytes(self, conn: TConn, head: _Head, _sock: socket.socket) -> None:
        if not self._receive(conn, head):  # the client hung up before finishing its request
            self._drop(conn, head)
        elif _complete(head.buffer) or len(head.buffer) > MAX_HEAD_BYTES:
            self._forget(conn, head)
            self._head_read(conn, head)

    def _head_read(self, conn: TConn, head: _Head) -> None:
        """The head is whole (to a thread) or too large (431); ``conn`` is out of the poller."""
        head.done = True
        if not _complete(head.buffer):
            with contextlib.suppress(OSError):
                conn.sock.send(_TOO_LARGE)
            self.nr_conns -= 1
            conn.close()
            return
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(head.buffer))
        conn.data_ready = True
        self.enqueue_req(conn)

    def _forget(self, conn: TConn, head: _Head) -> None:
        head.done = True
        self._heads.pop(id(conn), None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _drop(self, conn: TConn, head: _Head) -> None:
        self._forget(conn, head)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Close connections whose request head is past its deadline (and gunicorn's own pending ones)."""
        super().murder_pending()
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, conn, head = heapq.heappop(self._deadlines)
            if head.done:  # handed to a thread, or closed, before its deadline
                continue
            if head.buffer:
                self.log.info("closed a connection that stalled mid-request")
            self._drop(conn, head)
        if not self.alive:  # stopping: a connection that has sent nothing yet is not waited for
            for conn, head in list(self._heads.values()):
                if not head.buffer:
                    self._drop(conn, head)

    def run(self) -> None:
        """gunicorn's loop; on the way out, connections still sending a head are closed."""
        try:
            super().run()
        finally:
            for conn, head in list(self._heads.values()):
                head.done = True
                conn.close()
            self._heads.clear()
            self._deadlines.clear()


def _complete(buffer: bytearray) -> bool:
    """Whether ``buffer`` holds a whole request head (the blank line after the headers)."""
    return b"\r\n\r\n" in buffer or b"\n\n" in buffer


def _limit_stalls(sock: socket.socket, seconds: float) -> None:
    """A kernel receive/send timeout: a thread reading a stalled body gets an error, not a hang.

    (The worker switches the socket to blocking mode, which clears Python's own timeout.)
    """
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
