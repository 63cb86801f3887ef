"""Untrusted feed HTML → a small email-safe fragment, plain text and a short summary.

Everything here is linear in the input: nh3 (ammonia, a real HTML parser) does
the cleaning (also before text extraction, so the text regexes only see its tidy output),
and the sentence splitter's regex has no nested quantifiers.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = frozenset({"p", "a", "em", "strong", "b", "i", "br", "ul", "ol", "li"})
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
WORDS_PER_MINUTE = 230

# Tags whose text is dropped along with them (their text is code or decoration, not prose).
_DROP_CONTENT = {
    "script",
    "style",
    "iframe",
    "noscript",
    "template",
    "object",
    "embed",
    "svg",
    "math",
    "textarea",
    "select",
    "title",
    "head",
}
# Block-level tags: text on either side of them must not run together.
_BLOCK_TAGS = {
    "p",
    "br",
    "li",
    "ul",
    "ol",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "table",
    "tr",
    "td",
    "th",
    "hr",
    "section",
    "article",
    "figure",
    "figcaption",
    "header",
    "footer",
    "dd",
    "dt",
}
_SPACE = re.compile(r"\s+")
_BLOCK_END = re.compile(
    r"</(?:div|h[1-6]|td|th|tr|table|blockquote|pre|section|article|figure|figcaption|dd|dt)>", re.I
)
# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) then whitespace.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s")


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host."""
    if not url:
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def resolve_url(url: str | None, base: str | None) -> str | None:
    """Resolve ``url`` against an http(s) ``base``; return an absolute http(s) URL or None."""
    if not url:
        return None
    url = url.strip()
    if is_web_url(url):
        return url
    if not is_web_url(base):
        return None
    try:
        joined = urljoin(base or "", url)
    except ValueError:
        return None
    return joined if is_web_url(joined) else None


@lru_cache(maxsize=256)
def _cleaner(base: str | None) -> nh3.Cleaner:
    # Without a usable base a relative link leads nowhere in an email: drop it.
    relative: object = ("rewrite_with_base", base) if base else "deny"
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROP_CONTENT),
        attributes={"a": {"href"}, "*": set()},  # "*" empty: no generic lang/title either
        url_schemes=set(ALLOWED_SCHEMES),
        link_rel=None,
        strip_comments=True,
        url_relative=relative,
    )


def sanitize_html(fragment: str | None, base_url: str | None = None) -> str:
    """Clean untrusted HTML down to :data:`ALLOWED_TAGS`; ``a`` keeps only an http/https/mailto
    ``href``. Relative links are resolved against ``base_url`` when it is an http(s) URL and
    dropped otherwise. Empty paragraphs and surrounding whitespace are removed."""
    if not fragment:
        return ""
    base = base_url.strip() if is_web_url(base_url) else None
    # A space after closing block tags the allow-list drops, so "<div>a</div><div>b</div>"
    # does not become "ab". Adding a space can never create markup.
    fragment = _BLOCK_END.sub(r"\g<0> ", fragment)
    cleaned = _unwrap_bare_links(_cleaner(base).clean(fragment))
    cleaned = re.sub(r"<p>\s*</p>", "", cleaned)
    return cleaned.strip()


_ANCHOR = re.compile(r"<a(?: [^>]*)?>|</a>")


def _unwrap_bare_links(cleaned: str) -> str:
    """Drop ``<a>`` tags whose href was removed, keeping their text. nh3's output is
    well-formed and anchors never nest, so one linear pass pairs them up."""
    if "<a>" not in cleaned:
        return cleaned
    out: list[str] = []
    pos = 0
    bare = False
    for m in _ANCHOR.finditer(cleaned):
        out.append(cleaned[pos : m.start()])
        tag = m.group(0)
        if tag == "</a>":
            if not bare:
                out.append(tag)
            bare = False
        else:
            bare = tag == "<a>"
            if not bare:
                out.append(tag)
        pos = m.end()
    out.append(cleaned[pos:])
    return "".join(out)


_TEXT_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS | _BLOCK_TAGS),
    clean_content_tags=set(_DROP_CONTENT),
    attributes={"*": set()},
    link_rel=None,
    strip_comments=True,
)
# Only valid on nh3 output: well-formed tags from a known set, no attributes except href.
_BLOCK_TAG = re.compile(r"</?(?:" + "|".join(sorted(_BLOCK_TAGS, key=len, reverse=True)) + r")\b[^>]*>")
_ANY_TAG = re.compile(r"<[^>]*>")


def html_to_text(fragment: str | None) -> str:
    """The readable text of an HTML fragment: tags removed, entities decoded, paragraphs
    separated by a blank line, runs of spaces collapsed."""
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return one_line(fragment)
    # nh3 parses like a browser; the regexes then only ever see its tidy output.
    cleaned = _TEXT_CLEANER.clean(fragment)
    cleaned = _ANY_TAG.sub("", _BLOCK_TAG.sub("\n", cleaned))
    lines = [_SPACE.sub(" ", line).strip() for line in html.unescape(cleaned).split("\n")]
    return "\n\n".join(line for line in lines if line)


def one_line(text: str | None) -> str:
    """``text`` with every run of white space (newlines included) folded to one space, trimmed."""
    return _SPACE.sub(" ", text or "").strip()


def plain_text(value: str | None) -> str:
    """A one-line plain string from text that may carry markup or entities (titles, names)."""
    return one_line(html_to_text(value))


def count_words(text: str) -> int:
    """Number of whitespace-separated words in ``text``."""
    return len(text.split())


def reading_minutes(text: str) -> int:
    """Reading time at about 230 words a minute, rounded, at least 1."""
    return max(1, (count_words(text) + WORDS_PER_MINUTE // 2) // WORDS_PER_MINUTE)


CHARS_PER_WORD = 12
"""A summary of N words may take at most N × this many characters (twice a long English word
and its space): one 200,000-character "word" must not pass as one word."""
LONGEST_WORD = 40
"""A run of more characters than this without a space gets break opportunities when shown."""
_LONG_WORD = re.compile(rf"\S{{{LONGEST_WORD + 1},}}")
_ZWSP = "\u200b"


def summary_chars(max_words: int) -> int:
    """The most characters a summary of ``max_words`` words may take."""
    return max(1, max_words) * CHARS_PER_WORD


def cut_chars(text: str, max_chars: int) -> str:
    """``text`` when it has at most ``max_chars`` characters; else cut at the last space within
    them (or inside the word, when that space is in its first half) and ended with "…"."""
    if len(text) <= max_chars:
        return text
    head = text[: max(0, max_chars - 1)]
    space = head.rfind(" ")
    if space > len(head) // 2:
        head = head[:space]
    return head.rstrip(" ,;:–—-") + "…"


def break_long_words(text: str) -> str:
    """``text`` with a ZERO WIDTH SPACE after every :data:`LONGEST_WORD` characters of a longer
    run without a space, so no word can push an email wider than its column (CJK text,
    which needs no spaces, looks the same)."""
    if len(text) <= LONGEST_WORD:
        return text

    def split(match: re.Match[str]) -> str:
        word = match.group(0)
        return _ZWSP.join(word[i : i + LONGEST_WORD] for i in range(0, len(word), LONGEST_WORD))

    return _LONG_WORD.sub(split, text)


def summarize_text(text: str, max_words: int) -> str:
    """The leading sentences of ``text`` that fit in ``max_words`` words, cut at a sentence
    boundary. When even the first sentence is longer, it is cut at a word and ends with "…".
    Never more than :func:`summary_chars` characters (:func:`cut_chars`)."""
    flat = one_line(text)
    if not flat or max_words <= 0:
        return ""
    return cut_chars(_leading_sentences(flat, max_words), summary_chars(max_words))


def _leading_sentences(flat: str, max_words: int) -> str:
    words = flat.split(" ")
    if len(words) <= max_words:
        return flat
    # Scan sentence ends only within the words that could fit (linear, bounded).
    window = " ".join(words[: max_words + 1]) + " "
    cut = 0
    for m in _SENTENCE_END.finditer(window):
        if count_words(window[: m.end()]) > max_words:
            break
        cut = m.end()
    if cut:
        return window[:cut].strip()
    return " ".join(words[:max_words]).rstrip(",;:–—-") + "…"


def text_to_html(text: str) -> str:
    """Escape plain text into ``<p>`` paragraphs (blank lines separate paragraphs)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{html.escape(_SPACE.sub(' ', p), quote=False)}</p>" for p in paragraphs)


# --- characters and URLs that must never be stored --------------------------------------

# C0 controls except tab and newline, DEL, C1 controls, lone surrogates, U+FFFE/U+FFFF.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# What a URL may never carry raw: white space, controls, and characters no URL allows.
_URL_UNSAFE = re.compile('[\x00-\x20\x7f-\x9f\ud800-\udfff\ufffe\uffff"<>\\\\^`{|}]')


def clean_text(value: str | None, *, multiline: bool = True) -> str:
    """``value`` without the characters no email, template or XML may carry: C0/C1 controls
    (tab and newline stay when ``multiline``; carriage returns become newlines), lone
    surrogates and U+FFFE/U+FFFF. Linear; None reads as empty."""
    if not value:
        return ""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROLS.sub("", value)
    return value if multiline else value.replace("\t", " ").replace("\n", " ")


def safe_url(url: str | None) -> str:
    """``url`` trimmed, with every control character, space or character a URL never holds
    raw percent-encoded (as UTF-8), so a stored link can never split a line or a header;
    lone surrogates and U+FFFE/U+FFFF are dropped. Existing ``%XX`` escapes are kept."""
    if not url:
        return ""
    url = _CONTROLS.sub(lambda m: "" if m.group(0) >= "\ud800" else m.group(0), url).strip(" \t\n\r\f\v")
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode("utf-8")), url)
