"""The step `digest run` takes before it sends: process ``[bounces] source`` when one is set."""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from digest.config import Config
from digest.errors import DigestError


def process_configured_source(
    db: sqlite_utils.Database, config: Config, *, now: datetime | None = None
) -> tuple[str | None, str | None]:
    """Process the configured bounce mailbox; returns (summary line, error line), either None.

    A mailbox that cannot be read is the bounce step's fault only: the error is returned for
    the run to report, and the run still sends (to the list as it stands).
    """
    source = config.bounces.source.strip()
    if not source:
        return None, None
    from digest.bounces.process import process_bounces

    try:
        report = process_bounces(db, config, source, now=now)
    except DigestError as exc:
        return None, f"bounces: {exc}"
    if report.messages == report.already:
        return None, None
    return f"bounces {report.summary()}", None
