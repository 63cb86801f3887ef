"""Keep tokens out of every log line, however the request spelled its path.

A token is the authority to unsubscribe, confirm or change preferences, so an
access log that kept one would let anybody who reads the log act for the reader.
Paths are not trusted to be tidy: ``//unsubscribe//TOKEN``, ``/%75nsubscribe/TOKEN``
and malformed request lines must all come out redacted. Two passes, both on the
percent-decoded text: every segment after a token route is cut, and anything
that looks like a token (a long run of base64url characters) is cut wherever it is.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

TOKEN_ROUTES = ("confirm", "unsubscribe", "preferences", "test", "signin")
_TOKEN_IN_PATH = re.compile(r"(/(?:confirm|unsubscribe|preferences)/)[^/?#\s]+")
_ROUTE_TAIL = re.compile(r"(/+(?:" + "|".join(TOKEN_ROUTES) + r")/+)[^\s\"?#]*", re.IGNORECASE)
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_.%-]*[A-Za-z0-9_-]{20,}[A-Za-z0-9_.%-]*")


def is_token_path(path: str) -> bool:
    """True for a path that carries a token (``/unsubscribe/<token>`` and friends)."""
    return bool(_TOKEN_IN_PATH.match(path))


def redact_path(path: str) -> str:
    """``/unsubscribe/<token>`` → ``/unsubscribe/…``: tokens stay out of access logs.

    Works on any text (a path, a whole request line, an error message): it is
    percent-decoded first (twice, for double encoding), then every token route's
    tail and every token-like run of characters is replaced by ``…``.
    """
    text = unquote(unquote(path, errors="replace"), errors="replace")
    text = _ROUTE_TAIL.sub(r"\1…", text)
    return _TOKEN_LIKE.sub("…", text)


class RedactingFilter(logging.Filter):
    """A logging filter that formats the record and redacts tokens from the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its redacted text (always keeps the record)."""
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        record.msg = redact_path(text)
        record.args = None
        if record.exc_text:
            record.exc_text = redact_path(record.exc_text)
        return True
