"""Render an issue to email HTML and plain text, once per variant; freeze what is sent.

:func:`render_issue` is the pipeline: the issue's template context
(:mod:`digest.render.context`) → Jinja2 fills ``email/issue.mjml.j2``
(:mod:`digest.render.templating`) → mjml-python makes table HTML and premailer inlines the CSS
(:mod:`digest.render.email_html`), articles cut to fit the size budget (:mod:`digest.render.size_budget`).
The text part comes from its own template, ``email/issue.txt.j2``. Per-recipient fields are
placeholder tokens that survive all three stages; :func:`digest.render.personalise.personalise`
fills them at send time, so an issue is rendered once per distinct category set (a
*variant*), never once per recipient. :func:`stored_variant` freezes a variant's rendering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from digest.compose.issues import get_issue, issue_snapshot
from digest.compose.subject import issue_subject, make_preheader, preheader_titles
from digest.config import Config
from digest.errors import DigestError
from digest.render.context import template_context
from digest.render.email_html import inline_css, mjml_to_html
from digest.render.guard import render_skipping_broken
from digest.render.personalise import PLACEHOLDERS
from digest.render.size_budget import html_budget_size, trim_order
from digest.render.templating import render_template, template_dirs
from digest.store.database import iso, transaction, utcnow

HTML_TEMPLATE = "email/issue.mjml.j2"
TEXT_TEMPLATE = "email/issue.txt.j2"


@dataclass
class RenderedVariant:
    """One rendering of an issue for one category set; html/text still hold placeholders."""

    variant: str
    subject: str
    preheader: str
    html: str
    text: str
    trimmed: int


# --- variants -------------------------------------------------------------------------------


def variant_key(categories: Iterable[str] | None, issue_categories: Iterable[str]) -> str:
    """The variant a subscriber following ``categories`` gets of an issue with
    ``issue_categories``: ``"*"`` when they follow all of the issue's categories (or all
    categories, None), else the sorted JSON list of the intersection (issue spelling;
    matched case-insensitively). An empty intersection gives ``"[]"``: no variant, the
    subscriber is not eligible for this issue."""
    present = list(dict.fromkeys(issue_categories))
    if categories is None:
        return "*"
    wanted = {c.casefold() for c in categories}
    chosen = sorted(c for c in present if c.casefold() in wanted)
    if len(chosen) == len(present):
        return "*"
    return json.dumps(chosen, ensure_ascii=False, separators=(",", ":"))


def variant_categories(variant: str) -> list[str] | None:
    """The category list a variant key stands for (None for ``"*"``)."""
    if variant == "*":
        return None
    try:
        value = json.loads(variant)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DigestError(f"variant {variant!r}: expected '*' or a JSON list of category names")
    return value


def _variant_sections(snapshot: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    sections = snapshot.get("categories", [])
    wanted = variant_categories(variant)
    if wanted is not None:
        keep = {c.casefold() for c in wanted}
        sections = [s for s in sections if s["name"].casefold() in keep]
        if not sections:
            raise DigestError(f"variant {variant}: the issue has none of these categories")
    return sections


def _subject_and_preheader(
    config: Config, issue: dict[str, Any], sections: list[dict[str, Any]], variant: str
) -> tuple[str, str]:
    """The variant's subject (its own top story as ``{headline}``) and preheader (its next
    headlines); the issue's stored ones for the whole issue."""
    if variant == "*":
        return issue["subject"], issue["preheader"]
    titles = [a["title"] for s in sections for a in s["articles"]]
    subject = issue_subject(config, issue, titles[0] if titles else "")
    edition = config.editions.get(issue["edition"])
    return subject, make_preheader(preheader_titles(config, edition, titles))


def render_issue(
    db: sqlite_utils.Database, config: Config, issue_id: int, variant: str = "*"
) -> RenderedVariant:
    """Render ``variant`` of the issue from its frozen snapshot, its editor's note and the
    config (a pure function of those and the templates; stores nothing).

    When the HTML part would exceed ``render.max_html_bytes`` on the wire, articles are left
    out in :func:`trim_order` (every section keeps its newest; then the newest overall);
    each shortened section ends with "N more in the web version", the counts say "X of Y",
    and ``trimmed`` counts the articles left out. The text part carries the same articles.
    """
    issue = get_issue(db, issue_id)
    snapshot = issue_snapshot(issue)
    sections = _variant_sections(snapshot, variant)
    subject, preheader = _subject_and_preheader(config, issue, sections, variant)
    issue = {**issue, "subject": subject, "preheader": preheader}
    dirs = tuple(template_dirs(config))
    order = trim_order(sections)
    budget = config.render.max_html_bytes

    # The text part is rendered from the same context as the HTML that was kept: build each
    # context once (it is a third of a render), the latest one only.
    contexts: dict[frozenset[int], dict[str, Any]] = {}

    def context_for(ids: set[int]) -> dict[str, Any]:
        key = frozenset(ids)
        if key not in contexts:
            contexts.clear()
            contexts[key] = template_context(config, issue, snapshot, sections, ids)
        return contexts[key]

    def html_with(ids: set[int]) -> str:
        return inline_css(mjml_to_html(render_template(dirs, HTML_TEMPLATE, context_for(ids))))

    # An article that still breaks the HTML is left out (and named), never the issue.
    html, dropped = render_skipping_broken(html_with, order)
    if dropped:
        contexts.clear()
        sections = [{**s, "articles": [a for a in s["articles"] if a["id"] not in dropped]} for s in sections]
        sections = [s for s in sections if s["articles"]]
        order = trim_order(sections)

    def html_for(count: int) -> str:
        return html_with({a["id"] for a in order[:count]})

    kept = len(order)
    if html_budget_size(html) > budget:
        # Largest count that fits; the size grows with each article, so bisect.
        lo, hi, best = 0, kept - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = html_for(mid)
            if html_budget_size(candidate) <= budget:
                lo, best, kept = mid + 1, candidate, mid
            else:
                hi = mid - 1
        if best is None:
            kept, best = 0, html_for(0)
        html = best
    text = render_template(dirs, TEXT_TEMPLATE, context_for({a["id"] for a in order[:kept]}))
    # An override template may forget it; an email must never go out without it.
    for part, name in ((html, HTML_TEMPLATE), (text, TEXT_TEMPLATE)):
        if PLACEHOLDERS["unsubscribe_url"] not in part:
            raise DigestError(
                f"template {name} (or a partial): the rendered issue has no unsubscribe link; "
                "the footer must use {{ p.unsubscribe_url }}"
            )
    return RenderedVariant(
        variant=variant,
        subject=issue["subject"],
        preheader=issue["preheader"],
        html=html,
        text=text,
        trimmed=len(order) - kept,
    )


def stored_variant(db: sqlite_utils.Database, config: Config, issue_id: int, variant: str) -> RenderedVariant:
    """The frozen rendering of ``variant`` from ``issue_variants``; rendered and stored on
    first use, so a resumed send sends the same bytes."""
    row = _variant_row(db, issue_id, variant)
    if row is None:
        rendered = render_issue(db, config, issue_id, variant)
        with transaction(db):
            db.execute(
                "INSERT OR IGNORE INTO issue_variants (issue_id, variant, html, text, trimmed, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [issue_id, variant, rendered.html, rendered.text, rendered.trimmed, iso(utcnow())],
            )
        row = _variant_row(db, issue_id, variant)  # another process may have stored it first
        if row is not None and row["html"] == rendered.html and row["text"] == rendered.text:
            return rendered
    assert row is not None
    return _from_row(db, config, issue_id, variant, row)


def current_variant(
    db: sqlite_utils.Database, config: Config, issue_id: int, variant: str
) -> RenderedVariant:
    """The stored rendering when there is one (what was or is being sent), else a fresh
    render that is not stored — for previews, which must not freeze anything."""
    row = _variant_row(db, issue_id, variant)
    if row is not None:
        return _from_row(db, config, issue_id, variant, row)
    return render_issue(db, config, issue_id, variant)


def _from_row(
    db: sqlite_utils.Database, config: Config, issue_id: int, variant: str, row: dict[str, Any]
) -> RenderedVariant:
    """A stored variant row with the issue's current subject and the variant's preheader."""
    issue = get_issue(db, issue_id)
    sections = _variant_sections(issue_snapshot(issue), variant) if variant != "*" else []
    subject, preheader = _subject_and_preheader(config, issue, sections, variant)
    return RenderedVariant(variant, subject, preheader, row["html"], row["text"], row["trimmed"])


def _variant_row(db: sqlite_utils.Database, issue_id: int, variant: str) -> dict[str, Any] | None:
    rows = list(
        db.query(
            "SELECT html, text, trimmed FROM issue_variants WHERE issue_id = ? AND variant = ?",
            [issue_id, variant],
        )
    )
    return rows[0] if rows else None
