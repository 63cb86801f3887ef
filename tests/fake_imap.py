"""A misbehaving IMAP server for tests: just enough IMAP (greeting, CAPABILITY, LOGIN, SELECT,
UID SEARCH, UID FETCH, LOGOUT) on 127.0.0.1 at a free port, with one way to misbehave:

``trickle``   answers FETCH with a message sent one byte a second (for ``trickle_bytes`` bytes)
``long_line`` answers UID SEARCH with one line of ``line_bytes`` bytes
``literal``   announces a FETCH literal of ``literal_bytes`` bytes and sends it in 64 KB chunks
              for as long as the client reads (``sent`` counts what went out)
``bad_select`` answers SELECT with BAD

Every loop is bounded, so a client that never gives up still ends. (No tests here.)
"""

from __future__ import annotations

import socketserver
import threading
import time
from typing import Any

MESSAGE = (
    b"From: MAILER-DAEMON@relay.example\r\nTo: bounces@news.example.org\r\n"
    b"Subject: Delivery Status Notification\r\nMessage-ID: <fake-imap@relay.example>\r\n\r\nhello\r\n"
)


class _Handler(socketserver.StreamRequestHandler):
    server: FakeImapServer

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def handle(self) -> None:
        self.server.connections += 1
        self.send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
        for _ in range(100):  # commands per connection
            line = self.rfile.readline(10_000)
            if not line:
                return
            tag, _, rest = line.strip().partition(b" ")
            command = rest.upper()
            if not self.answer(tag, command):
                return

    def answer(self, tag: bytes, command: bytes) -> bool:
        mode = self.server.mode
        if command.startswith(b"CAPABILITY"):
            self.send(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
        elif command.startswith(b"LOGIN"):
            self.send(tag + b" OK logged in\r\n")
        elif command.startswith(b"SELECT"):
            if mode == "bad_select":
                self.send(tag + b" BAD no such thing here\r\n")
            else:
                self.send(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n" + tag + b" OK [READ-WRITE] done\r\n")
        elif command.startswith(b"UID SEARCH"):
            if mode == "long_line":
                self.send(b"* SEARCH " + b"1 " * (self.server.line_bytes // 2) + b"\r\n")
            else:
                self.send(b"* SEARCH 1\r\n")
            self.send(tag + b" OK done\r\n")
        elif command.startswith(b"UID FETCH"):
            return self.fetch(tag)
        elif command.startswith(b"LOGOUT"):
            self.send(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            return False
        else:
            self.send(tag + b" OK done\r\n")
        return True

    def fetch(self, tag: bytes) -> bool:
        mode = self.server.mode
        if mode == "trickle":
            size = self.server.trickle_bytes
            self.send(b"* 1 FETCH (UID 1 BODY[]<0> {%d}\r\n" % size)
            for byte in (MESSAGE * (size // len(MESSAGE) + 1))[:size]:
                self.send(bytes([byte]))
                time.sleep(1)
        elif mode == "literal":
            size = self.server.literal_bytes
            self.send(b"* 1 FETCH (UID 1 BODY[]<0> {%d}\r\n" % size)
            chunk = b"x" * 65536
            while self.server.sent < size:
                piece = chunk[: size - self.server.sent]
                self.send(piece)  # raises once the client has gone
                self.server.sent += len(piece)
        else:
            self.send(b"* 1 FETCH (UID 1 BODY[]<0> {%d}\r\n" % len(MESSAGE) + MESSAGE)
        self.send(b")\r\n" + tag + b" OK done\r\n")
        return True


class FakeImapServer(socketserver.ThreadingTCPServer):
    """Use as a context manager; ``port`` is where it listens."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, **settings: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.trickle_bytes = settings.get("trickle_bytes", 120)
        self.line_bytes = settings.get("line_bytes", 2_000_000)
        self.literal_bytes = settings.get("literal_bytes", 300_000_000)
        self.sent = 0
        self.connections = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer is what the tests expect: no traceback on stderr."""

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> FakeImapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
