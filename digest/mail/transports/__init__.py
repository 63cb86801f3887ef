"""Transports: send one prepared message to one recipient, then close.

Chosen by URL from a registry (:data:`~digest.mail.transports.registry.TRANSPORTS`)::

    smtp://[user@]host:port[?starttls=true]   plain SMTP, optionally upgraded (STARTTLS required then)
    smtps://[user@]host:port                  SMTP over TLS from the first byte
    maildir:PATH                              write into a maildir (no server needed)
    mbox:PATH                                 append to an mbox file
    memory:NAME                               keep in a list in this process (tests)

Entry points: :func:`open_transport` (a URL → an open transport), :func:`capabilities`
(what it can do: real mail, connections, forking, size limit, doctor check — asked
instead of the scheme), :func:`parse_transport_url`, :func:`transport_for_display`.

- :mod:`~digest.mail.transports.base` — :class:`Reply`, the errors, :class:`TransportSpec`,
  :class:`Capabilities`, the :class:`Transport` interface and :class:`TransportBase`.
- :mod:`~digest.mail.transports.registry` — the scheme → class registry and the URL questions.
- :mod:`~digest.mail.transports.smtp` — :class:`SMTPTransport` (on ``smtp_session``, ``smtp_wire``).
- :mod:`~digest.mail.transports.files` — maildir and mbox.
- :mod:`~digest.mail.transports.memory` — ``memory:NAME`` and its :func:`outbox` for tests.

Adding a transport: one module defining a :class:`TransportBase` subclass with its
:class:`Capabilities`, and one line in ``TRANSPORTS``.
"""

from __future__ import annotations

from digest.mail.transports.base import (
    Capabilities,
    ConnectionLost,
    Reply,
    Transport,
    TransportError,
    TransportSpec,
    make_reply,
)
from digest.mail.transports.registry import (
    capabilities,
    default_transport_url,
    open_transport,
    parse_transport_url,
    transport_for_display,
)
from digest.mail.transports.smtp import SMTPTransport

__all__ = [
    "Capabilities",
    "ConnectionLost",
    "Reply",
    "SMTPTransport",
    "Transport",
    "TransportError",
    "TransportSpec",
    "capabilities",
    "default_transport_url",
    "make_reply",
    "open_transport",
    "parse_transport_url",
    "transport_for_display",
]
