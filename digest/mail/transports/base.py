"""What every transport shares: the reply, the errors, the parsed URL and the capabilities.

A transport module defines one class with a :class:`Capabilities` (what the rest of
digest asks instead of the URL scheme) and the classmethods :meth:`TransportBase.parse`
and :meth:`TransportBase.open`; :mod:`digest.mail.transports.registry` names it by scheme.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from digest.config import Config
from digest.errors import DigestError

__all__ = [
    "REAL_SENDS_HINT",
    "URL_HINT",
    "Capabilities",
    "ConnectionLost",
    "Probe",
    "Reply",
    "Transport",
    "TransportBase",
    "TransportError",
    "TransportSpec",
    "make_reply",
    "without_userinfo",
]

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
URL_HINT = "use smtp://[user@]host:port[?starttls=true], smtps://host:port, maildir:PATH or mbox:PATH"
"""What a transport URL error suggests."""
REAL_SENDS_HINT = "set delivery.transport = smtp://USER@HOST:587?starttls=true (or smtps://) for real sends"
"""What the doctor suggests for a transport that sends no real mail (files, memory)."""
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?")


@dataclass(frozen=True)
class Reply:
    """A server's answer to one message: code, enhanced status code and text."""

    code: int
    text: str = ""
    enhanced: str | None = None
    stage: str = "data"  # mail / rcpt / data / message: where the answer came from

    @property
    def ok(self) -> bool:
        """True for a 2xx reply (accepted)."""
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        """True for a 4xx reply (try again later)."""
        return 400 <= self.code < 500

    def describe(self) -> str:
        """One line: ``550 5.1.1 no such user``."""
        parts = [str(self.code)]
        if self.enhanced and not self.text.startswith(self.enhanced):
            parts.append(self.enhanced)
        if self.text:
            parts.append(self.text)
        return " ".join(parts)


def make_reply(code: int, lines: list[str], stage: str) -> Reply:
    """Build a :class:`Reply` from a code and its text lines, parsing any enhanced code."""
    text = lines[0].strip() if len(lines) == 1 else " ".join(line.strip() for line in lines if line.strip())
    m = _ENHANCED.match(text)
    return Reply(code=code, text=text[:500], enhanced=m.group(0) if m else None, stage=stage)


class TransportError(DigestError):
    """A problem that stops the whole run (bad credentials, refused greeting, no TLS...).

    Rows that were not sent stay queued; the message says what to fix.
    """


class ConnectionLost(Exception):
    """The connection broke or timed out; reconnect and try the message again."""


class Transport(Protocol):
    """Send one prepared message to one recipient; close when done."""

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Deliver ``message`` (CRLF line endings) to ``recipient``; return the server's reply.

        ``dot_safe``: the caller guarantees no line starts with ".", so SMTP dot-stuffing
        (a scan of the whole message) is skipped. Raises :class:`ConnectionLost` when the
        connection broke (the caller retries on a new transport) and :class:`TransportError`
        when the run must stop.
        """
        ...

    def close(self) -> None:
        """Release the connection or file."""
        ...

    def message_limit(self) -> int | None:
        """The largest message in bytes this transport accepts now, or None for no limit."""
        ...


@dataclass(frozen=True)
class TransportSpec:
    """A parsed transport URL: a server (host, port, user, starttls) or a ``path``."""

    scheme: str
    host: str = ""
    port: int = 0
    user: str = ""
    starttls: bool = False
    path: str = ""

    def describe(self) -> str:
        """The URL without secrets, for messages."""
        if not self.host:
            return f"{self.scheme}:{self.path}"
        user = f"{self.user}@" if self.user else ""
        tls = "?starttls=true" if self.starttls else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}{tls}"


class Probe(NamedTuple):
    """What a transport's doctor check found: ``status`` is ``ok``, ``warn`` or ``fail``
    (the doctor's own words), ``detail`` what was seen, ``fix`` what to do about it."""

    status: str
    detail: str
    fix: str = ""


DoctorCheck = Callable[[TransportSpec, Config, float], Probe]
"""``check(spec, config, timeout)``: try the transport as a send would, sending nothing."""


@dataclass(frozen=True)
class Capabilities:
    """What a transport can do: every question about a transport is asked of these.

    ``sends_real_mail``: messages reach readers, so the public https ``base_url`` is
    required (a send refuses, the doctor fails) and size limits apply.
    ``max_connections``: most connections worth opening at once (None: as configured).
    ``forks_ok``: a big send may split over worker processes, each opening its own.
    ``size_limit``: the largest message in bytes it takes (None: no fixed limit; an SMTP
    relay's EHLO SIZE is read per connection by :meth:`TransportBase.message_limit`).
    ``doctor_check``: what ``digest doctor`` runs for it (None: nothing to try).
    """

    sends_real_mail: bool
    max_connections: int | None = None
    forks_ok: bool = True
    size_limit: int | None = None
    doctor_check: DoctorCheck | None = None


class TransportBase:
    """The class side of a transport: its capabilities, how its URL is read and opened."""

    capabilities: ClassVar[Capabilities]

    @classmethod
    def parse(cls, scheme: str, url: str, shown: str) -> TransportSpec:
        """Read ``url`` (its ``scheme`` lower-cased; ``shown`` is the URL safe to print);
        raise DigestError naming what is wrong."""
        raise NotImplementedError

    @classmethod
    def open(cls, spec: TransportSpec, config: Config, timeout: float | None) -> Transport:
        """A transport for ``spec``; relative paths resolve against the config folder."""
        raise NotImplementedError

    @classmethod
    def destination(cls, spec: TransportSpec, config: Config) -> str | None:
        """Where ``spec`` delivers, comparable between two URLs; None: the URL itself says it."""
        return None

    def message_limit(self) -> int | None:
        """The largest message in bytes accepted now (the declared ``size_limit`` by default)."""
        return self.capabilities.size_limit


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` part removed, for error messages."""
    if "@" not in url:
        return url
    prefix = _SCHEME_PREFIX.match(url)
    head = prefix.group(0) if prefix else ""
    return head + url[len(head) :].rpartition("@")[2]
