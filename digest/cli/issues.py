"""`digest issues`: build an edition's issue for a date, list issues, show one, set its note."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.cli.issue_edits import EDIT_COMMANDS, local_editor
from digest.cli.summaries import echo_warnings, summary_progress
from digest.compose.build import ComposeResult, compose_issue
from digest.compose.editing import build_ahead, dropped_stories, issue_state, issues_with_states, set_note
from digest.compose.issues import ISSUE_NAME_HELP, get_issue, issue_name, issue_snapshot
from digest.compose.memory import held_back_stories
from digest.compose.periods import latest_scheduled_time, scheduled_time
from digest.errors import DigestError
from digest.ingest.sanitize import one_line
from digest.store.database import from_iso, utcnow


@click.group(name="issues")
def issues() -> None:
    """Build, list and show digest issues; add an editor's note.

    Issues are named EDITION/NUMBER (daily/3); `latest` is the most recently
    built one and daily/latest the latest daily.

    \b
    Example:
      digest issues build daily --date 2026-01-23
      digest issues list --edition daily
      digest issues show daily/latest
      digest issues note latest "Back to daily issues from Monday."
    """


@issues.command(name="build")
@click.argument("edition", required=False)
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Local date whose scheduled issue to build (default: the latest scheduled time so far).",
)
@click.option("--ahead", is_flag=True, help="Build the next scheduled issue now, as a draft to edit.")
@json_option
@pass_app
def issues_build(app: App, edition: str | None, on: datetime | None, ahead: bool, as_json: bool) -> None:
    """Compose the EDITION issue for the period ending at its scheduled time.

    Building the same edition and date again returns the existing issue. An
    empty period builds nothing and says so (exit status 0). With --ahead the
    next scheduled issue is built now; when its time comes `digest run`
    selects its stories again (unless it is locked) and sends it.

    \b
    Example:
      digest issues build daily --date 2026-01-23
      digest issues build daily --ahead
    """
    config = app.config
    ed = config.edition(edition)
    now = utcnow()
    if ahead and on:
        raise click.UsageError("give --date or --ahead, not both")
    if ahead:
        result = build_ahead(app.db, config, ed.key, local_editor(), now=now)
        _echo_built(result, as_json)
        return
    period_end = scheduled_time(ed, on.date()) if on else latest_scheduled_time(ed, now)
    if period_end > now:
        local = period_end.astimezone(ed.zone)
        raise DigestError(
            f"the {ed.key} issue for {_day(on)} is scheduled for {local:%Y-%m-%d %H:%M} {ed.timezone}, "
            "which has not come yet; build it after then, pass an earlier --date, or use --ahead"
        )
    result = compose_issue(app.db, config, ed.key, period_end=period_end, progress=summary_progress())
    _echo_built(result, as_json)


def _echo_built(result: ComposeResult, as_json: bool) -> None:
    echo_warnings(result.warnings)
    if as_json:
        echo_json({"created": result.created, "message": result.message, "issue": _summary(result.issue)})
        return
    click.echo(result.message)
    if result.issue is not None:
        click.echo(f"  {issue_name(result.issue)}: {result.issue['subject']}")


def _day(on: datetime | date | None) -> str:
    return on.strftime("%Y-%m-%d") if on else "today"


@issues.command(name="list")
@click.option("--edition", help="Only this edition's issues.")
@json_option
@pass_app
def issues_list(app: App, edition: str | None, as_json: bool) -> None:
    """List issues, newest first.

    \b
    Example:
      digest issues list --edition weekly --json
    """
    if edition:
        app.config.edition(edition)  # an unknown edition is an error, not an empty list
    rows = issues_with_states(app.db, app.config, edition)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No issues yet; build one with `digest issues build`.")
        return
    table = [("ISSUE", "DATE", "STATUS", "ARTICLES", "ID", "SUBJECT")]
    for r in rows:
        day = from_iso(r["period_end"]).astimezone(_zone(app, r["edition"])).date()
        table.append(
            (issue_name(r), day.isoformat(), r["state"], str(r["articles"]), str(r["id"]), r["subject"])
        )
    for line in columns(table, right={3, 4}):
        click.echo(line)


@issues.command(name="show", epilog=ISSUE_NAME_HELP)
@click.argument("issue", default="latest")
@json_option
@pass_app
def issues_show(app: App, issue: str, as_json: bool) -> None:
    """Show ISSUE (daily/3, latest, daily/latest or an id): subject, period and
    its articles by category, each with the summary it shows (a generated one after its
    label, e.g. "AI-generated summary:") and the other outlets merged into its card
    ("Also covered by").

    \b
    Example:
      digest issues show latest
      digest issues show daily/3 --json
    """
    row = get_issue(app.db, issue)
    snapshot = issue_snapshot(row)
    dropped = dropped_stories(app.db, row["id"])
    held = held_back_stories(app.db, row["id"])
    state = issue_state(app.config, row)
    if as_json:
        categories = snapshot.get("categories", [])
        echo_json(
            {**_summary(row), "state": state, "categories": categories, "dropped": dropped, "held_back": held}
        )
        return
    click.echo(f"Issue {issue_name(row)}: {row['subject']}")
    click.echo(f"  edition {row['edition']}, number {row['number']} (id {row['id']}), state {state}")
    click.echo(f"  period  {row['period_start']} – {row['period_end']}")
    click.echo(f"  preview {row['preheader']}")
    if row.get("note"):
        click.echo(f"  note    {row['note']}")
    for category in snapshot.get("categories", []):
        click.echo(f"\n{category['name']} ({len(category['articles'])})")
        for article in category["articles"]:
            source = f" — {article['source']}" if article.get("source") else ""
            lead = "LEAD " if article.get("lead") else ""
            lead += "Update: " if article.get("news") else ""
            click.echo(
                f"  - [{article['id']}] {lead}{article['title']}{source} ({article['published_local']})"
            )
            click.echo(f"    {article['url']}")
            for line in _card_lines(article):
                click.echo(f"    {line}")
    if dropped:
        click.echo(f"\nDropped ({len(dropped)})")
        for article in dropped:
            click.echo(f"  - [{article['id']}] dropped: {article['title']}")
    if held:
        click.echo(f"\nHeld back as already sent ({len(held)}; `digest issues add ISSUE ID` puts one back)")
        for article in held:
            click.echo(f"  - [{article['id']}] {article['title']}")
            click.echo(f"    {article['reason']}")


def _card_lines(article: dict[str, Any]) -> list[str]:
    """The summary (after its label when a model wrote it) and the "Also covered by" outlets."""
    lines: list[str] = []
    summary = one_line(article.get("summary") or "")
    if summary:
        label = article.get("summary_label") or ""
        lines.append(f"{label}: {summary}" if label else summary)
    if article.get("news"):
        lines.append(f"{article['news']}.")
    others = article.get("also_covered") or []
    if others:
        lines.append("Also covered by: " + ", ".join(f"{o['source']} <{o['url']}>" for o in others))
    return lines


def _zone(app: App, edition: str) -> Any:
    """The edition's zone; UTC for an edition no longer in the config."""
    known = app.config.editions.get(edition)
    return known.zone if known else UTC


@issues.command(name="note", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("text")
@pass_app
def issues_note(app: App, issue: str, text: str) -> None:
    """Set the editor's note shown at the top of ISSUE (daily/3, latest, daily/latest
    or an id) before it is sent.

    TEXT is plain text (a blank line starts a new paragraph; at most 1000
    characters); an empty TEXT removes the note. Refused once sending started.

    \b
    Example:
      digest issues note daily/3 "No issue on Monday: the newsroom is on a trip."
      digest issues note 12 ""
    """
    click.echo(set_note(app.db, app.config, issue, text, local_editor()).message)


def _summary(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"name": issue_name(row), **{k: v for k, v in row.items() if k != "snapshot"}}


for _command in EDIT_COMMANDS:
    issues.add_command(_command)
