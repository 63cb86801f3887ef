"""`digest subscribers` commands: each parses, calls one function, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from digest.cli.common import App, echo_json, is_terminal, json_option, pass_app
from digest.cli.subscribers_status import STATUS_COMMANDS, echo_outbox
from digest.errors import DigestError
from subscribers.model import STATUSES


def _known(app: App, allow_new_category: bool = False) -> dict[str, Any]:
    """Editions from the config and the known categories (config, feeds, articles): an
    unknown one is refused, a known one takes its spelling. With ``allow_new_category``
    any category is taken as typed."""
    from digest.ingest.categories import known_categories  # lazy: start-up

    return {
        "known_editions": list(app.config.editions) or None,
        "known_categories": None if allow_new_category else known_categories(app.db, app.config),
    }


def allow_new_category_option(f: Any) -> Any:
    """``--allow-new-category``: accept a category no edition, feed or article has yet."""
    return click.option(
        "--allow-new-category",
        is_flag=True,
        help="Accept a category that no edition, feed or article has yet (its readers get "
        "nothing until articles of it arrive).",
    )(f)


def _links(app: App, subscriber: dict[str, Any]) -> dict[str, str]:
    from subscribers.links import subscriber_links  # lazy: start-up
    from subscribers.tokens import load_secret  # lazy: start-up

    return subscriber_links(app.config, load_secret(app.config), subscriber)


def _labels(values: list[str] | None) -> str:
    return ", ".join(values) if values else "all"


@click.group(name="subscribers")
def subscribers() -> None:
    """Manage the subscriber list.

    \b
    Example:
      digest subscribers add alice@example.org --name Alice
    """


@subscribers.command(name="add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--edition", "editions", multiple=True, help="Edition key (repeat; default: all editions).")
@click.option("--category", "categories", multiple=True, help="Category (repeat; default: all categories).")
@click.option("--timezone", default=None, help="IANA time zone, e.g. Europe/Berlin (default: the edition's).")
@click.option("--pending", is_flag=True, help="Start double opt-in: pending; a confirmation email is sent.")
@click.option(
    "--no-email", is_flag=True, help="With --pending: send nothing, only print the confirmation link."
)
@click.option("--check-dns", is_flag=True, help="Also check that the domain accepts mail (DNS lookup).")
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Add an address removed earlier (only if they asked; with --pending it stays on the "
    "suppression list until it confirms).",
)
@allow_new_category_option
@pass_app
def subscribers_add(
    app: App,
    email: str,
    name: str,
    editions: tuple[str, ...],
    categories: tuple[str, ...],
    timezone: str | None,
    pending: bool,
    no_email: bool,
    check_dns: bool,
    resubscribe: bool,
    allow_new_category: bool,
) -> None:
    """Add a subscriber: active at once, or pending (double opt-in) with --pending.

    With --pending a confirmation email goes out through the configured transport
    (if the transport refuses it, `digest run` retries it); --no-email only prints
    the link, for you to pass on.

    \b
    Example:
      digest subscribers add alice@example.org --name Alice --edition daily
      digest subscribers add bob@example.org --category Science --pending
    """
    from subscribers.store import add_subscriber  # lazy: start-up

    subscriber = add_subscriber(
        app.db,
        email,
        name=name,
        editions=editions or None,
        categories=categories or None,
        timezone=timezone,
        status="pending" if pending else "active",
        source="cli",
        check_deliverability=check_dns,
        resubscribe=resubscribe,
        **_known(app, allow_new_category),
    )
    click.echo(f"Added {subscriber['email']} ({subscriber['status']}).")
    if pending and no_email:
        click.echo(f"Confirmation link to send them: {_links(app, subscriber)['confirm_url']}")
    elif pending:
        _send_confirmations(app, [subscriber["id"]])


def _send_confirmations(app: App, subscriber_ids: list[int], *, to_stderr: bool = False) -> None:
    from digest.signup import send_confirmations  # lazy: start-up
    from subscribers.tokens import load_secret  # lazy: start-up

    report = send_confirmations(app.db, app.config, load_secret(app.config), subscriber_ids)
    echo_outbox(report, "Confirmation emails", to_stderr=to_stderr)


@subscribers.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--edition", help="Only subscribers who receive this edition.")
@click.option("--category", help="Only subscribers who follow this category.")
@json_option
@pass_app
def subscribers_list(
    app: App, status: str | None, edition: str | None, category: str | None, as_json: bool
) -> None:
    """List subscribers (id, status, email, name, editions, categories).

    \b
    Example:
      digest subscribers list --status active --edition daily
      digest subscribers list --json | jq '.[].email'
    """
    from subscribers.store import list_subscribers  # lazy: start-up

    rows = list_subscribers(app.db, status=status, edition=edition, category=category)
    if as_json:
        # Streamed: a list of a million subscribers is never held in memory.
        first = True
        click.echo("[", nl=False)
        for row in rows:
            click.echo(("\n  " if first else ",\n  ") + json.dumps(row, ensure_ascii=False), nl=False)
            first = False
        click.echo("]" if first else "\n]")
        return
    # Fixed widths, not measured ones: the list is streamed, never held whole.
    line = "{:>6}  {:<12}  {:<32}  {:<20}  {:<16}  {}"
    count = 0
    for row in rows:
        if count == 0:
            click.echo(line.format("ID", "STATUS", "EMAIL", "NAME", "EDITIONS", "CATEGORIES"))
        name = row["name"] or "-"
        editions, categories = _labels(row["editions"]), _labels(row["categories"])
        click.echo(line.format(row["id"], row["status"], row["email"], name, editions, categories).rstrip())
        count += 1
    if count == 0:
        click.echo("No subscribers match.", err=True)


@subscribers.command(name="show")
@click.argument("email")
@json_option
@pass_app
def subscribers_show(app: App, email: str, as_json: bool) -> None:
    """Show one subscriber, their personal links and their consent record.

    \b
    Example:
      digest subscribers show alice@example.org
    """
    from subscribers.events import subscriber_events  # lazy: start-up
    from subscribers.store import get_subscriber  # lazy: start-up

    subscriber = get_subscriber(app.db, email)
    links = _links(app, subscriber)
    events = subscriber_events(app.db, subscriber["id"])
    data = {
        **subscriber,
        "unsubscribe_url": links["unsubscribe_url"],
        "preferences_url": links["preferences_url"],
        **({"confirm_url": links["confirm_url"]} if subscriber["status"] == "pending" else {}),
        "events": events,
    }
    if as_json:
        echo_json(data)
        return
    for key in ("id", "email", "name", "status", "timezone", "source", "created_at", "confirmed_at"):
        click.echo(f"{key + ':':<17}{data[key] if data[key] not in (None, '') else '-'}")
    click.echo(f"{'unsubscribed_at:':<17}{data['unsubscribed_at'] or '-'}")
    click.echo(f"{'editions:':<17}{_labels(data['editions'])}")
    click.echo(f"{'categories:':<17}{_labels(data['categories'])}")
    for key, value in sorted((data.get("attributes") or {}).items()):
        click.echo(f"{'attribute:':<17}{key} = {value}")
    click.echo(f"{'unsubscribe_url:':<17}{data['unsubscribe_url']}")
    click.echo(f"{'preferences_url:':<17}{data['preferences_url']}")
    if subscriber["status"] == "pending":
        click.echo(f"{'confirm_url:':<17}{links['confirm_url']}")
    click.echo("history:")
    for event in events:
        detail = json.dumps(event["detail"], ensure_ascii=False) if event["detail"] else ""
        click.echo(f"  {event['at']}  {event['kind']:<12} via {event['source']:<7} {detail}".rstrip())


@subscribers.command(name="stats")
@json_option
@pass_app
def subscribers_stats(app: App, as_json: bool) -> None:
    """Counts by status, the suppression list, and the last 30 days of changes.

    The last 30 days count consent events: sign-up requests from the form, subscribes,
    confirmations, resubscribes, unsubscribes (and the mailed unsubscribes and spam
    complaints behind some of them), removals, bounces (the status change, and the hard
    and soft bounce reports) and preference changes.

    \b
    Example:
      digest subscribers stats
    """
    from digest.bounces.process import reports_per_day  # lazy: start-up
    from subscribers.stats import STATS_GROUPS, subscriber_stats  # lazy: start-up

    stats = subscriber_stats(app.db, reports_per_day=reports_per_day)
    if as_json:
        echo_json(stats)
        return
    click.echo(f"total:        {stats['total']}")
    for status, count in stats["by_status"].items():
        click.echo(f"{status + ':':<14}{count}")
    click.echo(f"complained:   {stats['complained']} (marked an issue as spam; unsubscribed)")
    click.echo(f"suppressed:   {stats['suppressed']} (removed addresses)")
    reports = stats["bounce_reports_30_days"]
    click.echo(f"bounce mail:  {reports['hard']} hard, {reports['soft']} soft in the last 30 days")
    recent = stats["last_30_days"]
    for number, group in enumerate(STATS_GROUPS):
        counts = ", ".join(f"{recent[kind]} {kind}" for kind in group)
        click.echo(f"{'last 30 days:' if number == 0 else '':<14}{counts}")


@subscribers.command(name="set")
@click.argument("email")
@click.option("--edition", "editions", multiple=True, help="Receive only these editions (repeat).")
@click.option("--all-editions", is_flag=True, help="Receive every edition.")
@click.option("--category", "categories", multiple=True, help="Follow only these categories (repeat).")
@click.option("--all-categories", is_flag=True, help="Follow every category.")
@click.option("--timezone", default=None, help="IANA time zone; an empty string means the edition's.")
@click.option("--name", default=None, help="Display name.")
@allow_new_category_option
@pass_app
def subscribers_set(
    app: App,
    email: str,
    editions: tuple[str, ...],
    all_editions: bool,
    categories: tuple[str, ...],
    all_categories: bool,
    timezone: str | None,
    name: str | None,
    allow_new_category: bool,
) -> None:
    """Change a subscriber's editions, categories, time zone or name.

    \b
    Example:
      digest subscribers set alice@example.org --edition weekly --category Science
      digest subscribers set alice@example.org --all-categories --timezone Europe/Paris
    """
    from subscribers.store import UNCHANGED, get_subscriber, set_preferences  # lazy: start-up

    if editions and all_editions:
        raise click.UsageError("use --edition or --all-editions, not both")
    if categories and all_categories:
        raise click.UsageError("use --category or --all-categories, not both")
    subscriber = get_subscriber(app.db, email)
    changes = set_preferences(
        app.db,
        subscriber["id"],
        editions=list(editions) if editions else (None if all_editions else UNCHANGED),
        categories=list(categories) if categories else (None if all_categories else UNCHANGED),
        timezone=UNCHANGED if timezone is None else timezone,
        name=UNCHANGED if name is None else name,
        source="cli",
        **_known(app, allow_new_category),
    )
    if not changes:
        click.echo(f"No change for {subscriber['email']}.")
        return
    shown = []
    for key, (_old, new) in changes.items():
        value = _labels(new) if key in ("editions", "categories") else (new or "-")
        shown.append(f"{key} = {value}")
    click.echo(f"Updated {subscriber['email']}: " + "; ".join(shown))


@subscribers.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and count, write nothing.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows and report the invalid ones.")
@click.option("--resubscribe", is_flag=True, help="Reactivate unsubscribed, bounced and removed addresses.")
@click.option("--send-confirmations", is_flag=True, help="Email a confirmation to each row added as pending.")
@click.option(
    "--status",
    type=click.Choice(("active", "unsubscribed", "bounced")),
    help="Every row's status, for a file without a status column.",
)
@json_option
@allow_new_category_option
@pass_app
def subscribers_import(
    app: App,
    file: Path,
    dry_run: bool,
    skip_invalid: bool,
    resubscribe: bool,
    send_confirmations: bool,
    status: str | None,
    as_json: bool,
    allow_new_category: bool,
) -> None:
    """Import subscribers from CSV: email (required), name, editions, categories, timezone, status.

    Other tools' headers are understood too: "Email Address", "E-mail", and
    "First Name" + "Last Name" (joined into the name when there is no name
    column). Any other column is kept as a subscriber attribute, keyed by its
    name in lower case, "_" for spaces and punctuation ("Company Size" is company_size),
    exported again, and usable in templates as a merge field:

    \b
      {{ subscriber.attributes.company_size }}

    Editions and categories are ';'-separated. Rows for known addresses update
    them; nobody who left is made active again without --resubscribe. Without
    --skip-invalid, one invalid row aborts the import and nothing is written.

    Each row's status comes from the file: a status column (digest's, or
    Mailchimp's, listmonk's, Buttondown's values), Ghost's subscribed_to_emails,
    Substack's email_disabled; Mailchimp's unsubscribed export (UNSUB_TIME) is
    all unsubscribed, its cleaned export (CLEAN_TIME) all bounced. --status says
    it for a file with none. OPTIN_TIME/OPTIN_IP/CONFIRM_TIME/CONFIRM_IP go into
    the consent record.

    \b
    Example:
      digest subscribers import people.csv --dry-run
      digest subscribers import people.csv --skip-invalid
      digest subscribers import unsubscribed_members_export.csv
      digest subscribers import left-last-year.csv --status unsubscribed
    """
    kwargs: dict[str, Any] = {
        "dry_run": dry_run,
        "skip_invalid": skip_invalid,
        "resubscribe": resubscribe,
        "status": status,
        **_known(app, allow_new_category),
    }
    from subscribers.store import next_subscriber_id, pending_ids_from  # lazy: start-up

    first_new_id = next_subscriber_id(app.db)
    report = _import(app, file, kwargs, bar=is_terminal() and not as_json)
    if send_confirmations and not dry_run:
        # Ids only grow, so the rows this import added are those from first_new_id on.
        new_pending = pending_ids_from(app.db, first_new_id)
        _send_confirmations(app, new_pending, to_stderr=as_json)
    if as_json:
        echo_json(report.as_dict())
        return
    _echo_import(report)


def _import(app: App, file: Path, kwargs: dict[str, Any], *, bar: bool) -> Any:
    """import_csv, with a progress bar over the file's bytes when ``bar``."""
    from subscribers.importer import import_csv  # lazy: start-up

    if not bar:
        return import_csv(app.db, file, **kwargs)
    size = file.stat().st_size
    with click.progressbar(length=size, label="Importing", show_percent=True, show_eta=True) as progress:
        return import_csv(app.db, file, progress=progress.update, **kwargs)


def _echo_import(report: Any) -> None:
    """What an import did (an ImportReport), for a person."""
    verb = "Dry run, nothing written:" if report.dry_run else "Imported"
    click.echo(
        f"{verb} {report.file}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.duplicates} duplicate in file, "
        f"{report.suppressed} suppressed, {report.invalid} invalid."
    )
    click.echo(_by_status(report.statuses))
    for line, error in report.invalid_rows:
        click.echo(f"  line {line}: {error}")
    if report.invalid > len(report.invalid_rows):
        click.echo(f"  … and {report.invalid - len(report.invalid_rows)} more invalid rows")
    if report.attribute_columns:
        click.echo("Kept as attributes: " + ", ".join(report.attribute_columns), err=True)
    if report.ignored_columns:
        click.echo("Ignored columns: " + ", ".join(report.ignored_columns), err=True)


def _by_status(statuses: dict[str, int]) -> str:
    """The file's rows by status, e.g. "By status: 10 active, 2 unsubscribed, 1 bounced"."""
    order = [*STATUSES, ""]
    shown = [
        f"{statuses[s]} {s}" if s else f"{statuses[s]} without a status (new: active; known: kept)"
        for s in sorted(statuses, key=order.index)
        if statuses[s]
    ]
    return "By status: " + (", ".join(shown) or "no rows") + "."


@subscribers.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@pass_app
def subscribers_export(app: App, fmt: str, output: Path | None, status: str | None) -> None:
    """Export subscribers as CSV (the import format: the two round-trip) or JSON.

    \b
    Example:
      digest subscribers export --output subscribers.csv
      digest subscribers export --format json > subscribers.json
    """
    from digest.atomic import PRIVATE, atomic_output  # lazy: start-up
    from subscribers.exporter import export_subscribers  # lazy: start-up
    from subscribers.store import count_subscribers  # lazy: start-up

    if output is None:
        export_subscribers(app.db, sys.stdout, format=fmt, status=status)
        return
    # Written beside the target (0600: it is personal data) and moved into place, so a failed
    # export never leaves half a file and a link planted in the folder is never followed.
    folder = output.resolve().parent
    if not folder.is_dir():
        raise DigestError(f"{output}: folder {folder} does not exist")
    with atomic_output(output, mode=PRIVATE, newline="") as handle:
        if is_terminal():
            total = count_subscribers(app.db, status=status)
            with click.progressbar(length=total, label="Exporting", show_pos=True) as bar:
                count = export_subscribers(app.db, handle, format=fmt, status=status, progress=bar.update)
        else:
            count = export_subscribers(app.db, handle, format=fmt, status=status)
    click.echo(f"Exported {count} subscribers to {output}.")


for _command in STATUS_COMMANDS:
    subscribers.add_command(_command)
