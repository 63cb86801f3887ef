"""How big and how deep a message from the bounce mailbox may be before it is parsed.

The standard library's MIME parser, and everything that walks its tree
(``walk()``, ``as_bytes()``, flufl.bounce), recurses once per nesting level: a
message nested 1,000 deep (68 KB) raises ``RecursionError``. So a message is
measured first, without recursion, and refused when it is larger than
:data:`MAX_MESSAGE_BYTES` or nested deeper than :data:`MAX_DEPTH`
(:func:`scan_depth` reads the MIME structure line by line with an explicit
stack); the tree the parser builds is measured again (:func:`tree_depth`) in
case the scan read a header differently from the parser. A refused message is
moved to the ``rejected`` folder by :mod:`digest.bounces.process`.
"""

from __future__ import annotations

import email.message
import re

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a real bounce quotes at most a few hundred KB
MAX_DEPTH = 20  # a DSN quoting a multipart/alternative original is 3 deep

# Reading a mailbox: its folders, the IMAP session's limits, how much of one message is read.
IMAP_PASSWORD_ENV = "DIGEST_IMAP_PASSWORD"
PROCESSED = "processed"
REJECTED = "rejected"
IMAP_TIMEOUT = 30.0  # one socket operation
IMAP_DEADLINE = 60.0  # one whole pass, unless [bounces] deadline says otherwise
IMAP_MAX_LINE = 1_000_000  # bytes of one response line (a SEARCH of 100,000 UIDs is 700 KB)
READ_LIMIT = MAX_MESSAGE_BYTES + 1  # bytes read of one message: one more than may be parsed

# What the parser takes for a header line (email.feedparser.headerRE), and a continuation.
_HEADER = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:", re.IGNORECASE)


class RefusedMessage(Exception):
    """A message too large or too deeply nested to parse; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def size_text(limit: int) -> str:
    """``10 MB`` for 10 MiB."""
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"


def check_size(data: bytes) -> None:
    """Raise :class:`RefusedMessage` when ``data`` is over :data:`MAX_MESSAGE_BYTES`."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise RefusedMessage(f"larger than {size_text(MAX_MESSAGE_BYTES)}")


def check_depth(depth: int) -> None:
    """Raise :class:`RefusedMessage` when ``depth`` is over :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise RefusedMessage(f"nested {depth} deep (limit {MAX_DEPTH})")


class _Scan:
    """The state of :func:`scan_depth`: open multiparts (an explicit stack) and the header block read."""

    def __init__(self) -> None:
        self.stack: list[tuple[bytes, int, bool]] = []  # (separator, depth of the multipart, digest?)
        self.where: dict[bytes, list[int]] = {}  # separator → its indexes in the stack
        self.deepest = 0
        self.headers: list[bytes] | None = []  # None: in a body
        self.depth = 0  # of the header block being read
        self.in_digest = False  # the block is a part of a multipart/digest (default message/rfc822)

    def boundary(self, line: bytes) -> bool:
        """When ``line`` is a boundary of an open multipart: close what it closes, start a part."""
        text = line.rstrip(b" \t")
        closing = False
        indexes = self.where.get(text)
        if not indexes and text.endswith(b"--"):
            indexes, closing = self.where.get(text[:-2]), True
        if not indexes:
            return False
        index = indexes[-1]
        _separator, depth, digest = self.stack[index]
        keep = index if closing else index + 1
        while len(self.stack) > keep:
            separator, _depth, _digest = self.stack.pop()
            self.where[separator].pop()
        self.headers = None if closing else []
        self.depth, self.in_digest = depth + 1, digest
        self.deepest = max(self.deepest, self.depth)
        return True

    def end_headers(self) -> None:
        """The header block is read: open what its Content-Type opens."""
        lines, self.headers = self.headers or [], None
        value: bytes | None = None
        for i, line in enumerate(lines):
            if _CONTENT_TYPE.match(line):
                value = line.split(b":", 1)[1]
                for more in lines[i + 1 :]:
                    if more[:1] not in (b" ", b"\t"):
                        break
                    value += b" " + more.strip()
                break
        part = email.message.Message()
        if value is not None:
            part["Content-Type"] = value.decode("ascii", "surrogateescape").strip()
        elif self.in_digest:
            part.set_default_type("message/rfc822")
        maintype = part.get_content_maintype()
        if maintype == "multipart":
            boundary = part.get_boundary()
            if boundary is not None:
                separator = b"--" + boundary.encode("utf-8", "surrogateescape")
                self.where.setdefault(separator, []).append(len(self.stack))
                self.stack.append((separator, self.depth, part.get_content_subtype() == "digest"))
        elif maintype == "message":
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)
            if part.get_content_type() != "message/delivery-status":
                self.headers, self.in_digest = [], False


def scan_depth(data: bytes) -> int:
    """How deep the MIME parts of ``data`` nest (0: not multipart), read without recursion."""
    scan = _Scan()
    for line in data.splitlines():
        if line.startswith(b"--") and scan.boundary(line):
            continue
        if scan.headers is None:
            continue
        if not line or not _HEADER.match(line):
            scan.end_headers()
            continue
        scan.headers.append(line)
    if scan.headers is not None:
        scan.end_headers()
    return scan.deepest


def tree_depth(msg: email.message.Message) -> int:
    """How deep the parsed ``msg`` nests (0: not multipart), walked with an explicit stack."""
    deepest = 0
    stack = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if part.is_multipart():
            payload = part.get_payload()
            stack.extend((p, depth + 1) for p in payload if isinstance(p, email.message.Message))
    return deepest
