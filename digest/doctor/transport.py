"""Does the configured SMTP server answer: connect, EHLO, STARTTLS when asked, AUTH. No message is sent.

The session is the send engine's own (:class:`digest.transports.SMTPTransport`): what the
doctor passes is what a send can do, and its errors are the ones a send would give.
"""

from __future__ import annotations

import ssl

from digest.config import Config
from digest.doctor.check import FAIL, OK, WARN, Check
from digest.errors import DigestError
from digest.transports import (
    LOOPBACK_HOSTS,
    ConnectionLost,
    SMTPTransport,
    TransportError,
    open_transport,
    parse_transport_url,
)


def check_transport(config: Config, *, timeout: float = 10.0) -> Check:
    """Open a session with the transport's server as a send would, then QUIT before MAIL FROM."""

    try:
        spec = parse_transport_url(config.delivery.transport)
    except DigestError as exc:
        return Check("transport", FAIL, str(exc), "fix delivery.transport")
    if spec.scheme in ("maildir", "mbox"):
        return Check(
            "transport",
            WARN,
            f"{spec.describe()} writes files; no mail leaves this machine",
            "set delivery.transport = smtp://USER@HOST:587?starttls=true (or smtps://) for real sends",
        )
    transport = open_transport(config.delivery.transport, config, timeout=timeout)
    assert isinstance(transport, SMTPTransport)
    try:
        transport.connect()
    except TransportError as exc:
        problem, _, fix = str(exc).partition("; ")  # the transport's errors say "what; what to do"
        return Check("transport", FAIL, problem, fix or "fix delivery.transport or the server")
    except ConnectionLost as exc:
        reason = str(exc).removeprefix(f"{transport.where}: ")
        return Check(
            "transport",
            FAIL,
            f"{transport.where} does not answer as an SMTP server ({reason})",
            "check delivery.transport's host and port, and that the server runs",
        )
    try:
        encrypted = isinstance(transport.sock, ssl.SSLSocket)
        offered = "STARTTLS" in transport.extensions
    finally:
        transport.close()
    steps = ["connected with TLS" if spec.scheme == "smtps" else "connected", "EHLO"]
    if spec.starttls:
        steps.append("STARTTLS")
    if transport.user:
        steps.append(f"AUTH as {transport.user}")
    done = ", ".join(steps)
    if not encrypted and spec.host not in LOOPBACK_HOSTS:
        warning = "the session is not encrypted" + (" although the server offers STARTTLS" if offered else "")
        fix = "add ?starttls=true to delivery.transport" if offered else "use smtps:// or STARTTLS"
        return Check("transport", WARN, f"{spec.describe()}: {done}; but {warning}", fix)
    return Check("transport", OK, f"{spec.describe()}: {done} (no message sent)")
