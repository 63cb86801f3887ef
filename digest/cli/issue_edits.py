"""`digest issues drop/restore/add/lead/move/subject/rebuild/discard/lock/unlock/approve/
unapprove/history`: the editor's desk from the command line (parse, call
:mod:`digest.compose.editing`, print). Every change is recorded under the local user name."""

from __future__ import annotations

import getpass
from collections.abc import Callable

import click

from digest.cli.common import App, columns, echo_json, json_option, pass_app
from digest.compose import editing
from digest.compose.issues import ISSUE_NAME_HELP


def local_editor() -> str:
    """Who edits from this terminal: the local user name."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no name for this uid
        return "unknown"


@click.command(name="drop", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("articles", nargs=-1, required=True, type=int)
@pass_app
def issues_drop(app: App, issue: str, articles: tuple[int, ...]) -> None:
    """Drop stories (ids from `digest issues show`) from the draft ISSUE: they leave the
    email, its text part and the web version; `issues show` lists them as dropped.

    \b
    Example:
      digest issues drop daily/3 17 21
    """
    click.echo(editing.drop_stories(app.db, app.config, issue, list(articles), local_editor()).message)


@click.command(name="restore", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("articles", nargs=-1, required=True, type=int)
@pass_app
def issues_restore(app: App, issue: str, articles: tuple[int, ...]) -> None:
    """Put dropped stories back into the draft ISSUE, at their place.

    \b
    Example:
      digest issues restore daily/3 17
    """
    click.echo(editing.restore_stories(app.db, app.config, issue, list(articles), local_editor()).message)


@click.command(name="add", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("articles", nargs=-1, required=True, type=int)
@pass_app
def issues_add(app: App, issue: str, articles: tuple[int, ...]) -> None:
    """Put stored articles (ids from `digest articles list`) into the draft ISSUE, even from
    outside its window; each goes last in its section.

    \b
    Example:
      digest issues add daily/3 42
    """
    click.echo(editing.add_stories(app.db, app.config, issue, list(articles), local_editor()).message)


@click.command(name="lead", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("article", required=False, type=int)
@click.option("--none", "clear", is_flag=True, help="No lead story.")
@pass_app
def issues_lead(app: App, issue: str, article: int | None, clear: bool) -> None:
    """Make ARTICLE the lead story of the draft ISSUE: shown first, above the sections.

    \b
    Example:
      digest issues lead daily/3 17
      digest issues lead daily/3 --none
    """
    if clear == (article is not None):
        raise click.UsageError("give an ARTICLE id or --none")
    click.echo(
        editing.set_lead(app.db, app.config, issue, None if clear else article, local_editor()).message
    )


@click.command(name="move", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("article", type=int)
@click.option("--to", "to", type=int, required=True, help="Its place in its section, 1 = first.")
@pass_app
def issues_move(app: App, issue: str, article: int, to: int) -> None:
    """Move ARTICLE to place N within its section of the draft ISSUE.

    \b
    Example:
      digest issues move daily/3 17 --to 1
    """
    click.echo(editing.move_story(app.db, app.config, issue, article, to, local_editor()).message)


@click.command(name="subject", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@click.argument("subject", required=False)
@click.option("--preheader", help="The inbox preview line instead of the next headlines.")
@click.option("--reset", is_flag=True, help="Back to the template's subject and preheader.")
@pass_app
def issues_subject(app: App, issue: str, subject: str | None, preheader: str | None, reset: bool) -> None:
    """Write the subject (and --preheader) of the draft ISSUE; they replace the template's.

    \b
    Example:
      digest issues subject daily/3 "The flood, a day later" --preheader "And the vote"
      digest issues subject daily/3 --reset
    """
    result = editing.set_subject(
        app.db, app.config, issue, local_editor(), subject=subject, preheader=preheader, reset=reset
    )
    click.echo(result.message)
    click.echo(f"  subject:   {result.issue['subject']}")
    click.echo(f"  preheader: {result.issue['preheader']}")


@click.command(name="rebuild", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@pass_app
def issues_rebuild(app: App, issue: str) -> None:
    """Select the draft ISSUE's stories from its window again (after an ingest or a fix),
    keeping every editor's choice: drops, adds, lead, order, subject, note.

    \b
    Example:
      digest issues rebuild daily/3
    """
    click.echo(editing.rebuild_issue(app.db, app.config, issue, local_editor()).message)


@click.command(name="discard", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@pass_app
def issues_discard(app: App, issue: str) -> None:
    """Throw away the draft ISSUE: it is no longer overdue or `latest`, and its number goes
    to the next issue of the edition. An issue that started sending cannot be discarded.

    \b
    Example:
      digest issues discard daily/3
    """
    click.echo(editing.discard_issue(app.db, app.config, issue, local_editor()).message)


def _simple(name: str, call: Callable[..., editing.EditResult], doc: str) -> click.Command:
    example = f"\n\n\b\nExample:\n  digest issues {name} daily/3"

    @click.command(name=name, epilog=ISSUE_NAME_HELP, help=doc + example)
    @click.argument("issue")
    @pass_app
    def command(app: App, issue: str) -> None:
        click.echo(call(app.db, app.config, issue, local_editor()).message)

    return command


issues_lock = _simple(
    "lock",
    editing.lock_issue,
    "Freeze the draft ISSUE's selection: no rebuild, not even the scheduled one at send time.",
)
issues_unlock = _simple("unlock", editing.unlock_issue, "Let the draft ISSUE's selection be made again.")
issues_approve = _simple(
    "approve", editing.approve_issue, "Approve the draft ISSUE: the scheduled run may send it."
)
issues_unapprove = _simple(
    "unapprove", editing.unapprove_issue, "Take back the approval of ISSUE before sending starts."
)


@click.command(name="history", epilog=ISSUE_NAME_HELP)
@click.argument("issue")
@json_option
@pass_app
def issues_history(app: App, issue: str, as_json: bool) -> None:
    """List every change made to ISSUE: what, when, by whom.

    \b
    Example:
      digest issues history daily/3
    """
    history = editing.issue_history(app.db, issue)
    if as_json:
        echo_json(history)
        return
    if not history["changes"]:
        click.echo(f"{history['name']}: no changes by an editor")
        return
    table = [("WHEN", "WHO", "WHAT", "ARTICLE", "DETAIL")]
    for change in history["changes"]:
        table.append(
            (
                change["at"].replace("+00:00", "Z"),
                change["editor"],
                change["action"],
                str(change["article_id"] or ""),
                change["detail"],
            )
        )
    click.echo(f"{history['name']}:")
    for line in columns(table):
        click.echo(f"  {line}")


EDIT_COMMANDS = [
    issues_drop,
    issues_restore,
    issues_add,
    issues_lead,
    issues_move,
    issues_subject,
    issues_rebuild,
    issues_discard,
    issues_lock,
    issues_unlock,
    issues_approve,
    issues_unapprove,
    issues_history,
]
