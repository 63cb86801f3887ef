"""`digest deliveries`: who got an issue, who did not, and why."""

from __future__ import annotations

import click

from digest.cli.common import App, echo_json, json_option, pass_app
from digest.compose.issues import ISSUE_NAME_HELP, issue_name
from digest.store.database import DELIVERY_STATUSES


@click.command(name="deliveries", epilog=ISSUE_NAME_HELP)
@click.argument("issue", default="latest")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="Only rows with this status.")
@json_option
@pass_app
def deliveries(app: App, issue: str, status: str | None, as_json: bool) -> None:
    """The delivery ledger of ISSUE (daily/3, latest, daily/latest or an id): one
    line per recipient. VARIANT * is the whole issue; a list is the categories
    that reader follows.

    \b
    Example:
      digest deliveries latest --status failed
      digest deliveries daily/12 --json
    """
    from digest.compose.issues import get_issue  # lazy: start-up
    from digest.delivery import delivery_counts, list_deliveries  # lazy: start-up

    found = get_issue(app.db, issue)
    rows = list_deliveries(app.db, found["id"], status=status)
    if as_json:
        echo_json(list(rows))
        return
    # Fixed widths, not measured ones: the ledger is streamed, never held whole.
    line = "{:<32}  {:<8}  {:<20}  {:<25}  {}"
    whole = False
    for n, row in enumerate(rows):
        whole = whole or row["variant"] == "*"
        if n == 0:
            click.echo(line.format("EMAIL", "STATUS", "VARIANT", "SENT/DUE", "LAST ERROR").rstrip())
        detail = row["last_error"] or ""
        when = row["sent_at"] or row["due_at"] or ""
        click.echo(
            line.format(row["email"] or "(removed)", row["status"], row["variant"], when, detail).rstrip()
        )
    counts = delivery_counts(app.db, found["id"])
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no deliveries yet"
    click.echo(f"Issue {issue_name(found)} ({found['status']}): {summary}")
    if whole:
        click.echo("Variant * is the whole issue; a list names the only categories that reader follows.")
