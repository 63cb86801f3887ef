"""Render an issue to email HTML and plain text, once per variant; personalise per recipient.

Pipeline: Jinja2 fills ``email/issue.mjml.j2`` → mjml-python (MRML) makes table HTML →
premailer inlines the CSS (keeping ``@media`` rules and ``!important``). The text part comes
from its own template, ``email/issue.txt.j2``. Per-recipient fields are placeholder tokens
(:data:`PLACEHOLDERS`) that survive all three stages; :func:`personalise` fills them by plain
substitution at send time, so an issue is rendered once per distinct category set (a
*variant*), never once per recipient.
"""

from __future__ import annotations

import binascii
import dataclasses
import functools
import html as html_lib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cssutils
import jinja2
import mjml
import sqlite_utils
from premailer import Premailer

import digest
from digest.compose import get_issue, issue_snapshot, issue_subject, make_preheader, preheader_titles
from digest.config import Config
from digest.errors import DigestError
from digest.images import IMAGE_MIN_SIDE
from digest.render_guard import render_skipping_broken
from digest.sanitize import clean_text, safe_url
from digest.store import iso, transaction, utcnow

HTML_TEMPLATE = "email/issue.mjml.j2"
TEXT_TEMPLATE = "email/issue.txt.j2"

RECIPIENT_FIELDS = ("name", "email", "unsubscribe_url", "preferences_url")
PLACEHOLDERS: dict[str, str] = {field: f"__DIGEST_{field.upper()}__" for field in RECIPIENT_FIELDS}
"""Field → token. ASCII letters, digits and underscores only: they pass MJML, premailer,
URL attributes and quoted-printable untouched."""

NAME_FALLBACK = "Reader"
"""Shown where a recipient has no name."""

# Each placeholder occurrence may grow by this much when filled (a signed URL, a long name);
# the size budget reserves it so a personalised message still fits.
PLACEHOLDER_ALLOWANCE = 200

IMAGE_WIDTH = 544
"""Lead images are shown at most this wide (the 600 px column less its padding)."""

ATTRIBUTE_PREFIX = "attribute:"
"""A per-recipient field named ``attribute:KEY`` is the subscriber attribute KEY (a merge field
``{{ subscriber.attributes.KEY }}``); its token is ``__DIGEST_ATTR_KEY__`` (KEY upper-cased)."""
_ATTRIBUTE_TOKEN = r"__DIGEST_ATTR_([A-Z0-9]+(?:_[A-Z0-9]+)*)__"
_TOKEN_RE = re.compile(
    "|".join(
        [*(re.escape(t) for t in sorted(PLACEHOLDERS.values(), key=len, reverse=True)), _ATTRIBUTE_TOKEN]
    )
)
_FIELD_BY_TOKEN = {token: field for field, token in PLACEHOLDERS.items()}
PLACEHOLDER_RE = _TOKEN_RE
"""Every per-recipient placeholder in a rendered part: the fixed fields and attribute merge fields."""


def placeholder_field(token: str) -> str:
    """The recipient field a placeholder token stands for (``name``, ``attribute:company`` …)."""
    known = _FIELD_BY_TOKEN.get(token)
    if known is not None:
        return known
    match = re.fullmatch(_ATTRIBUTE_TOKEN, token)
    if match is None:
        raise ValueError(f"not a placeholder: {token!r}")
    return ATTRIBUTE_PREFIX + match.group(1).lower()


def placeholder_token(field: str) -> str:
    """The placeholder token of a recipient field (the inverse of :func:`placeholder_field`)."""
    if field.startswith(ATTRIBUTE_PREFIX):
        return f"__DIGEST_ATTR_{field[len(ATTRIBUTE_PREFIX) :].upper()}__"
    return PLACEHOLDERS[field]


_DOUBLE_UNDERSCORE_RE = re.compile(r"_(?=_)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_MJML_RESET = '<style type="text/css">\n#outlook a'
_UNCONVERTED_RE = re.compile(r"</?mj-[a-z-]+", re.IGNORECASE)

cssutils.log.setLevel(logging.CRITICAL)


@dataclass
class RenderedVariant:
    """One rendering of an issue for one category set; html/text still hold placeholders."""

    variant: str
    subject: str
    preheader: str
    html: str
    text: str
    trimmed: int
    dropped: list[str] = dataclasses.field(default_factory=list)  # articles left out: they broke the HTML


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


# --- templates ------------------------------------------------------------------------------


def bundled_templates_dir() -> Path:
    """The templates shipped with digest: inside the package when installed from a wheel,
    else the repository's top-level ``templates/``."""
    package = Path(digest.__file__).resolve().parent
    inside = package / "templates"
    return inside if inside.is_dir() else package.parent / "templates"


def template_dirs(config: Config) -> list[Path]:
    """Folders searched for templates, in order: the configured override, then the bundled."""
    dirs = []
    if config.render.templates:
        override = config.path(config.render.templates)
        if not override.is_dir():
            raise DigestError(
                f"{config.source}: render.templates = {config.render.templates!r}: folder {override} "
                "does not exist; create it or remove the setting"
            )
        dirs.append(override)
    dirs.append(bundled_templates_dir())
    return dirs


def wrap(text: str, width: int = 72) -> str:
    """Greedy word wrap for the text part; long words are never broken. (textwrap, behind
    Jinja's ``wordwrap``, is several times slower and this runs for every summary.)"""
    return "\n".join(m.rstrip() for m in _wrap_re(width).findall(" ".join(text.split())))


@functools.lru_cache(maxsize=8)
def _wrap_re(width: int) -> re.Pattern[str]:
    return re.compile(rf"\S.{{0,{width - 1}}}(?=\s|$)|\S+")


def _environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    # Jinja notices edits to a template it already loaded, not a new override file that now
    # shadows a bundled one; a listing of the override folder keys the cache for that.
    listing = tuple(
        (str(p), p.stat().st_mtime_ns) for d in dirs[:-1] for p in sorted(d.rglob("*")) if p.is_file()
    )
    return _cached_environment(dirs, listing)


@functools.lru_cache(maxsize=8)
def _cached_environment(dirs: tuple[Path, ...], listing: tuple[tuple[str, int], ...]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(d)) for d in dirs]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2", "html", "mjml")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    return env


def _render_template(dirs: tuple[Path, ...], name: str, context: Mapping[str, Any]) -> str:
    env = _environment(dirs)
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(d / exc.name) for d in dirs)
        raise DigestError(f"template {exc.name} not found; searched: {searched}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise DigestError(f"{exc.filename or exc.name}:{exc.lineno}: template error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise DigestError(f"template {name}: {exc.message}; check the variable names") from None


# --- HTML pipeline --------------------------------------------------------------------------


def mjml_to_html(source: str) -> str:
    """MJML → HTML with mjml-python; a clear error when MJML rejects the markup."""
    try:
        out = mjml.mjml2html(source, disable_comments=True)
    except Exception as exc:  # noqa: BLE001 - the Rust binding raises plain exceptions of several kinds
        raise DigestError(f"MJML error: {exc}") from None
    unconverted = _UNCONVERTED_RE.search(out)
    if unconverted:
        raise DigestError(f"MJML left {unconverted.group(0)}> unconverted; check the template's tags")
    return out


class _CachingPremailer(Premailer):
    """Premailer that reuses, across renders, the work that depends only on the CSS text.

    Every render of a template carries the same ``<style>`` blocks, yet premailer turns
    each into rules (serialising every property through cssutils) on every call; that was
    a third of the render time. Both results are pure functions of the CSS text and the
    options, which are fixed here."""

    _rules: dict[tuple[str | None, int], tuple[list[Any], list[Any]]] = {}
    _leftover_text: dict[tuple[int, ...], tuple[list[Any], str]] = {}
    _MAX_ENTRIES = 64

    def _parse_style_rules(self, css_body: str | None, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body, ruleset_index)
        cached = self._rules.get(key)
        if cached is None:
            if len(self._rules) >= self._MAX_ENTRIES:
                self._rules.clear()
                self._leftover_text.clear()
            cached = super()._parse_style_rules(css_body, ruleset_index)
            self._rules[key] = cached
        rules, leftover = cached
        return list(rules), leftover

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        # The leftover lists come from the cache above, so their identity is stable while
        # cached (the cache entry keeps the objects alive).
        key = tuple(id(r) for r in rules)
        cached = self._leftover_text.get(key)
        if cached is None:
            cached = (rules, super()._css_rules_to_string(rules))
            self._leftover_text[key] = cached
        return cached[1]


def inline_css(html: str) -> str:
    """Inline the document's CSS with premailer, keeping ``@media`` rules, ``!important``
    and the doctype, never fetching anything remote."""
    # MJML's Thunderbird rules sit in a <style media=...>; inlining would drop them. MJML's
    # client resets (#outlook a, body, table/td, img, p) are meant for <head>, as MJML itself
    # ships them: inlined they only add bytes to every cell and paragraph.
    html = html.replace("<style media=", '<style data-premailer="ignore" media=').replace(
        _MJML_RESET, '<style type="text/css" data-premailer="ignore">\n#outlook a', 1
    )
    out = _CachingPremailer(
        html,
        base_url=None,
        disable_link_rewrites=True,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        allow_network=False,
        allow_loading_external_files=False,
        disable_validation=True,
        cache_css_parsing=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    if not out.lstrip().lower().startswith("<!doctype"):
        out = "<!doctype html>" + out
    return out


# --- rendering ------------------------------------------------------------------------------


def _defuse(value: Any, *, url: bool = False) -> Any:
    """Untrusted text must never contain a live placeholder (a feed title that says
    ``__DIGEST_EMAIL__`` would otherwise be filled with the reader's address).

    Every placeholder starts and ends with ``__``, so every run of two underscores is broken
    (and a leading or trailing underscore fenced off from neighbouring template text): no
    filter a template applies afterwards (``upper``, ``title``, ``wrap`` …) and no spelling
    of the token in any case can rebuild one. Text gets an invisible WORD JOINER; a URL gets
    ``%5F``, the same address to any server, so links keep working."""
    if isinstance(value, list):  # a snapshot's list of links, e.g. an article's also_covered
        return [
            {k: _defuse(v, url=k == "url") for k, v in d.items()} if isinstance(d, dict) else d for d in value
        ]
    if not isinstance(value, str):
        return value
    # Content must never make an issue unrenderable: no control character reaches MJML.
    value = safe_url(value) if url else clean_text(value)
    if "_" not in value:
        return value
    if url:
        return value.replace("__", "_%5F")
    value = _DOUBLE_UNDERSCORE_RE.sub("_\u2060", value)
    if value.startswith("_"):
        value = "\u2060" + value
    if value.endswith("_"):
        value += "\u2060"
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


def trim_order(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The articles in the order an over-budget issue keeps them: first the newest article
    of every section (in the issue's section order), then all the others newest first.

    Keeping the first N of this list never leaves a shown section empty; only when N is
    smaller than the number of sections do whole sections go, the issue's last ones first.
    """

    def newest(article: dict[str, Any]) -> tuple[str, int]:
        return (article["published_at"], article["id"])

    leads = [max(s["articles"], key=newest) for s in sections if s["articles"]]
    lead_ids = {a["id"] for a in leads}
    rest = sorted(
        (a for s in sections for a in s["articles"] if a["id"] not in lead_ids), key=newest, reverse=True
    )
    return leads + rest


def _article(article: dict[str, Any], images: bool) -> dict[str, Any]:
    """One snapshot article for the templates: untrusted text defused; the optional fields
    (author, undated, summary_label, also_covered, image) always present."""
    out = {k: _defuse(v, url=k == "url") for k, v in article.items() if k not in ("also_covered", "image")}
    out.setdefault("author", "")
    out.setdefault("undated", False)
    out.setdefault("summary_label", "")
    out["also_covered"] = [
        {"source": _defuse(str(c.get("source") or "")), "url": _defuse(str(c.get("url") or ""), url=True)}
        for c in article.get("also_covered") or []
        if isinstance(c, dict) and c.get("url")
    ]
    out["image"] = _image(article.get("image"), article.get("title", "")) if images else None
    return out


def _image(image: Any, title: str) -> dict[str, Any] | None:
    """A lead image fit to show: an https/http URL with a sane size (never a 1×1 tracker),
    scaled to the content width; alt text from the title."""
    if not isinstance(image, dict):
        return None
    url = str(image.get("url") or "")
    if not url.startswith(("https://", "http://")):
        return None
    try:
        width, height = int(image.get("width") or 0), int(image.get("height") or 0)
    except (TypeError, ValueError):
        return None
    if width < IMAGE_MIN_SIDE or height < IMAGE_MIN_SIDE:
        return None  # unknown or tiny: a tracking pixel, or a layout jump when it loads
    shown_width = min(width, IMAGE_WIDTH)
    return {
        "url": _defuse(url, url=True),
        "width": shown_width,
        "height": round(height * shown_width / width),
        "alt": _defuse(str(image.get("alt") or title)),
    }


def _context(
    config: Config,
    issue: dict[str, Any],
    snapshot: dict[str, Any],
    sections: list[dict[str, Any]],
    keep: set[int],
) -> dict[str, Any]:
    categories = []
    images = config.render.images
    for section in sections:
        articles = section["articles"]
        shown = [_article(a, images) for a in articles if a["id"] in keep]
        categories.append(
            {
                "name": _defuse(section["name"]),
                "count": len(articles),
                "articles": shown,
                "more": len(articles) - len(shown),
            }
        )
    pub = config.publication
    return {
        "language": pub.language or "en",
        "subject": _defuse(issue["subject"]),
        "preheader": _defuse(issue["preheader"]),
        "publication": {
            "name": _defuse(pub.name),
            "postal_address": _defuse(pub.postal_address),
            "base_url": pub.base_url,
        },
        "edition": {
            "key": snapshot.get("edition", issue["edition"]),
            "title": _defuse(snapshot["edition_title"]),
        },
        "issue": {"id": issue["id"], "number": issue["number"], "date": snapshot["date"]},
        "note": [
            _defuse(" ".join(para.split()))
            for para in str(issue.get("note") or "").split("\n\n")
            if para.strip()
        ],
        "web_url": web_url(config, issue["id"]),
        "categories": categories,
        "shown_categories": [c for c in categories if c["articles"]],
        "total": sum(c["count"] for c in categories),
        "shown": sum(len(c["articles"]) for c in categories),
        "p": PLACEHOLDERS,
        "subscriber": _SubscriberFields(),
    }


class _AttributeFields:
    """``subscriber.attributes.KEY`` (or ``["Column Name"]``) in a template: KEY's placeholder."""

    def __getattr__(self, name: str) -> str:
        return self[name]

    def __getitem__(self, name: str) -> str:
        from subscribers.model import attribute_key

        key = attribute_key(str(name))
        if not key:
            raise DigestError(f"template: {name!r} is not an attribute name; use letters, digits and _")
        return f"__DIGEST_ATTR_{key.upper()}__"


class _SubscriberFields:
    """The ``subscriber`` a template sees: placeholders filled per recipient at send time."""

    name = PLACEHOLDERS["name"]
    email = PLACEHOLDERS["email"]
    attributes = _AttributeFields()


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


def web_url(config: Config, issue_id: int) -> str:
    """The issue's "view in browser" address."""
    return f"{config.publication.base_url.rstrip('/')}/issues/{issue_id}"


def wire_size(text: str) -> int:
    """Bytes ``text`` takes as a quoted-printable MIME body with CRLF line ends, the way
    :mod:`digest.message` sends each part (its soft breaks around placeholders aside)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    size = 0
    for line in lines:
        encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=False)
        size += len(encoded) + encoded.count(b"=\n") + 2  # CRLF soft and hard line ends
    return size


def html_budget_size(html: str) -> int:
    """Bytes the HTML part may reach on the wire once personalised: its quoted-printable
    size (what Gmail counts towards its ~102 KB clip: non-Latin text grows 1.7× and more)
    plus an allowance per placeholder (attribute merge fields included)."""
    occurrences = sum(1 for _ in _TOKEN_RE.finditer(html))
    return wire_size(html) + PLACEHOLDER_ALLOWANCE * occurrences


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

    def html_with(ids: set[int]) -> str:
        context = _context(config, issue, snapshot, sections, ids)
        return inline_css(mjml_to_html(_render_template(dirs, HTML_TEMPLATE, context)))

    # An article that still breaks the HTML is left out (and named), never the issue.
    html, dropped = render_skipping_broken(html_with, order)
    if dropped:
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
    context = _context(config, issue, snapshot, sections, {a["id"] for a in order[:kept]})
    text = _render_template(dirs, TEXT_TEMPLATE, context)
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
        dropped=list(dropped.values()),
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


# --- personalisation ------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _split(rendered: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The text between placeholders and the field of each placeholder, computed once per
    rendered string (str caches its hash, so a repeated lookup is cheap)."""
    literals, fields, pos = [], [], 0
    for m in _TOKEN_RE.finditer(rendered):
        literals.append(rendered[pos : m.start()])
        fields.append(placeholder_field(m.group(0)))
        pos = m.end()
    literals.append(rendered[pos:])
    return tuple(literals), tuple(fields)


def personalise(rendered: str, fields: Mapping[str, str], *, html: bool) -> str:
    """Fill the placeholders in ``rendered`` with one recipient's ``fields`` in one pass.

    Values are escaped for HTML when ``html`` is true; control characters (line breaks)
    become spaces in both modes. A missing or empty ``name`` reads :data:`NAME_FALLBACK`;
    other missing fields become empty. A subscriber attribute (``attribute:KEY``) comes from
    ``fields["attributes"]`` (a dict, or its JSON text), empty when the subscriber has none.
    """
    literals, names = _split(rendered)
    if not names:
        return rendered
    values = {}
    attributes = fields.get("attributes") or {}
    if isinstance(attributes, str):
        attributes = json.loads(attributes)
    for field in dict.fromkeys((*RECIPIENT_FIELDS, *names)):
        if field.startswith(ATTRIBUTE_PREFIX):
            value = str(attributes.get(field[len(ATTRIBUTE_PREFIX) :]) or "")
        else:
            value = str(fields.get(field) or "")
        if not value and field == "name":
            value = NAME_FALLBACK
        value = _CONTROL_RE.sub(" ", value).strip() if value else value
        values[field] = html_lib.escape(value, quote=True) if html else value
    parts = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        parts.append(values[name])
        parts.append(literal)
    return "".join(parts)


def sample_fields(config: Config) -> dict[str, str]:
    """Stand-in recipient values for previews."""
    base = config.publication.base_url.rstrip("/")
    return {
        "name": NAME_FALLBACK,
        "email": "reader@example.org",
        "unsubscribe_url": f"{base}/unsubscribe/preview",
        "preferences_url": f"{base}/preferences/preview",
    }
