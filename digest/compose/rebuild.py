"""Select a draft's stories again from its window, keeping every editor's choice.

:func:`reselect` is what ``digest issues rebuild`` and a scheduled run (for an issue built
ahead of its time) do: the articles of the window that no other issue of the edition
carries and no editor hid are chosen as at the first build; a dropped story stays dropped
(and is not chosen again), an added one stays, stories still chosen keep their place (so
an editor's order holds) and new ones go in at their natural place (newest first in their
section). Lead, subject, preheader and note are the issue's and are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from digest.compose.build import Picked, candidate_articles, pick_stories, story_rows
from digest.compose.issues import delete_issue_rows, insert_issue_rows, issue_rows, update_issue_row
from digest.config import Config
from digest.errors import DigestError
from digest.ingest.article_edits import articles_by_id
from digest.store.database import from_iso
from digest.summary import make_summaries


@dataclass
class Reselection:
    """How a rebuild changed the stories: cards new to the issue and cards no longer in the window."""

    added: int
    removed: int

    def summary(self) -> str:
        """``+2 stories, −1 no longer in the window`` (``no change`` when nothing moved)."""
        if not self.added and not self.removed:
            return "no change in the stories"
        parts = []
        if self.added:
            parts.append(f"+{self.added} {'story' if self.added == 1 else 'stories'}")
        if self.removed:
            parts.append(f"\u2212{self.removed} no longer in the window")
        return ", ".join(parts)


def reselect(db: sqlite_utils.Database, config: Config, issue: dict[str, Any]) -> Reselection:
    """Choose the draft's stories from its window again (inside the caller's transaction);
    the caller then remakes the snapshot."""
    edition = config.edition(issue["edition"])
    rows = issue_rows(db, issue["id"])
    dropped = {r["article_id"] for r in rows if r["dropped"]}
    candidates = candidate_articles(
        db, edition.key, from_iso(issue["period_start"]), from_iso(issue["period_end"]), own_issue=issue["id"]
    )
    start, end = from_iso(issue["period_start"]), from_iso(issue["period_end"])
    picked = pick_stories(db, config, edition, [a for a in candidates if a["id"] not in dropped], start, end)
    stories = picked.shown
    role: dict[int, int | None] = {s.lead["id"]: None for s in stories}
    role.update({o["id"]: s.lead["id"] for s in stories for o in s.others})
    present = {r["article_id"]: r for r in rows}
    gone = [r for r in rows if not r["added"] and not r["dropped"] and r["article_id"] not in role]
    delete_issue_rows(db, issue["id"], [r["article_id"] for r in gone])
    for article_id, card_of in role.items():
        row = present.get(article_id)
        if row is not None and not row["added"] and not row["dropped"] and row["card_of"] != card_of:
            update_issue_row(db, issue["id"], article_id, card_of=card_of)
    new_cards = [s.lead for s in stories if s.lead["id"] not in present]
    new_merged = [(o, s.lead) for s in stories for o in s.others if o["id"] not in present]
    _place(db, issue["id"], [r for r in rows if r not in gone], new_cards, new_merged)
    _remember(db, issue["id"], picked, set(present))
    return Reselection(added=len(new_cards), removed=sum(1 for r in gone if r["card_of"] is None))


def summarize_window(db: sqlite_utils.Database, config: Config, issue: dict[str, Any]) -> list[str]:
    """With ``[summary] engine = "llm"``, make the summaries a rebuild of ``issue`` will show
    (before its transaction: a model takes seconds); a model that cannot be used at all
    leaves every new card its feed summary. Returns the warnings."""
    if config.summary.engine != "llm":
        return []
    edition = config.edition(issue["edition"])
    start, end = from_iso(issue["period_start"]), from_iso(issue["period_end"])
    candidates = candidate_articles(db, edition.key, start, end, own_issue=issue["id"])
    leads = [s.lead["id"] for s in pick_stories(db, config, edition, candidates, start, end).shown]
    try:
        return make_summaries(db, config, leads).warnings
    except DigestError as exc:
        return [f"summaries: {exc}; new stories keep their feed summary"]


def _remember(db: sqlite_utils.Database, issue_id: int, picked: Picked, present: set[int]) -> None:
    """Note the repeats among the cards new to the issue, and add the stories new to it that
    are held back as already sent (dropped rows after the others, as at a first build)."""
    for story in picked.shown:
        repeat = picked.repeats.get(story.lead["id"])
        if repeat is not None and story.lead["id"] not in present:
            update_issue_row(db, issue_id, story.lead["id"], repeat=repeat.note())
    held = [s for s in picked.held if s.lead["id"] not in present]
    if held:
        last = max((r["position"] for r in issue_rows(db, issue_id)), default=0)
        rows = story_rows([], last + 1, Picked([], held, picked.repeats))
        insert_issue_rows(db, issue_id, rows)


def _place(
    db: sqlite_utils.Database,
    issue_id: int,
    kept: list[dict[str, Any]],
    new_cards: list[dict[str, Any]],
    new_merged: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Insert the new cards before the first older card of their category (after the last
    card of it when none is older) and the merged ones last; renumber every row."""
    known = articles_by_id(db, [r["article_id"] for r in kept])
    order: list[dict[str, Any]] = [
        {**r, "new": False, "published_at": known.get(r["article_id"], {}).get("published_at", "")}
        for r in kept
    ]
    for card in new_cards:  # newest first
        entry = {
            "article_id": card["id"],
            "category": card["category"],
            "card_of": None,
            "new": True,
            "published_at": card["published_at"],
        }
        same = [n for n, r in enumerate(order) if r["card_of"] is None and r["category"] == card["category"]]
        older = [
            n
            for n in same
            if (order[n]["published_at"], order[n]["article_id"]) < (card["published_at"], card["id"])
        ]
        at = older[0] if older else (same[-1] + 1 if same else len(order))
        order.insert(at, entry)
    for other, lead in new_merged:
        order.append(
            {"article_id": other["id"], "category": lead["category"], "card_of": lead["id"], "new": True}
        )
    fresh = []
    for position, row in enumerate(order, 1):
        if row["new"]:
            fresh.append({**row, "position": position})
        elif row["position"] != position:
            update_issue_row(db, issue_id, row["article_id"], position=position)
    # Positions of kept rows were moved first: a new row never meets an old one's number.
    insert_issue_rows(db, issue_id, fresh)
