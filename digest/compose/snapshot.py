"""An issue's snapshot, made from its stored rows and the editor's choices.

:func:`refresh_issue` is the one place a draft's snapshot, subject and preheader are made:
the first build and every editor's change call it. It reads the issue's ``issue_articles``
rows (the cards, the articles merged into them, the dropped ones), the articles with the
editor's values winning over the feed's, the summaries, and the issue's lead, subject and
preheader settings; it writes the snapshot, the subject, the preheader and each row's
category and position.

The snapshot contract for the lead story: the lead's card dict carries ``"lead": true`` and
stays in its own section at its place; ``snapshot["lead_id"]`` names it (None without a
lead). ``snapshot["subject"]``/``["preheader"]`` are the issue's, and
``subject_by_editor``/``preheader_by_editor`` say the editor wrote them (then every
category variant keeps them). A dropped story is not in the snapshot at all.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from digest.compose.issues import issue_by_id, issue_rows, update_issue, update_issue_row
from digest.compose.memory import Repeat, outlet
from digest.compose.periods import format_date, format_datetime
from digest.compose.subject import make_preheader, make_subject, preheader_titles
from digest.config import Config, Edition
from digest.errors import NotFound
from digest.ingest.article_edits import articles_by_id
from digest.ingest.images import load_image
from digest.store.database import from_iso
from digest.summary import ArticleSummary, article_summaries

SNAPSHOT_VERSION = 1


def order_categories(names: list[str], configured: list[str]) -> list[str]:
    """The edition's configured categories first (in its order), then the rest alphabetically."""
    rank = {c.casefold(): i for i, c in enumerate(configured)}
    present = list(dict.fromkeys(names))
    return sorted(present, key=lambda c: (rank.get(c.casefold(), len(rank)), c.casefold(), c))


def refresh_issue(db: sqlite_utils.Database, config: Config, issue_id: int) -> dict[str, Any]:
    """Remake the draft's snapshot, subject and preheader from its rows; return the issue row.

    Runs inside the caller's transaction; bumps the issue's ``version``.
    """
    issue = issue_by_id(db, issue_id)
    if issue is None:
        raise NotFound(f"issue {issue_id} not found; see `digest issues list`")
    edition = config.edition(issue["edition"])
    rows = issue_rows(db, issue_id)
    articles = articles_by_id(db, [r["article_id"] for r in rows])
    rows = [r for r in rows if r["article_id"] in articles]
    live = [r for r in rows if not r["dropped"] and not articles[r["article_id"]]["hidden_at"]]
    cards = [articles[r["article_id"]] for r in live if r["card_of"] is None]
    card_ids = {a["id"] for a in cards}
    merged: dict[int, list[dict[str, Any]]] = {}
    for r in live:
        if r["card_of"] in card_ids:
            merged.setdefault(r["card_of"], []).append(articles[r["article_id"]])
    by_category: dict[str, list[dict[str, Any]]] = {}
    for article in cards:  # in position order
        by_category.setdefault(article["category"], []).append(article)
    categories = order_categories(list(by_category), edition.categories)
    ordered = [a for c in categories for a in by_category[c]]
    lead_id = issue["lead_article_id"] if issue["lead_article_id"] in card_ids else None
    summaries = article_summaries(db, config, ordered)  # an editor's summary wins, labelled as theirs
    sections = []
    for category in categories:
        section = []
        for article in by_category[category]:
            shown = summaries[article["id"]]
            card = snapshot_article(
                article, edition, shown, config.summary.label, merged.get(article["id"], [])
            )
            if article["id"] == lead_id:
                card["lead"] = True
            section.append(card)
        sections.append({"name": category, "articles": section})
    _mark_news(sections, live)
    subject, preheader = _subject_and_preheader(config, edition, issue, ordered, lead_id)
    snapshot = {
        "version": SNAPSHOT_VERSION,
        "edition": edition.key,
        "edition_title": edition.title,
        "number": issue["number"],
        "date": format_date(from_iso(issue["period_end"]).astimezone(edition.zone)),
        "timezone": edition.timezone,
        "period_start": issue["period_start"],
        "period_end": issue["period_end"],
        "subject": subject,
        "preheader": preheader,
        "subject_by_editor": issue["subject_set"] is not None,
        "preheader_by_editor": issue["preheader_set"] is not None,
        "lead_id": lead_id,
        "categories": sections,
    }
    _store_order(db, issue_id, rows, articles, categories, card_ids)
    text = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"))
    update_issue(db, issue_id, snapshot=text, subject=subject, preheader=preheader)
    return dict(issue_by_id(db, issue_id) or {})


def _mark_news(sections: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Give each card that repeats a story sent before, with news, its ``news`` (the
    templates then say "Update:" and what is new)."""
    repeats = {r["article_id"]: Repeat.from_note(r.get("repeat")) for r in rows if r["card_of"] is None}
    for section in sections:
        for card in section["articles"]:
            repeat = repeats.get(card["id"])
            if repeat is not None and repeat.has_news:
                card["news"] = repeat.news()


def _subject_and_preheader(
    config: Config,
    edition: Edition,
    issue: dict[str, Any],
    ordered: list[dict[str, Any]],
    lead_id: int | None,
) -> tuple[str, str]:
    """The editor's subject and preheader where set, else the edition's pattern around the
    top story (the lead when there is one) and the next headlines."""
    titles = [a["title"] for a in ordered if a["id"] == lead_id] + [
        a["title"] for a in ordered if a["id"] != lead_id
    ]
    subject = issue["subject_set"]
    if subject is None:
        local_end = from_iso(issue["period_end"]).astimezone(edition.zone)
        subject = make_subject(
            config, edition, issue["number"], local_end, headline=titles[0] if titles else ""
        )
    preheader = issue["preheader_set"]
    if preheader is None:
        # The headlines after the subject's own; all of them under an editor's subject.
        shown = titles if issue["subject_set"] is not None else preheader_titles(config, edition, titles)
        preheader = make_preheader(shown)
    return subject, preheader


def _store_order(
    db: sqlite_utils.Database,
    issue_id: int,
    rows: list[dict[str, Any]],
    articles: dict[int, dict[str, Any]],
    categories: list[str],
    card_ids: set[int],
) -> None:
    """Each row's category (a card's own, a merged article its card's) and positions in the
    snapshot's order: cards by section, a dropped story kept at its place for a restore,
    merged articles last."""
    rank = {c: n for n, c in enumerate(categories)}
    card_category = {a: articles[a]["category"] for a in card_ids}

    def category(row: dict[str, Any]) -> str:
        return card_category.get(row["card_of"]) or articles[row["article_id"]]["category"]

    def key(row: dict[str, Any]) -> tuple[int, int, int]:
        if row["card_of"] is not None:
            return (len(rank) + 1, 0, row["position"])
        return (rank.get(category(row), len(rank)), 0, row["position"])

    for position, row in enumerate(sorted(rows, key=key), 1):
        if row["position"] != position or row["category"] != category(row):
            update_issue_row(db, issue_id, row["article_id"], position=position, category=category(row))


def snapshot_article(
    article: dict[str, Any],
    edition: Edition,
    summary: ArticleSummary,
    label: str,
    others: list[dict[str, Any]],
) -> dict[str, Any]:
    """One card of the snapshot: everything the templates show of ``article``."""
    published = from_iso(article["published_at"])
    return {
        "id": article["id"],
        "title": article["title"],
        "url": article["url"],
        "source": article["source"] or "",
        "author": article["author"] or "",
        "category": article["category"],
        "published_at": article["published_at"],
        "published_local": format_datetime(published.astimezone(edition.zone)),
        # The source gave no date (published_at is the fetch time): templates say "undated".
        "undated": bool(article["date_estimated"]),
        "summary": summary.text,
        "summary_label": (summary.label or (label if summary.generated else "")) if summary.text else "",
        # Checked against its source: the web version links the label to the article.
        "summary_checked": summary.checked and bool(summary.text),
        # From the article's page when fetched, else the feed's full text; 0: unknown (a summary alone).
        "reading_minutes": int(summary.reading_minutes or article["reading_minutes"] or 0),
        "also_covered": [{"source": outlet(o), "url": o["url"]} for o in others],
        **({"image": image} if (image := load_image(article.get("image"))) else {}),
    }
