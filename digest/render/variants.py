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

from digest.compose.issues import get_issue, issue_name, issue_snapshot
from digest.compose.subject import issue_subject, make_preheader, preheader_titles
from digest.config import Config
from digest.errors import DigestError
from digest.i18n import translations
from digest.render.context import template_context
from digest.render.email_html import inline_css, mjml_to_html
from digest.render.guard import logger, render_skipping_broken
from digest.render.personalise import PLACEHOLDERS
from digest.render.size_budget import html_budget_size, trim_order
from digest.render.templating import render_template, template_dirs
from digest.render.wire import link_room
from digest.store.database import iso, transaction, utcnow

HTML_TEMPLATE = "email/issue.mjml.j2"
TEXT_TEMPLATE = "email/issue.txt.j2"


class NothingFits(DigestError):
    """Not one of the issue's articles fits in an email: it must not be sent as "0 of N"
    (the web version, which has no size budget, can still show it)."""


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
    headlines); the issue's stored ones for the whole issue, and wherever an editor wrote them."""
    if variant == "*":
        return issue["subject"], issue["preheader"]
    titles = [a["title"] for s in sections for a in s["articles"]]
    subject = issue["subject"] if issue.get("subject_set") is not None else None
    if subject is None:
        subject = issue_subject(config, issue, titles[0] if titles else "")
    if issue.get("preheader_set") is not None:
        return subject, issue["preheader"]
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
    An article too big to fit even alone is shown without its summary, else left to the web
    version, and the others stay. An issue that could carry none of its articles raises
    :class:`NothingFits`: it is never sent as "0 of N".
    """
    issue = get_issue(db, issue_id)
    snapshot = issue_snapshot(issue)
    sections = _variant_sections(snapshot, variant)
    subject, preheader = _subject_and_preheader(config, issue, sections, variant)
    issue = {**issue, "subject": subject, "preheader": preheader}
    draft = _Draft(config, issue, snapshot, sections, tuple(template_dirs(config)))
    # A broken labels/<lang>.po stops the render here, named; never blamed on an article.
    translations(config.publication.language, config.base_dir)
    total = len(draft.order)
    # An article that still breaks the HTML is left out (and named), never the issue.
    html, dropped = render_skipping_broken(draft.html, draft.order)
    if dropped:
        draft.leave_out(set(dropped))
    kept, html = _fit(draft, html, config.render.max_html_bytes)
    if not kept:
        raise NothingFits(
            f"issue {issue_name(issue)}: none of its {total} articles fits in an email"
            f" (render.max_html_bytes = {config.render.max_html_bytes}); not sent. "
            "Raise render.max_html_bytes, or look at the articles named above"
        )
    text = draft.render(TEXT_TEMPLATE, set(kept))
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
        trimmed=total - len(kept),
    )


class _Draft:
    """One variant being fitted to the budget: its sections, the order articles are kept in,
    and the HTML of any subset of them (the latest template context cached: it is a third
    of a render, and the text part is rendered from the same one as the HTML kept)."""

    def __init__(
        self,
        config: Config,
        issue: dict[str, Any],
        snapshot: dict[str, Any],
        sections: list[dict[str, Any]],
        dirs: tuple[Any, ...],
    ) -> None:
        self.config, self.issue, self.snapshot, self.dirs = config, issue, snapshot, dirs
        self.sections = sections
        self.order = trim_order(sections)
        self.url_chars = link_room(config.publication.base_url)  # a reader's link, at most
        self._cached: tuple[frozenset[int], dict[str, Any]] | None = None

    def context(self, ids: set[int]) -> dict[str, Any]:
        """The template context showing the articles in ``ids``."""
        key = frozenset(ids)
        if self._cached is None or self._cached[0] != key:
            context = template_context(self.config, self.issue, self.snapshot, self.sections, set(ids))
            self._cached = (key, context)
        return self._cached[1]

    def html(self, ids: set[int]) -> str:
        """The inlined HTML part showing the articles in ``ids``."""
        return inline_css(mjml_to_html(self.render(HTML_TEMPLATE, ids)))

    def render(self, template: str, ids: set[int]) -> str:
        """``template`` filled with the context showing ``ids``, in the publication's language."""
        return render_template(
            self.dirs,
            template,
            self.context(ids),
            language=self.config.publication.language,
            workspace=self.config.base_dir,
        )

    def name(self, article_id: int) -> str:
        """How a warning names an article: its id and the start of its title."""
        title = next((str(a.get("title") or "") for a in self.order if a["id"] == article_id), "")
        return f"article {article_id} ({title[:60]!r})"

    def leave_out(self, ids: set[int]) -> None:
        """Drop these articles from the variant (not even counted: they could not render)."""
        kept = [{**s, "articles": [a for a in s["articles"] if a["id"] not in ids]} for s in self.sections]
        self.sections = [s for s in kept if s["articles"]]
        self.order = trim_order(self.sections)
        self._cached = None

    def shorten(self, article_id: int) -> None:
        """Show this article with its title and link only: no summary, no "also covered"."""
        bare = {"summary": "", "summary_label": "", "also_covered": []}
        self.sections = [
            {**s, "articles": [{**a, **bare} if a["id"] == article_id else a for a in s["articles"]]}
            for s in self.sections
        ]
        self._cached = None


def _fit(draft: _Draft, html: str, budget: int) -> tuple[list[int], str]:
    """The ids kept (a prefix of ``draft.order``, less any article too big to fit even
    alone) and their HTML, the most that fits ``budget``."""
    ids = [a["id"] for a in draft.order]
    if html_budget_size(html, url_chars=draft.url_chars) <= budget:
        return ids, html
    shortened: set[int] = set()
    while ids:
        kept, html = _largest_prefix(draft, ids, budget)
        if len(kept) == len(ids):
            return kept, html
        first_out = ids[len(kept)]
        if html_budget_size(draft.html({first_out}), url_chars=draft.url_chars) <= budget:
            return kept, html  # a fair cut: the rest waits in the web version
        name = draft.name(first_out)
        if first_out not in shortened:
            shortened.add(first_out)
            draft.shorten(first_out)
            logger.warning("%s shown without its summary: with it, it does not fit in an email", name)
        else:
            ids.remove(first_out)  # counted in "X of Y", read in the web version
            logger.warning("%s left to the web version: it does not fit in an email even alone", name)
    return [], ""


def _largest_prefix(draft: _Draft, ids: list[int], budget: int) -> tuple[list[int], str]:
    """The longest prefix of ``ids`` whose HTML fits ``budget`` (the size grows with each
    article, so bisect), and that HTML."""
    lo, hi, kept, html = 0, len(ids), 0, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = draft.html(set(ids[:mid]))
        if html_budget_size(candidate, url_chars=draft.url_chars) <= budget:
            lo, kept, html = mid + 1, mid, candidate
        else:
            hi = mid - 1
    return ids[:kept], html


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
