"""MJML → email HTML: convert the template's MJML with mjml-python, then inline its CSS.

:func:`mjml_to_html` and :func:`inline_css` are the two stages, in that order.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

import cssutils
import mjml
from premailer import Premailer

from digest.errors import DigestError

_MJML_RESET = '<style type="text/css">\n#outlook a'
_UNCONVERTED_RE = re.compile(r"</?mj-[a-z-]+", re.IGNORECASE)

cssutils.log.setLevel(logging.CRITICAL)


def mjml_to_html(source: str) -> str:
    """MJML → HTML with mjml-python; a clear error when MJML rejects the markup."""
    try:
        out = mjml.mjml2html(source, disable_comments=True)
    except Exception as exc:  # noqa: BLE001 - the Rust binding raises plain exceptions of several kinds
        raise DigestError(f"MJML error: {exc}") from None
    unconverted = _UNCONVERTED_RE.search(out)
    if unconverted:
        raise DigestError(f"MJML left {unconverted.group(0)}> unconverted; check the template's tags")
    return _label_from_title(out)


_TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)
_ARIA_LABEL_RE = re.compile(r'aria-label="[^"]*"')


def _label_from_title(out: str) -> str:
    """MRML writes ``<mj-title>`` into the wrapper's ``aria-label`` with Rust's debug escaping
    (``Cafe\\u{301}``), which a screen reader would spell out; its ``<title>`` is right, so
    the label is taken from there."""
    title = _TITLE_RE.search(out)
    if title is None:
        return out
    label = html.escape(html.unescape(title.group(1)), quote=True)
    return _ARIA_LABEL_RE.sub(lambda _m: f'aria-label="{label}"', out, count=1)


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
