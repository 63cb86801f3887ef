"""`digest stats`: what readers read, how the list grows, whether inboxes trust us."""

from __future__ import annotations

from pathlib import Path

import click

from digest.atomic import write_atomic
from digest.cli.common import App, echo_json, json_option, pass_app
from digest.compose.issues import ISSUE_NAME_HELP
from digest.errors import DigestError


@click.command(name="stats", epilog=ISSUE_NAME_HELP)
@click.argument("issue", required=False)
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="How far back.")
@click.option("--list", "of_list", is_flag=True, help="The list: sign-ups, unsubscribes, size, sources.")
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Write a page with charts."
)
@click.option("--raw", is_flag=True, help="Exact click counts (for your own exports; not '<5').")
@json_option
@pass_app
def stats(
    app: App, issue: str | None, days: int, of_list: bool, html_file: Path | None, raw: bool, as_json: bool
) -> None:
    """Figures per issue: delivered, failed, bounced (hard/soft), complaints,
    unsubscribes within 7 days, clicks per story (with `[render] count_clicks`),
    and the complaint and bounce rates beside Gmail's 0.1 % / 0.3 % lines
    (⚠ over 0.1 %, ✘ over 0.3 %). Without ISSUE: every issue of the last --days.
    Click counts under 5 show as "<5" unless --raw.

    \b
    Example:
      digest stats latest
      digest stats --list --days 90 --json
      digest stats --html stats.html
    """
    from digest.compose.issues import get_issue  # lazy: start-up
    from digest.stats import figures, page, report  # lazy: start-up
    from digest.store.database import utcnow  # lazy: start-up

    now = utcnow()
    if html_file is not None:
        issues = [
            figures.issue_figures(app.db, get_issue(app.db, i["id"]), raw=raw)
            for i in figures.recent_issues(app.db, days, now)
        ]
        text = page.stats_page(app.config.publication.name, issues, figures.list_figures(app.db, days, now))
        try:
            write_atomic(html_file, text)
        except OSError as exc:
            raise DigestError(
                f"{html_file}: cannot write the page ({exc.strerror}); pick a writable path"
            ) from None
        click.echo(f"Wrote {html_file} ({len(issues)} issues, {days} days).")
        return
    if of_list:
        found = figures.list_figures(app.db, days, now)
        if as_json:
            echo_json(found)
        else:
            click.echo("\n".join(report.list_lines(found)))
        return
    chosen = (
        [get_issue(app.db, issue)]
        if issue
        else [get_issue(app.db, i["id"]) for i in figures.recent_issues(app.db, days, now)]
    )
    found_issues = [figures.issue_figures(app.db, row, raw=raw) for row in chosen]
    if as_json:
        echo_json(found_issues if not issue else found_issues[0])
        return
    if not found_issues:
        click.echo(f"No issue sent in the last {days} days.")
    click.echo("\n\n".join("\n".join(report.issue_lines(f)) for f in found_issues))
