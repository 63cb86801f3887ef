"""The editor's desk, articles and reading: an article's editor values and visibility, an
issue built ahead of its time, each issue's state and history. Re-exported by
:mod:`digest.compose.editing` (the desk's one import); see its docstring for the list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from digest.compose.build import ComposeResult, compose_issue
from digest.compose.history import discarded_issue, discarded_issues, issue_changes, record_change
from digest.compose.issues import (
    EditRefused,
    drafts_carrying,
    get_issue,
    issue_name,
    issue_rows,
    list_issues,
    update_issue,
)
from digest.compose.memory import held_back
from digest.compose.snapshot import refresh_issue
from digest.config import Config
from digest.errors import NotFound
from digest.ingest.article_edits import (
    article_row,
    articles_by_id,
    clean_editor_values,
    editor_values,
    feed_values,
    set_hidden,
    store_editor_values,
    with_editor_values,
)
from digest.ingest.articles import get_article
from digest.localtime import next_fire_time
from digest.store.database import iso, transaction, utcnow
from digest.summary import make_summaries

STATES = ("draft", "awaiting approval", "approved", "sending", "sent", "discarded")


def article_view(db: sqlite_utils.Database, article_id: int | str) -> dict[str, Any]:
    """The article as ``articles show`` gives it (the values issues show), with ``feed`` (what
    the source says) and ``editor`` (what an editor set; None where the feed's stands)."""
    row = article_row(db, article_id)
    shown = get_article(db, article_id)
    effective = with_editor_values(row)
    for field in ("title", "category", "author", "summary_text"):
        shown[field] = effective[field]
    shown["feed"] = feed_values(row)
    shown["editor"] = editor_values(row)
    return shown


def _remake_drafts(
    db: sqlite_utils.Database, config: Config, article_id: int, editor: str, action: str
) -> list[str]:
    """Remake every draft carrying the article (an approval is withdrawn); their names."""
    names = []
    for issue in drafts_carrying(db, article_id):
        record_change(db, editor, action, issue=issue, article_id=article_id, detail="the article changed")
        if issue.get("approved_at"):
            update_issue(db, issue["id"], approved_at=None, approved_by=None)
            record_change(db, editor, "unapprove", issue=issue, detail=f"withdrawn by the change: {action}")
        refresh_issue(db, config, issue["id"])
        names.append(issue_name(issue))
    return names


def edit_article(
    db: sqlite_utils.Database,
    config: Config,
    article_id: int | str,
    values: dict[str, str | None],
    editor: str,
) -> dict[str, Any]:
    """Store the editor's ``title``, ``summary``, ``category`` or ``byline`` beside the feed's
    ("" goes back to the feed's); they win in every issue built after and survive a
    re-ingest, and drafts carrying the article are remade. Returns :func:`article_view` plus
    ``issues``: the drafts remade."""
    cleaned = clean_editor_values(config, values)
    with transaction(db):
        key = int(article_row(db, article_id)["id"])
        store_editor_values(db, key, cleaned)
        detail = "; ".join(f"{k}: {v if v is not None else '(the feed’s)'}" for k, v in cleaned.items())
        record_change(db, editor, "edit", article_id=key, detail=detail)
        names = _remake_drafts(db, config, key, editor, "article edit")
    return {**article_view(db, key), "issues": names}


def regenerate_summary(
    db: sqlite_utils.Database, config: Config, article_id: int | str, editor: str
) -> dict[str, Any]:
    """Ask the model again for the article's summary (``[summary] engine = "llm"`` only; the
    editor's own summary, if any, gives way to it); drafts carrying it are remade. Returns
    :func:`article_view` plus ``issues`` and ``warnings`` (the model's answer was unusable)."""
    if config.summary.engine != "llm":
        raise EditRefused('summaries are not made by a model here; set [summary] engine = "llm"')
    key = int(article_row(db, article_id)["id"])
    report = make_summaries(db, config, [key], force=True)  # seconds: outside the transaction
    with transaction(db):
        store_editor_values(db, key, {"summary": None})
        record_change(db, editor, "regenerate summary", article_id=key)
        names = _remake_drafts(db, config, key, editor, "summary regenerated")
    return {**article_view(db, key), "issues": names, "warnings": report.warnings}


def hide_article(
    db: sqlite_utils.Database, config: Config, article_id: int | str, editor: str
) -> dict[str, Any]:
    """Keep the article out of every issue (drafts carrying it are remade without it)."""
    return _set_hidden(db, config, article_id, editor, hide=True)


def unhide_article(
    db: sqlite_utils.Database, config: Config, article_id: int | str, editor: str
) -> dict[str, Any]:
    """Undo :func:`hide_article`."""
    return _set_hidden(db, config, article_id, editor, hide=False)


def _set_hidden(
    db: sqlite_utils.Database, config: Config, article_id: int | str, editor: str, *, hide: bool
) -> dict[str, Any]:
    with transaction(db):
        row = article_row(db, article_id)
        if bool(row["hidden_at"]) == hide:
            raise EditRefused(f"article {row['id']} is {'already' if hide else 'not'} hidden")
        set_hidden(db, row["id"], iso(utcnow()) if hide else None)
        action = "hide" if hide else "unhide"
        record_change(db, editor, action, article_id=row["id"])
        names = _remake_drafts(db, config, row["id"], editor, f"article {action}")
    return {**article_view(db, row["id"]), "issues": names}


def build_ahead(
    db: sqlite_utils.Database,
    config: Config,
    edition: str | None,
    editor: str,
    *,
    now: datetime | None = None,
) -> ComposeResult:
    """Build the edition's next scheduled issue now, as a draft to preview and edit; when its
    time comes, ``digest run`` selects its stories again (unless it is locked) and sends it."""
    ed = config.edition(edition)
    period_end = next_fire_time(ed, now or utcnow())
    result = compose_issue(db, config, ed.key, period_end=period_end)
    if result.created and result.issue is not None:
        with transaction(db):
            record_change(db, editor, "build", issue=result.issue, detail="ahead of its time")
    return result


def issue_state(config: Config, issue: dict[str, Any]) -> str:
    """One of :data:`STATES`: sending and sent as stored; a draft is approved once approved,
    else awaiting approval where its edition requires one, else a draft."""
    if issue.get("status") in ("sending", "sent", "discarded"):
        return issue["status"]
    if issue.get("approved_at"):
        return "approved"
    edition = config.editions.get(issue["edition"])
    if edition is not None and edition.approval == "required":
        return "awaiting approval"
    return "draft"


def issues_with_states(
    db: sqlite_utils.Database, config: Config, edition: str | None = None
) -> list[dict[str, Any]]:
    """Every issue (newest period first) with its ``state``, the discarded ones included
    (``status`` and ``state`` "discarded", ``subject`` as it was, ``articles`` 0)."""
    rows = [{**r, "state": issue_state(config, r)} for r in list_issues(db, edition)]
    for gone in discarded_issues(db, edition):
        rows.append(
            {
                "id": gone["id"],
                "edition": gone["edition"],
                "number": gone["number"],
                "period_end": gone["period_end"],
                "subject": gone["detail"],
                "status": "discarded",
                "state": "discarded",
                "articles": 0,
                "discarded_at": gone["at"],
                "discarded_by": gone["editor"],
            }
        )
    return sorted(rows, key=lambda r: (r["period_end"] or "", r["id"] or 0), reverse=True)


def dropped_stories(db: sqlite_utils.Database, issue_id: int) -> list[dict[str, Any]]:
    """The stories an editor dropped from the issue (id, title, url, source, category), in
    their places (not those held back as already sent: see ``held_back_stories``)."""
    ids = [r["article_id"] for r in issue_rows(db, issue_id) if r["dropped"] and not held_back(r)]
    articles = articles_by_id(db, ids)
    return [
        {k: articles[i][k] for k in ("id", "title", "url", "source", "category")}
        for i in ids
        if i in articles
    ]


def _discarded(db: sqlite_utils.Database, text: str) -> dict[str, Any] | None:
    """The discard record a name (``daily/3``) or an id stands for."""
    if text.isascii() and text.isdigit() and len(text) < 19:
        return discarded_issue(db, int(text))
    edition, _, number = text.partition("/")
    if number.isascii() and number.isdigit() and len(number) < 19:
        return discarded_issue(db, edition=edition.strip(), number=int(number))
    return None


def issue_history(db: sqlite_utils.Database, ref: str | int) -> dict[str, Any]:
    """The issue (``name``, ``id``) and its ``changes`` (at, editor, action, article_id, detail),
    oldest first; a discarded issue is found by its id."""
    try:
        issue = get_issue(db, ref)
    except NotFound:
        gone = _discarded(db, str(ref).strip())
        if gone is None:
            raise
        issue = gone
    return {"name": issue_name(issue), "id": issue["id"], "changes": issue_changes(db, issue["id"])}
