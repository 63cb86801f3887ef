"""`digest doctor`: check a workspace before the first real send, one line per check.

Each check is one function in a module of this package (setup, transport, dns, sender,
issue, web, dmarc) that takes plain values and returns a :class:`~digest.doctor.check.Check` (defined in
``check``, with ``OK``/``WARN``/``FAIL``); :func:`run_doctor` is the one entry point and
decides the order. Nothing here sends a message or changes a row.
"""

from __future__ import annotations

from collections.abc import Callable

from digest.config import Config
from digest.doctor import dmarc, dns, issue, sender, setup, transport, web
from digest.doctor.check import FAIL, OK, Check
from digest.errors import DigestError, NoWorkspace


def run_doctor(
    load: Callable[[], Config],
    *,
    resolver: str | None = None,
    timeout: float = 10.0,
    debug: bool = False,
    sending_ip: str | None = None,
) -> list[Check]:
    """Run every check for the configuration ``load`` gives; returns them in order.

    ``resolver`` is a DNS server (``HOST[:PORT]``) to ask instead of the system's;
    ``sending_ip`` the public address mail leaves from (else the one that reaches the relay).
    A configuration that does not load is the only finding then.
    """
    try:
        config = load()
    except NoWorkspace:
        fix = "run `digest init`, or pass --config FILE"
        return [Check("config", FAIL, "no digest.toml here or above", fix)]
    except DigestError as exc:
        return [Check("config", FAIL, str(exc), "correct the file, or run `digest init` to make one")]
    steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
        ("base_url", lambda: setup.check_base_url(config)),
        ("secrets", lambda: setup.check_secrets(config)),
        ("file_modes", lambda: setup.check_file_modes(config)),
        ("transport", lambda: transport.check_transport(config, timeout=timeout)),
        ("dns", lambda: dns.check_dns(config, resolver=resolver, timeout=timeout)),
        (
            "sending_host",
            lambda: sender.check_sending_host(config, address=sending_ip, resolver=resolver, timeout=timeout),
        ),
        ("issue_size", lambda: issue.check_latest_issue(config, timeout=max(timeout, 120.0))),
        ("web", lambda: web.check_web(config, timeout=timeout)),
        ("dmarc", lambda: dmarc.check_dmarc(config)),
    ]
    checks = [Check("config", OK, f"{config.source} loads")]
    for name, step in steps:
        try:
            found = step()
        except DigestError as exc:
            found = Check(name, FAIL, str(exc), "correct what it names and run `digest doctor` again")
        except Exception as exc:
            found = Check(
                name,
                FAIL,
                f"the check itself failed ({type(exc).__name__}: {exc})",
                "run with --debug for a traceback and report it",
            )
            if debug:
                raise
        checks.extend(found if isinstance(found, list) else [found])
    return checks


def failed(checks: list[Check]) -> bool:
    """True when any check failed (the command then exits 1)."""
    return any(check.status == FAIL for check in checks)
