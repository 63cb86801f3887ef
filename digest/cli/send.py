"""`digest send`: deliver an issue (or resume a send), a test send, or a dry run."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from digest.cli.common import App, is_terminal, pass_app
from digest.compose.issues import ISSUE_NAME_HELP, issue_name

if TYPE_CHECKING:
    from digest.delivery.report import DeliveryReport


class _Progress:
    """A progress bar with rate and ETA, on a terminal only."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not total:
            return
        if self.bar is None:
            self.bar = click.progressbar(
                length=total,
                label="Sending",
                show_eta=True,
                show_pos=True,
                item_show_func=self._rate,
            )
            self.bar.__enter__()
        step = max(0, min(done, total) - self.done)
        self.done += step
        self.bar.update(step, self.done)

    def _rate(self, done: int | None) -> str | None:
        elapsed = time.monotonic() - self.started
        return f"{done / elapsed:.0f} msg/s" if done and elapsed > 0 else None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.command(name="send", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.option(
    "--to", "to", multiple=True, metavar="EMAIL", help="Test send to this address only (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Show who would get which variant; send nothing.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="First requeue failed rows not about the mailbox (not 5.1.x, reader still active).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Send on past the [bounces] guards that paused this send (complaint_rate, bounce_rate).",
)
@click.option("--concurrency", type=click.IntRange(1, 64), help="SMTP connections at once.")
@click.option(
    "--rate", type=click.FloatRange(min=0), metavar="PER_SECOND", help="Messages per second (0: no limit)."
)
@click.option(
    "--transport",
    "transport_url",
    metavar="URL",
    help="smtp://host:port, smtps://…, maildir:PATH, mbox:PATH.",
)
@pass_app
def send(
    app: App,
    issue: str,
    to: tuple[str, ...],
    dry_run: bool,
    retry_failed: bool,
    resume: bool,
    concurrency: int | None,
    rate: float | None,
    transport_url: str | None,
) -> None:
    """Deliver ISSUE (daily/3, latest, daily/latest or an id) to its subscribers;
    run it again to resume.

    Sent messages are never sent twice; a send stopped with Ctrl-C (or killed)
    continues where it left off (exit status 130 for Ctrl-C, 143 for SIGTERM).
    When the relay refuses the message, the sender or the session, the send
    stops with every unsent row queued and exits 1; after fixing the cause,
    run it again (with --retry-failed to also requeue rows that failed for a
    reason other than the mailbox). Too many hard bounces or complaints
    ([bounces] bounce_rate, complaint_rate) pause it the same way; --resume
    sends on past that guard. --to sends a "[TEST]" copy to those
    addresses only and records nothing. A real SMTP send needs an https,
    public publication.base_url. A draft of an edition with approval =
    "required" is sent only once approved (`digest issues approve`).

    \b
    Example:
      digest send latest --dry-run
      digest send latest --to me@example.org
      digest send daily/12 --retry-failed
      digest send daily/12 --resume
      digest send daily/12 --transport smtp://mailer@smtp.example.org:587?starttls=true --rate 20
    """
    from digest.compose.approvals import require_approval  # lazy: start-up
    from digest.compose.issues import get_issue  # lazy: start-up

    if retry_failed and (to or dry_run):
        raise click.UsageError("--retry-failed changes the ledger; it cannot go with --to or --dry-run")
    found = get_issue(app.db, issue)
    if not to and not dry_run:
        require_approval(app.config, found)
    engine = {"retry_failed": retry_failed, "resume": resume, "concurrency": concurrency, "rate": rate}
    report = _deliver(app, found, to, dry_run, transport_url=transport_url, **engine)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    label = f"issue {issue_name(found)}"
    if dry_run:
        _echo_dry_run(report, label)
    elif to:
        _echo_test_send(report, label)
    else:
        _echo_send(report, label)


def _deliver(
    app: App, found: dict[str, Any], to: tuple[str, ...], dry_run: bool, **options: Any
) -> DeliveryReport:
    """deliver_issue with a progress bar on a terminal (a real send only)."""
    from digest.bounces.process import issue_reports  # lazy: start-up
    from digest.delivery import deliver_issue  # lazy: start-up

    bar = _Progress() if is_terminal() and not to and not dry_run else None
    try:
        return deliver_issue(
            app.db,
            app.config,
            found["id"],
            to=list(to) or None,
            dry_run=dry_run,
            reports=issue_reports,
            progress=bar,
            **options,
        )
    finally:
        if bar is not None:
            bar.close()


def _echo_dry_run(report: DeliveryReport, label: str) -> None:
    for row in report.plan:
        when = "" if row["when"] == "due" else f"  (due {row['due_at']})"
        click.echo(f"{row['email']}\t{row['variant']}{when}")
    variants = ", ".join(f"{v}: {n}" for v, n in report.variants.items()) or "none"
    if "*" in report.variants:
        variants += " (* = the whole issue, every category)"
    click.echo(
        f"Dry run of {label}: {report.queued} would be sent now, "
        f"{report.total - report.queued} later; variants: {variants}"
    )


def _echo_test_send(report: DeliveryReport, label: str) -> None:
    for row in report.plan:
        click.echo(f"{row['email']}: {row['status']} ({row['reply']})")
    click.echo(f"Test send of {label} via {report.transport}: {report.summary()}")
    if report.failed:
        raise click.ClickException("the test send failed for some addresses")


def _echo_send(report: DeliveryReport, label: str) -> None:
    if report.requeued:
        click.echo(f"requeued {report.requeued} failed rows")
    note = ""
    if report.interrupted:
        note = "; interrupted, run `digest send` again to resume"
    elif report.queued:
        note = f"; {report.queued} waiting (not due yet or not sent), run again later"
    click.echo(f"{label} via {report.transport}: {report.summary()}; issue {report.status}{note}")
    if report.interrupted and report.signal:
        raise SystemExit(128 + report.signal)  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM
