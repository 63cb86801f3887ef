"""Sends that change nothing: a dry run (who would get which variant) and ``--to`` test sends."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import sqlite_utils

from digest.compose.issues import issue_categories
from digest.config import Config
from digest.delivery.ledger import unsent_rows
from digest.delivery.messages import Links
from digest.delivery.recipients import recipients
from digest.delivery.report import DeliveryReport
from digest.mail.message import PreparedMessage, prepare_message
from digest.mail.transports import ConnectionLost, Reply, open_transport
from digest.render.archive import issue_test_link
from digest.render.context import web_url
from digest.render.variants import render_issue, stored_variant, variant_key
from digest.store.database import iso
from subscribers.store import find_subscriber
from subscribers.tokens import load_secret

__all__ = ["dry_run_report", "test_send"]


def dry_run_report(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any], now: datetime
) -> DeliveryReport:
    """Who would get which variant now (``when``: due or later); nothing is sent or changed."""
    issue_id = int(issue["id"])
    report = DeliveryReport(issue_id=issue_id, dry_run=True, status=issue["status"])
    counts: dict[str, int] = {}
    if issue["status"] == "draft":
        for sub, variant, due in recipients(db, config, issue):
            state = "due" if due is None or due <= now else "later"
            report.plan.append(
                {
                    "email": sub["email"],
                    "name": sub["name"],
                    "variant": variant,
                    "due_at": due and iso(due),
                    "when": state,
                }
            )
            counts[variant] = counts.get(variant, 0) + 1
    else:
        now_iso = iso(now)
        for row in unsent_rows(db, issue_id):
            state = "due" if row["due_at"] is None or row["due_at"] <= now_iso else "later"
            report.plan.append({**row, "when": state})
            counts[row["variant"]] = counts.get(row["variant"], 0) + 1
    report.variants = counts
    report.total = len(report.plan)
    report.queued = sum(1 for p in report.plan if p["when"] == "due")
    return report


def test_send(
    db: sqlite_utils.Database, config: Config, issue: dict[str, Any], to: list[str], url: str
) -> DeliveryReport:
    """A "[TEST]" copy to each address in ``to``, with the variant it would get; nothing recorded."""

    issue_id = int(issue["id"])
    report = DeliveryReport(issue_id=issue_id, test=True, status=issue["status"])
    secret = load_secret(config)
    links_for = Links(config, secret)
    # Not on the list: links that lead to the pages but act on nobody.
    test_links = {
        "unsubscribe_url": f"{links_for.base}/unsubscribe/test",
        "preferences_url": f"{links_for.base}/preferences/test",
    }
    # "View in browser" leads to the signed test view, which shows a draft too.
    view = issue_test_link(config, secret, issue_id)
    categories = issue_categories(db, issue_id)
    prepared: dict[str, PreparedMessage] = {}
    transport = open_transport(url, config)
    sender = parseaddr(config.publication.from_address)[1]  # no ledger row, so no VERP
    try:
        for address in to:
            subscriber = find_subscriber(db, address)
            variant = variant_key(subscriber["categories"], categories) if subscriber else "*"
            if variant == "[]":
                variant = "*"
            if variant not in prepared:
                rendered = (
                    render_issue(db, config, issue_id, variant)
                    if issue["status"] == "draft"
                    else stored_variant(db, config, issue_id, variant)
                )
                rendered = with_view_link(rendered, web_url(config, issue_id), view)
                prepared[variant] = prepare_message(config, issue, rendered, test=True)
            links = links_for(int(subscriber["id"])) if subscriber is not None else test_links
            message = prepared[variant].fill(
                {
                    "email": address,
                    "name": subscriber["name"] if subscriber else "",
                    **links,
                    "subscriber_id": None,
                    "attributes": subscriber.get("attributes") if subscriber else None,
                }
            )
            try:
                reply = transport.send(message, sender, address)
            except ConnectionLost as exc:
                reply = Reply(0, str(exc), stage="connection")
                transport.close()
                transport = open_transport(url, config)
            outcome = "sent" if reply.ok else "failed"
            setattr(report, outcome, getattr(report, outcome) + 1)
            report.plan.append(
                {"email": address, "variant": variant, "status": outcome, "reply": reply.describe()}
            )
    finally:
        transport.close()
    report.total = len(to)
    return report


def with_view_link(rendered: Any, public: str, test_link: str) -> Any:
    """``rendered`` with its "view in browser" address ``public`` (``/issues/<id>``, a 404 while
    the issue is a draft) replaced by ``test_link`` in both parts (not ``/issues/<id>0``)."""
    whole = re.compile(re.escape(public) + r"(?![0-9/])")
    return dataclasses.replace(
        rendered,
        html=whole.sub(lambda _: test_link, rendered.html),
        text=whole.sub(lambda _: test_link, rendered.text),
    )
