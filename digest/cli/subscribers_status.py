"""`digest subscribers` commands that move one address through its life cycle: confirm,
unsubscribe, resubscribe, bounce by hand, and remove (erase, keeping a suppression hash).
Each parses, calls one function of :mod:`subscribers.store`, prints; `digest.cli.subscribers`
registers them on the group."""

from __future__ import annotations

import sys
from typing import Any

import click

from digest.cli.common import App, pass_app
from digest.errors import DigestError


def echo_outbox(report: Any, what: str, *, to_stderr: bool = False) -> None:
    """One line for what an outbox pass sent, plus stderr lines for what waits or was refused."""
    click.echo(f"{what}: {report.sent} sent.", err=to_stderr)
    if report.retry:
        reason = f" ({report.errors[0]})" if report.errors else ""
        click.echo(f"{report.retry} could not be sent now{reason}; `digest run` retries them.", err=True)
    if report.failed:
        click.echo(f"{report.failed} refused by the mail server.", err=True)


@click.command(name="unsubscribe")
@click.argument("email")
@pass_app
def subscribers_unsubscribe(app: App, email: str) -> None:
    """Unsubscribe an address at once (also for a send under way).

    \b
    Example:
      digest subscribers unsubscribe alice@example.org
    """
    from subscribers.store import get_subscriber, unsubscribe  # lazy: start-up

    subscriber = get_subscriber(app.db, email)
    if unsubscribe(app.db, subscriber["id"], source="cli"):
        click.echo(f"Unsubscribed {subscriber['email']}.")
    else:
        click.echo(f"{subscriber['email']} was already unsubscribed.")


@click.command(name="bounce")
@click.argument("email")
@pass_app
def subscribers_bounce(app: App, email: str) -> None:
    """Mark an address bounced by hand (no more issues go to it).

    \b
    Example:
      digest subscribers bounce old-address@example.org
    """
    from subscribers.store import get_subscriber, mark_bounced  # lazy: start-up

    subscriber = get_subscriber(app.db, email)
    if mark_bounced(app.db, subscriber["id"], detail={"by": "hand"}, source="cli"):
        click.echo(f"Marked {subscriber['email']} bounced.")
    elif subscriber["status"] == "bounced":
        click.echo(f"{subscriber['email']} was already bounced.")
    else:
        raise DigestError(
            f"{subscriber['email']} is {subscriber['status']}; only an active or pending address can bounce"
        )


@click.command(name="resubscribe")
@click.argument("email", required=False)
@click.option(
    "--bounced-by",
    metavar="ISSUE",
    help="Every reader that issue's send or bounce reports marked bounced (undo a mass bounce).",
)
@click.option("--dry-run", is_flag=True, help="With --bounced-by: count them, change nothing.")
@pass_app
def subscribers_resubscribe(app: App, email: str | None, bounced_by: str | None, dry_run: bool) -> None:
    """Make an unsubscribed or bounced address active again (only when they asked for it).

    With --bounced-by ISSUE (daily/3, latest), every reader that issue bounced is made
    active again, each with a consent-log line saying why, and their failed rows of that
    issue are queued again for `digest send`.

    \b
    Example:
      digest subscribers resubscribe alice@example.org
      digest subscribers resubscribe --bounced-by daily/3 --dry-run
    """
    if (email is None) == (bounced_by is None):
        raise click.UsageError("give an address or --bounced-by ISSUE (not both)")
    if bounced_by is not None:
        _resubscribe_bounced_by(app, bounced_by, dry_run)
        return
    if dry_run:
        raise click.UsageError("--dry-run goes with --bounced-by")
    from subscribers.store import get_subscriber, resubscribe  # lazy: start-up

    subscriber = get_subscriber(app.db, email)
    if resubscribe(app.db, subscriber["id"], source="cli"):
        click.echo(f"Resubscribed {subscriber['email']} (active).")
    elif subscriber["status"] == "pending":
        raise DigestError(f"{subscriber['email']} is pending; confirm it with `digest subscribers confirm`")
    else:
        click.echo(f"{subscriber['email']} is already active.")


def _resubscribe_bounced_by(app: App, ref: str, dry_run: bool) -> None:
    from digest.compose.issues import get_issue, issue_name  # lazy: start-up
    from digest.delivery.ledger import requeue_readers  # lazy: start-up
    from subscribers.bulk import bounced_by_issue, resubscribe_bounced_by  # lazy: start-up

    issue = get_issue(app.db, ref)
    name = issue_name(issue)
    if dry_run:
        count = len(bounced_by_issue(app.db, issue["id"]))
        click.echo(f"Dry run, nothing written: would resubscribe {count} readers bounced by {name}.")
        return
    ids = resubscribe_bounced_by(app.db, issue["id"], f"undo mass bounce from {name}")
    requeued = requeue_readers(app.db, issue["id"], ids)
    click.echo(
        f"Resubscribed {len(ids)} readers bounced by {name}; {requeued} of their deliveries queued again."
    )
    if requeued:
        click.echo(f"Send them with `digest send {name}`.")


@click.command(name="confirm")
@click.argument("email")
@click.option("--no-email", is_flag=True, help="Do not send the welcome email.")
@pass_app
def subscribers_confirm(app: App, email: str, no_email: bool) -> None:
    """Confirm a pending subscriber (what their confirmation link does).

    Like the link, it then sends the welcome email through the configured transport
    (if the transport refuses it, `digest run` retries it); --no-email skips it.

    \b
    Example:
      digest subscribers confirm bob@example.org
      digest subscribers confirm bob@example.org --no-email
    """
    from subscribers.store import confirm, get_subscriber  # lazy: start-up

    subscriber = get_subscriber(app.db, email)
    if confirm(app.db, subscriber["id"], source="cli"):
        click.echo(f"Confirmed {subscriber['email']} (active).")
        if not no_email:
            _send_welcome(app, subscriber["id"])
    elif subscriber["status"] == "active":
        click.echo(f"{subscriber['email']} is already confirmed.")
    else:
        raise DigestError(
            f"{subscriber['email']} is {subscriber['status']}, not pending; "
            "use `digest subscribers resubscribe` if they asked to come back"
        )


def _send_welcome(app: App, subscriber_id: int) -> None:
    from digest.signup import welcome  # lazy: start-up
    from subscribers.store import get_subscriber  # lazy: start-up
    from subscribers.tokens import load_secret  # lazy: start-up

    try:
        report = welcome(app.db, app.config, load_secret(app.config), subscriber_id)
    except DigestError as exc:
        email = get_subscriber(app.db, subscriber_id)["email"]
        raise DigestError(f"{email} is confirmed, but the welcome email was not sent: {exc}") from None
    echo_outbox(report, "Welcome email")


@click.command(name="remove")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def subscribers_remove(app: App, email: str, yes: bool) -> None:
    """Erase a subscriber's personal data; a one-way hash stays on the suppression list.

    The address, name and preferences are deleted, also from the delivery ledger;
    the consent record is kept under the hash. A later import does not re-add the
    address (unless --resubscribe).

    \b
    Example:
      digest subscribers remove alice@example.org --yes
    """
    from digest.delivery.ledger import forget_reader  # lazy: start-up
    from subscribers.store import get_subscriber, remove_subscriber  # lazy: start-up

    subscriber = get_subscriber(app.db, email)
    if not yes:
        if not sys.stdin.isatty():
            raise DigestError(
                f"not erasing {subscriber['email']}: there is no terminal to confirm on; "
                "add --yes to erase without asking"
            )
        if not click.confirm(f"Erase {subscriber['email']} and their personal data?"):
            raise DigestError(f"not erased {subscriber['email']}; add --yes to erase without asking")
    remove_subscriber(app.db, subscriber["id"], forget_deliveries=forget_reader, source="cli")
    click.echo(f"Removed {subscriber['email']}; its hash is on the suppression list.")


STATUS_COMMANDS = [
    subscribers_confirm,
    subscribers_unsubscribe,
    subscribers_resubscribe,
    subscribers_bounce,
    subscribers_remove,
]
