"""An issue as the public sees it: the web page (no personal footer, a sign-up form) and the
feed entry's content (the issue's HTML, sanitised, nothing personal).

The issue's HTML is the email's (:mod:`digest.render.variants`); the footer that names the
reader and carries their unsubscribe and preferences links is the MJML section with
``css-class="foot"`` (templates/email/_footer.mjml.j2), which MJML renders as one
``<div class="foot">``: it is cut out here rather than rendered differently, so the web page
and the email can never drift apart in their content.
"""

from __future__ import annotations

import html
import re

import nh3

from digest.config import Config
from digest.i18n import translations
from digest.render.context import brand_context

_FOOTER_START = re.compile(r'<div\b[^>]*\bclass="(?:[^"]*\s)?foot(?:\s[^"]*)?"[^>]*>', re.IGNORECASE)
_DIV_TAG = re.compile(r"<(/?)div\b[^>]*>", re.IGNORECASE)
_HIDDEN_DIV = re.compile(r'<div\b[^>]*style="display:\s*none[^"]*"[^>]*>.*?</div>', re.IGNORECASE | re.DOTALL)
_SELF_LINK = re.compile(
    r'<p class="m"[^>]*>\s*<a href="[^"]*/issues/\d+"[^>]*>[^<]*</a>\s*</p>', re.IGNORECASE
)
"""The header's "View in browser" line: pointless on the web page it points to."""
_BODY = re.compile(r"<body\b[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)

FEED_TAGS = frozenset(
    {"p", "a", "em", "strong", "b", "i", "br", "ul", "ol", "li", "h1", "h2", "h3", "h4", "img", "hr", "div"}
)
"""What a feed entry's HTML keeps (no style, no table layout, no form)."""


def without_footer(page: str) -> str:
    """``page`` without its personal footer (the ``<div class="foot">`` and everything in it)
    and without its "View in browser" line."""
    page = _SELF_LINK.sub("", page, count=1)
    start = _FOOTER_START.search(page)
    if start is None:
        return page
    depth = 1
    for tag in _DIV_TAG.finditer(page, start.end()):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return page[: start.start()] + page[tag.end() :]
    return page[: start.start()]


def signup_block(config: Config, action: str) -> str:
    """A sign-up form for the foot of a public issue page, posting to ``action``.

    Styled inline and with its own ``<style>`` (the issue page's CSP allows inline styles,
    not the site's stylesheet): the brand's accent and font, a ≥ 44 px email box with
    16 px text, dark mode.
    """
    brand = brand_context(config)
    pub = config.publication
    words = translations(pub.language, config.base_dir)
    _ = words.gettext
    e = html.escape
    address = f" · {e(pub.postal_address)}" if pub.postal_address else ""
    style = (
        ".dg-signup{box-sizing:border-box;max-width:600px;margin:0 auto;padding:24px 28px 32px;"
        f"font-family:{brand['font']};color:#1f2937;background:#eef0f3}}"
        ".dg-signup h2{font-size:20px;margin:0 0 12px}"
        ".dg-signup label{display:block;font-size:16px;margin:0 0 6px}"
        ".dg-signup .row{display:flex;flex-wrap:wrap;gap:8px}"
        ".dg-signup input[type=email]{box-sizing:border-box;flex:1 1 200px;min-width:0;min-height:44px;"
        "font:inherit;font-size:16px;padding:8px 12px;border:1px solid #6b7280;border-radius:4px;"
        "background:#fff;color:#1f2937}"
        f".dg-signup button{{min-height:44px;font:inherit;font-size:16px;font-weight:600;padding:8px 20px;"
        f"border:0;border-radius:4px;background:{brand['accent']};color:#fff;cursor:pointer}}"
        ".dg-signup p{font-size:14px;margin:12px 0 0;color:#374151}"
        ".dg-signup .hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
        "@media (prefers-color-scheme:dark){.dg-signup{background:#030712;color:#f3f4f6}"
        ".dg-signup p{color:#d1d5db}"
        ".dg-signup input[type=email]{background:#111827;color:#f3f4f6;border-color:#9ca3af}"
        f".dg-signup button{{background:{brand['accent_dark']};color:#111827}}}}"
    )
    return (
        f"<style>{style}</style>"
        f'<section class="dg-signup" aria-labelledby="dg-signup-h">'
        f'<h2 id="dg-signup-h">{e(_("Get every issue by email"))}</h2>'
        f'<form method="post" action="{e(action)}">'
        f'<label for="dg-email">{e(_("Email address"))}</label>'
        '<div class="row"><input id="dg-email" name="email" type="email" required autocomplete="email"'
        ' maxlength="254">'
        f'<button type="submit">{e(_("Subscribe"))}</button></div>'
        f'<div class="hp" aria-hidden="true"><label for="dg-website">{e(_("Leave this empty"))}</label>'
        '<input id="dg-website" name="website" type="text" tabindex="-1" autocomplete="off"></div>'
        "</form>"
        f"<p>{e(_('We send a confirmation email first. Unsubscribe with one click from any issue.'))}</p>"
        f"<p>{e(pub.name)}{address}</p>"
        "</section>"
    )


def public_page(page: str, config: Config, signup_action: str) -> str:
    """The web page of a published issue: the email without its personal footer, with a
    sign-up form (posting to ``signup_action``) where the footer was, at the end of the body."""
    page = without_footer(page)
    block = signup_block(config, signup_action)
    end = page.lower().rfind("</body>")
    if end == -1:
        return page + block
    return page[:end] + block + page[end:]


def feed_content(page: str) -> str:
    """A feed entry's HTML for an issue page: the body without the footer and the hidden
    inbox preview line, cleaned down to :data:`FEED_TAGS` (links http/https/mailto only;
    images keep ``src``, ``alt``, ``width``, ``height``)."""
    body = _BODY.search(page)
    fragment = _HIDDEN_DIV.sub("", without_footer(body.group(1) if body else page))
    cleaned = nh3.clean(
        fragment,
        tags=set(FEED_TAGS),
        clean_content_tags={"style", "script", "title", "head", "form", "noscript"},
        attributes={"a": {"href"}, "img": {"src", "alt", "width", "height"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
    )
    cleaned = re.sub(r"<div>\s*</div>|<p>\s*</p>", "", cleaned)
    return re.sub(r"\n\s*\n+", "\n", cleaned).strip()
