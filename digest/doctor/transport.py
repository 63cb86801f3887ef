"""Does the configured transport work: the transport's own doctor check, nothing sent.

The check is a capability of the transport (:attr:`Capabilities.doctor_check`): for SMTP
the send engine's own session (connect, EHLO, STARTTLS when asked, AUTH, then QUIT), so
what the doctor passes is what a send can do; a file or memory transport warns that no
mail leaves the machine.
"""

from __future__ import annotations

from digest.config import Config
from digest.doctor.check import FAIL, OK, Check
from digest.errors import DigestError
from digest.mail.transports.registry import capabilities, parse_transport_url


def check_transport(config: Config, *, timeout: float = 10.0) -> Check:
    """Run the configured transport's doctor check (a FAIL when its URL does not parse)."""
    try:
        spec = parse_transport_url(config.delivery.transport)
        check = capabilities(config.delivery.transport).doctor_check
    except DigestError as exc:
        return Check("transport", FAIL, str(exc), "fix delivery.transport")
    if check is None:
        return Check("transport", OK, f"{spec.describe()}: nothing to try before a send")
    status, detail, fix = check(spec, config, timeout)
    return Check("transport", status, detail, fix)
