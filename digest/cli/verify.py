"""`digest verify`: what the relay did with each message of an issue, from its own log."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.common import App, echo_json, json_option, pass_app
from digest.compose.issues import ISSUE_NAME_HELP, issue_name


@click.command(name="verify", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.option(
    "--maillog",
    "maillog",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The Postfix log of the relay the issue went through (maillog_file or syslog).",
)
@json_option
@pass_app
def verify(app: App, issue: str, maillog: Path, as_json: bool) -> None:
    """Reconcile ISSUE's ledger with the relay's Postfix log: each reader is
    delivered, deferred, bounced, unknown to the relay, or not sent. Bounces
    found in the log are recorded like bounce reports (same thresholds; reading
    the log again records nothing twice). Only log lines with the Message-ID
    of the reader's own delivery row count.

    \b
    Example:
      digest verify daily/12 --maillog /var/log/mail.log
      digest verify latest --maillog /var/log/postfix.log --json
    """
    from digest.compose.issues import get_issue  # lazy: start-up
    from digest.verify import verify_issue  # lazy: start-up

    found = get_issue(app.db, issue)
    report = verify_issue(app.db, app.config, found["id"], maillog)
    if as_json:
        echo_json(report.as_dict())
        return
    for reader in report.readers:
        if reader["outcome"] in ("deferred", "bounced", "unknown"):
            detail = f"  {reader['dsn']} {reader['relay']}" if reader.get("relay") else ""
            click.echo(f"{reader['email']}\t{reader['outcome']}{detail}")
    click.echo(f"Issue {issue_name(found)} per {maillog}: {report.summary()}")
