"""`digest deliveries`: who got an issue, who did not, and why."""

from __future__ import annotations

import click

from digest.cli.common import App, echo_json, json_option, pass_app
from digest.store import DELIVERY_STATUSES


@click.command(name="deliveries")
@click.argument("issue", default="latest")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="Only rows with this status.")
@json_option
@pass_app
def deliveries(app: App, issue: str, status: str | None, as_json: bool) -> None:
    """The delivery ledger of ISSUE (an id or `latest`): one line per recipient.

    \b
    Example:
      digest deliveries latest --status failed
      digest deliveries 12 --json
    """
    from digest.compose import get_issue
    from digest.deliver import delivery_counts, list_deliveries

    found = get_issue(app.db, issue)
    rows = list_deliveries(app.db, found["id"], status=status)
    if as_json:
        echo_json(list(rows))
        return
    for row in rows:
        detail = row["last_error"] or ""
        when = row["sent_at"] or row["due_at"] or ""
        click.echo(
            f"{row['email'] or '(removed)'}\t{row['status']}\t{row['variant']}\t{when}\t{detail}".rstrip()
        )
    counts = delivery_counts(app.db, found["id"])
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no deliveries yet"
    click.echo(f"Issue {found['id']} (#{found['number']} {found['edition']}, {found['status']}): {summary}")
