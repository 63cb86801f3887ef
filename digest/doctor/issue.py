"""The latest issue: its size against the clipping budget, and SpamAssassin's score when installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from digest.compose.issues import newest_issue
from digest.config import Config
from digest.doctor.check import FAIL, OK, WARN, Check
from digest.errors import DigestError
from digest.mail.preview import preview_issue
from digest.render.size_budget import html_budget_size
from digest.render.variants import current_variant
from digest.render.wire import link_room
from digest.store.database import open_store

GMAIL_CLIP_BYTES = 102 * 1024
"""Gmail shows "[Message clipped]" past about this much HTML."""
SPAM_THRESHOLD = 5.0  # SpamAssassin's default required_score
SPAM_WARNING = 2.5


def check_latest_issue(config: Config, *, timeout: float = 120.0) -> list[Check]:
    """Size and spam score of the most recently built issue (all categories, sample recipient).

    Opens an existing database only (never creates one).
    """
    if config.store_file is not None and not config.store_file.exists():
        return [
            Check(
                "issue_size", WARN, "no database yet, so no issue to measure", "digest issues build EDITION"
            )
        ]

    db = open_store(config.store)
    try:
        row = newest_issue(db)
        if row is None:
            return [
                Check(
                    "issue_size",
                    WARN,
                    "no issue built yet, nothing to measure",
                    "digest issues build EDITION",
                )
            ]
        issue_id, edition, number = row
        label = f"{edition}/{number} (id {issue_id})"
        try:
            size = _size_check(db, config, issue_id, label)
            spam = _spam_check(db, config, issue_id, label, timeout)
        except DigestError as exc:
            return [Check("issue_size", FAIL, f"issue {label} does not render: {exc}", "fix the templates")]
        return [size, spam]
    finally:
        db.conn.close()


def _size_check(db, config: Config, issue_id: int, label: str) -> Check:

    rendered = current_variant(db, config, issue_id, "*")
    size = html_budget_size(rendered.html, url_chars=link_room(config.publication.base_url))
    shown = (
        f"issue {label}: {size / 1000:.1f} KB of HTML (budget {config.render.max_html_bytes / 1000:.0f} KB"
    )
    shown += f", Gmail clips at {GMAIL_CLIP_BYTES / 1000:.0f} KB)"
    if size > GMAIL_CLIP_BYTES:
        return Check(
            "issue_size", FAIL, shown + ": Gmail will clip it", "lower max_articles or render.max_html_bytes"
        )
    if rendered.trimmed:
        return Check(
            "issue_size",
            WARN,
            f"{shown}; {rendered.trimmed} article(s) moved to the web version to fit",
            "lower the edition's max_articles if you want them all in the email",
        )
    return Check("issue_size", OK, shown)


def _spam_check(db, config: Config, issue_id: int, label: str, timeout: float) -> Check:
    command = shutil.which("spamassassin")
    if command is None:
        return Check(
            "spamassassin",
            WARN,
            "spamassassin is not installed; score not checked",
            "apt-get install spamassassin",
        )

    message = preview_issue(db, config, issue_id, fmt="eml").content
    with tempfile.TemporaryDirectory(prefix="digest-doctor-sa-") as home:
        try:
            report = subprocess.run(
                [command, "-L", "-t"],  # -L: local tests only, no network lookups
                input=message,
                capture_output=True,
                env={**os.environ, "HOME": home},
                timeout=timeout,
            ).stdout.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            return Check(
                "spamassassin", WARN, f"spamassassin gave no score within {timeout:g}s", "run it by hand"
            )
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.MULTILINE)
    if status is None:
        return Check(
            "spamassassin", WARN, "spamassassin printed no score", "run `spamassassin -t` on a preview"
        )
    score = float(status.group(1))
    rules = re.findall(r"^\s*(\d+\.\d+)[ \t]+([A-Z0-9_]+)\s", report, re.MULTILINE)
    worst = ", ".join(
        f"{name} {points}" for points, name in sorted(rules, reverse=True)[:3] if float(points) > 0
    )
    shown = f"issue {label} scores {score:g}" + (f" ({worst})" if worst else "")
    fix = "see `digest preview --format eml | spamassassin -t` for the rules that fired"
    if score >= SPAM_THRESHOLD:
        return Check("spamassassin", FAIL, shown + f": at or over {SPAM_THRESHOLD:g}, it goes to spam", fix)
    if score >= SPAM_WARNING:
        return Check("spamassassin", WARN, shown, fix)
    return Check("spamassassin", OK, shown)
