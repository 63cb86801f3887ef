"""``digest schedule``: the long-running scheduler and its timetable."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from digest.cli.common import App, echo_json, json_option, pass_app
from digest.schedule.scheduler import next_fire_times, serve


@click.group(name="schedule")
def schedule() -> None:
    """Run editions on their cron schedules, or list the next times.

    \b
    Example:
      digest schedule list
      digest schedule run
    """


@schedule.command(name="run")
@click.option(
    "--standby",
    is_flag=True,
    help="When another scheduler runs for this database, wait and take over when it stops or "
    "dies (a second host) instead of refusing.",
)
@pass_app
def schedule_run(app: App, standby: bool) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C.

    One cron trigger per edition, in the edition's time zone; each firing does
    what `digest run` does and logs one line. On start it catches up a time
    missed while it was down, if within [schedule] catch_up (default 6h). Only
    one scheduler per database runs at a time (a lock file beside an SQLite
    database, a lock in a PostgreSQL one); with --standby a second one waits
    and takes over when the first stops or its host dies. SIGTERM/SIGINT let
    the run in progress finish and be recorded, then it exits.

    \b
    Example:
      digest schedule run
      digest schedule run --standby      # on a second host, PostgreSQL store
      systemctl start digest-scheduler   # see the README for a unit file
    """
    config = app.config
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    log = logging.getLogger("digest.schedule")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    def ready(timetable: list[dict[str, Any]]) -> None:
        parts = [
            f"{e['edition']} next {e['next'][0]['local_text']} ({e['next'][0]['utc']})" for e in timetable
        ]
        log.info("scheduler running; %s", "; ".join(parts))

    try:
        result = serve(config, on_ready=ready, standby=standby)
    finally:
        log.removeHandler(handler)
    click.echo(f"Scheduler stopped ({result.stopped_by or 'done'}) after {result.runs} run(s).", err=True)


@schedule.command(name="list")
@click.option("--count", default=3, show_default=True, help="How many upcoming times per edition.")
@json_option
@pass_app
def schedule_list(app: App, count: int, as_json: bool) -> None:
    """Show each edition's next scheduled times, in its zone and in UTC.

    \b
    Example:
      digest schedule list
      digest schedule list --json
    """
    timetable = next_fire_times(app.config, count=count)
    if as_json:
        echo_json(timetable)
        return
    for entry in timetable:
        how = f"local {entry['send_at']} per reader" if entry["delivery"] == "local" else "at once"
        click.echo(
            f"{entry['edition']} ({entry['title']}): cron {entry['schedule']!r} in {entry['timezone']}"
        )
        click.echo(f"  delivery: {how}")
        for t in entry["next"]:
            utc = t["utc"].replace("T", " ").replace("+00:00", " UTC")
            click.echo(f"  {t['local_text']:<28} = {utc}")
