"""``digest run``: do whatever is due at a moment (what cron and systemd timers call)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from digest.cli.common import App, echo_json, json_option, pass_app
from digest.errors import DigestError
from digest.schedule.run import run_due
from digest.store.database import from_iso, utcnow

EARLIEST_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(9999, 1, 1, tzinfo=UTC)


def parse_at(text: str | None) -> datetime:
    """``--at`` as an aware UTC datetime (an ISO time; UTC unless it carries an offset)."""
    if not text:
        return utcnow()
    cleaned = text.strip()
    if cleaned[-1:] in ("Z", "z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        value: datetime | None = from_iso(cleaned)
    except ValueError:
        raise DigestError(
            f"--at {text!r} is not an ISO time; use e.g. 2026-01-23T07:00Z or 2026-01-23T08:00+01:00"
        ) from None
    except OverflowError:  # an offset that moves it off the calendar
        value = None
    # Schedules look back (catch-up window, a week of fire times) and forward from --at:
    # keep well inside the calendar so date arithmetic cannot overflow.
    if value is None or not (EARLIEST_AT <= value < LATEST_AT):
        raise DigestError(
            f"--at {text!r} is out of range; give a time from {EARLIEST_AT:%Y-%m-%d} to "
            f"{LATEST_AT:%Y-%m-%d} (UTC)"
        )
    return value


@click.command(name="run")
@click.option(
    "--at",
    "at_text",
    metavar="ISO_TIME",
    help="Act as if it were this time (default: now; UTC unless an offset is given).",
)
@click.option("--edition", metavar="KEY", help="Only this edition.")
@click.option("--dry-run", is_flag=True, help="Ingest, build and send nothing; show what is due.")
@json_option
@pass_app
def run(app: App, at_text: str | None, edition: str | None, dry_run: bool, as_json: bool) -> None:
    """Do what is due now: ingest, build each due issue, deliver it.

    An edition is due when its scheduled time has passed (within [schedule]
    catch_up, default 6h) and it has no issue for that time yet; the feeds are
    ingested only then. Ledger rows that are due are sent too: local-time
    readers whose hour has come, deferred retries, an interrupted send. Safe
    to run as often as you like, also from several places at once: one issue
    per edition and scheduled time, one message per subscriber. Prints one
    line; exits 1 if a build or send failed (unsent rows stay queued) or while
    any issue is overdue: a draft past its time and the catch-up window, or a
    past issue with undelivered rows. Each is listed with the `digest send`
    command that sends it.

    \b
    Example:
      digest run
      digest run --at 2026-01-23T07:00+01:00 --edition daily --dry-run
      */15 * * * * cd /srv/news && digest run   # crontab
    """
    report = run_due(app.db, app.config, at=parse_at(at_text), edition=edition, dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(report.summary())
    if not report.ok:
        for error in report.errors:
            click.echo(f"Error: {error}", err=True)
        for line in report.overdue:
            click.echo(f"Overdue: {line}", err=True)
        raise SystemExit(1)
