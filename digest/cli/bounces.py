"""`digest bounces`: read bounce reports into the list, and show what they did."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.errors import DigestError


@click.group(name="bounces")
def bounces() -> None:
    """Bounces, spam complaints and mailed unsubscribes.

    \b
    Example:
      digest bounces process maildir:bounces
      digest bounces list --since 7d
    """


@bounces.command(name="process")
@click.argument("source", required=False)
@json_option
@pass_app
def bounces_process(app: App, source: str | None, as_json: bool) -> None:
    """Read every new report in SOURCE once and clean the list.

    SOURCE is maildir:PATH, mbox:PATH, imaps://user@host[:port]/FOLDER or
    imap://user@host[:port]/FOLDER?starttls=true (password in DIGEST_IMAP_PASSWORD);
    default: [bounces] source. A report acts on a reader only through our VERP token or
    a quoted Message-ID we signed for that reader; one naming several readers acts on
    none and is held (see `bounces list --held`). Hard bounces (5.x.x) and soft ones
    (4.x.x, delayed, 5.7.x policy) count towards [bounces] hard_limit / soft_limit; a
    spam complaint unsubscribes at once; so does a mail to the List-Unsubscribe address
    with the reader's token (without it, the sender is mailed a link to confirm).
    Auto-replies and anything unrecognised are counted and left alone. Processed
    messages move to the `processed` folder (an mbox is remembered by Message-ID): a
    second run changes nothing.
    A message over 10 MB or nested over 20 MIME levels moves to `rejected` unread.
    An IMAP pass ends at [bounces] deadline (default 60 s).

    \b
    Example:
      digest bounces process maildir:/var/mail/bounces
      DIGEST_IMAP_PASSWORD=… digest bounces process imaps://bounces@mail.example.org/INBOX
    """
    from digest.bounces import process_bounces  # lazy: start-up

    if source and source.startswith(("maildir:", "mbox:")):
        # A path typed on the command line is relative to where it was typed; the one in
        # [bounces] source to the config file.
        prefix, _, raw = source.partition(":")
        if raw and not Path(raw).expanduser().is_absolute():
            source = f"{prefix}:{Path.cwd() / raw}"
    source = source or app.config.bounces.source
    if not source:
        raise DigestError("no SOURCE given and no [bounces] source configured; e.g. maildir:bounces")
    report = process_bounces(app.db, app.config, source)
    if as_json:
        echo_json(report.as_dict())
        return
    click.echo(report.summary())
    for address in report.bounced:
        click.echo(f"  bounced: {address}")
    for address in report.unsubscribed:
        click.echo(f"  unsubscribed: {address}")


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``7d``, ``12h``) or an ISO date/time (UTC unless given)."""
    from digest.ingest.articles import parse_when  # lazy: start-up

    cleaned = text.strip()
    if cleaned.endswith("z"):  # 2026-11-01T05:00z: UTC, as with Z
        cleaned = cleaned[:-1] + "Z"
    try:
        return parse_when(cleaned, zone="UTC", now=now)
    except DigestError as exc:
        raise DigestError(f"--since {text!r}: {exc}") from None


@bounces.command(name="list")
@click.option("--since", "since_text", metavar="WHEN", help="Only reports since then: 7d, 12h or 2026-11-01.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many (newest first).")
@click.option(
    "--held", is_flag=True, help="Reports held for review: they named several readers, acted on none."
)
@json_option
@pass_app
def bounces_list(app: App, since_text: str | None, limit: int | None, held: bool, as_json: bool) -> None:
    """Processed reports, newest first: when, kind, status code, who, which issue, why.

    With --held: the reports that named several readers and so acted on none (when,
    what they claimed, how many readers, the report's Message-ID, why).

    \b
    Example:
      digest bounces list --since 7d
      digest bounces list --held
      digest bounces list --json | jq '.[] | select(.kind == "hard")'
    """
    from digest.bounces import list_bounces, list_held  # lazy: start-up

    since = parse_since(since_text) if since_text else None
    if held:
        _echo_held(list_held(app.db, since=since, limit=limit), since, as_json)
        return
    rows = list_bounces(app.db, since=since, limit=limit)
    if as_json:
        echo_json(rows)
        return
    table = [("RECEIVED", "KIND", "STATUS", "EMAIL", "ISSUE", "REASON")]
    for row in rows:
        issue = f"{row['edition']}/{row['number']}" if row["number"] is not None else "-"
        table.append(
            (
                row["received_at"],
                row["kind"],
                row["status_code"] or "-",
                row["email"] or "-",
                issue,
                row["reason"],
            )
        )
    for line in columns(table if rows else []):
        click.echo(line)
    if not rows:
        click.echo(
            "No bounce reports" + (f" since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC." if since else "."),
            err=True,
        )


def _echo_held(rows: list[dict], since: datetime | None, as_json: bool) -> None:
    if as_json:
        echo_json(rows)
        return
    table = [("RECEIVED", "KIND", "READERS", "REPORT", "REASON")]
    table += [(r["received_at"], r["kind"], str(r["readers"]), r["report"], r["reason"]) for r in rows]
    for line in columns(table if rows else [], right={2}):
        click.echo(line)
    if not rows:
        click.echo(
            "No held reports" + (f" since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC." if since else "."),
            err=True,
        )
