"""Approval in a scheduled run: review links before the send time, and only approved issues out.

For an edition with ``approval = "required"``:

- :func:`prepare_reviews`: from ``review_before`` ahead of its next scheduled time, the run
  builds that issue's draft (unless one was discarded for it) and mails every address in
  ``[publication] editors`` a signed review link to the desk, once, through the outbox
  (sent at the end of the run, retried by later runs).
- :func:`may_send`: at send time an approved draft is sent; an unapproved one is held
  ("daily/3 waits for approval (review: <link>)", the run exits 1, and every later run says
  the same until it is approved or discarded), or with ``on_timeout = "send"`` it goes out as
  built and the run says so. :func:`held_drafts` finds those past their time (at any age),
  so an issue approved hours late is still sent by the next run.

For an edition without approval, :func:`refresh_early_build` selects the stories of a draft
built ahead of its time again from its window before it is sent (unless it is locked).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from digest.compose.build import compose_issue
from digest.compose.editing import rebuild_issue
from digest.compose.history import period_discarded
from digest.compose.issues import (
    drafts_due,
    issue_by_id,
    issue_ending,
    issue_name,
    mark_review_mailed,
    story_count,
)
from digest.compose.review_links import desk_url, review_url
from digest.config import Config, Edition, parse_duration
from digest.errors import DigestError
from digest.localtime import next_fire_time
from digest.mail.outbox import queue_message
from digest.schedule.run_report import Built, RunReport
from digest.store.database import from_iso, iso, transaction
from subscribers.tokens import load_secret

RUN_EDITOR = "digest run"
"""Who the history names for a change the scheduled run made."""


def prepare_reviews(
    db: sqlite_utils.Database,
    config: Config,
    report: RunReport,
    editions: list[Edition],
    at: datetime,
    *,
    ingest: Callable[[], None],
) -> None:
    """Build and mail for review each approval edition's next issue once its review time
    came; ``ingest()`` is called first (once) when a draft is still to be built."""
    ingested = False
    for edition in editions:
        if edition.approval != "required":
            continue
        try:
            upcoming = next_fire_time(edition, at)
            if upcoming - parse_duration(edition.review_before) > at:
                continue
            if period_discarded(db, edition.key, iso(upcoming)):
                continue
            if not ingested and not issue_ending(db, edition.key, iso(upcoming)):
                ingest()
                ingested = True
            result = compose_issue(db, config, edition.key, period_end=upcoming, summaries_required=False)
        except DigestError as exc:
            report.errors.append(f"{edition.key}: could not build the issue for review: {exc}")
            continue
        issue = result.issue
        if result.created and issue is not None:
            report.built.append(
                Built(edition.key, iso(upcoming), issue["id"], issue["number"], True, result.message)
            )
        if issue is not None:
            mail_review(db, config, report, issue, at)


def mail_review(
    db: sqlite_utils.Database, config: Config, report: RunReport, issue: dict[str, Any], at: datetime
) -> None:
    """Queue one review mail per editor for the draft, unless done already or nobody is named."""
    if issue["review_mailed_at"] or issue["status"] != "draft" or issue["approved_at"]:
        return
    name = issue_name(issue)
    editors = config.publication.editors
    if not editors:
        report.notes.append(f"{name} needs approval but [publication] editors is empty: nobody was told")
        return
    edition = config.editions[issue["edition"]]
    due = from_iso(issue["period_end"]).astimezone(edition.zone)
    secret = load_secret(config)
    with transaction(db):
        stories = story_count(db, issue["id"])
        for address in editors:
            context = {
                "issue_name": name,
                "issue_subject": issue["subject"],
                "due": f"{due:%Y-%m-%d %H:%M} {edition.timezone}",
                "hold": edition.on_timeout == "hold",
                "stories": stories,
                "review_url": review_url(config, secret, issue, address),
            }
            queue_message(db, config, "review", {"email": address}, context, now=at)
        mark_review_mailed(db, issue["id"], iso(at))
    report.notes.append(
        f"{name}: review link mailed to {len(editors)} editor{'s' if len(editors) != 1 else ''}"
    )


def held_drafts(
    db: sqlite_utils.Database, editions: list[Edition], at: datetime, catch_up: timedelta
) -> list[dict[str, Any]]:
    """The drafts of approval editions whose time has come (at any age): each run sends the
    approved ones and reports the others. With ``on_timeout = "send"`` an unapproved draft
    past the catch-up window is not sent by itself (it is reported as overdue instead)."""
    found: list[dict[str, Any]] = []
    for edition in editions:
        if edition.approval != "required":
            continue
        for issue in drafts_due(db, edition.key, iso(at)):
            stale = from_iso(issue["period_end"]) < at - catch_up
            if issue["approved_at"] or edition.on_timeout == "hold" or not stale:
                found.append(issue)
    return found


def may_send(
    db: sqlite_utils.Database, config: Config, report: RunReport, issue: dict[str, Any], at: datetime
) -> bool:
    """Whether the due ``issue`` may be sent now (see the module docstring); says why not."""
    edition = config.editions.get(issue["edition"])
    fresh = issue_by_id(db, issue["id"]) or issue
    if (
        edition is None
        or edition.approval != "required"
        or fresh["status"] != "draft"
        or fresh["approved_at"]
    ):
        return True
    mail_review(db, config, report, fresh, at)
    name = issue_name(fresh)
    if edition.on_timeout == "send":
        report.notes.append(f'{name} was not approved; sent as built (on_timeout = "send")')
        return True
    line = f"{name} waits for approval (review: {desk_url(config, fresh)})"
    report.notes.append(line)
    report.errors.append(line)
    return False


def refresh_early_build(
    db: sqlite_utils.Database, config: Config, report: RunReport, issue: dict[str, Any]
) -> dict[str, Any]:
    """A draft built ahead of its time (``issues build --ahead``) of an edition without
    approval gets its stories selected again from its window before it is sent, unless locked."""
    edition = config.editions.get(issue["edition"])
    built = issue.get("built_at") or issue["created_at"]
    if (
        edition is None
        or edition.approval == "required"
        or issue["status"] != "draft"
        or issue.get("locked_at")
        or built >= issue["period_end"]
    ):
        return issue
    result = rebuild_issue(db, config, issue["id"], RUN_EDITOR)
    report.notes.append(result.message)
    return result.issue
