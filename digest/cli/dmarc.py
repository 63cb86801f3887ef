"""`digest dmarc`: read the DMARC aggregate reports receivers mail to the domain, and sum them up."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.errors import DigestError


@click.group(name="dmarc")
def dmarc() -> None:
    """DMARC aggregate reports: does our mail pass DKIM/SPF alignment, and who else sends as us.

    \b
    Example:
      digest dmarc process maildir:dmarc
      digest dmarc report --days 7
    """


@dmarc.command(name="process")
@click.argument("source", required=False)
@json_option
@pass_app
def dmarc_process(app: App, source: str | None, as_json: bool) -> None:
    """Read every new aggregate report (rua) in SOURCE once and store it.

    SOURCE is maildir:PATH, mbox:PATH, imaps://user@host[:port]/FOLDER or
    imap://user@host[:port]/FOLDER?starttls=true (password in DIGEST_IMAP_PASSWORD), as for
    `digest bounces process`; default: [dmarc] source. Reports may be XML, gzipped or
    zipped attachments. Read messages move to `processed`; one that is not a readable
    aggregate report (malformed, an XML bomb, over 10 MB, nested over 20 MIME levels)
    moves to `rejected` with one line saying why. A report mailed twice is stored once.
    An IMAP pass ends at [bounces] deadline (default 60 s). `digest run` reads
    [dmarc] source after its sends.

    \b
    Example:
      digest dmarc process maildir:/var/mail/dmarc
    """
    from digest.dmarc import process_dmarc  # lazy: start-up

    if source and source.startswith(("maildir:", "mbox:")):
        prefix, _, raw = source.partition(":")
        if raw and not Path(raw).expanduser().is_absolute():
            source = f"{prefix}:{Path.cwd() / raw}"
    source = source or app.config.dmarc.source
    if not source:
        raise DigestError("no SOURCE given and no [dmarc] source configured; e.g. maildir:dmarc")
    run = process_dmarc(app.db, app.config, source)
    if as_json:
        echo_json(run.as_dict())
        return
    click.echo(run.summary())
    for line in run.rejected:
        click.echo(f"  rejected: {line}")


@dmarc.command(name="report")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="How far back.")
@json_option
@pass_app
def dmarc_report(app: App, days: int, as_json: bool) -> None:
    """Per sending IP: messages, and the share passing DKIM and SPF alignment.

    An IP outside [dmarc] our_ips (CIDRs of our relays) sends as the domain and is not
    ours: it is flagged NOT OURS. Without our_ips nothing is flagged.

    \b
    Example:
      digest dmarc report --days 7 --json
    """
    from digest.dmarc import pass_rates  # lazy: start-up
    from digest.dmarc.process import window_start  # lazy: start-up

    figures = pass_rates(app.db, window_start(days), app.config.dmarc.our_ips)
    if as_json:
        echo_json({"days": days, "ips": [f.as_dict() for f in figures]})
        return
    if not figures:
        click.echo(f"no DMARC reports in the last {days} days; read them with `digest dmarc process`")
        return
    rows = [["IP", "MESSAGES", "DKIM", "SPF", ""]]
    for f in figures:
        flag = {True: "ours", False: "NOT OURS", None: ""}[f.ours]
        rows.append([f.ip, str(f.messages), f"{f.dkim_rate:.0%}", f"{f.spf_rate:.0%}", flag])
    for line in columns(rows, right={1, 2, 3}):
        click.echo(line)
    if any(f.ours is None for f in figures):
        click.echo("set [dmarc] our_ips to flag IPs that send as the domain and are not ours")
