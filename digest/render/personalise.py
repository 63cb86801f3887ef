"""Per-recipient fields: the placeholder tokens a rendered issue carries, and filling them.

An issue is rendered once per variant with a token (:data:`PLACEHOLDERS`, plus
``__DIGEST_ATTR_KEY__`` for a subscriber attribute) wherever a reader's own value goes;
:func:`personalise` fills them for one recipient by plain substitution at send time.
"""

from __future__ import annotations

import functools
import html as html_lib
import json
import re
from collections.abc import Mapping
from typing import Any

from digest.config import Config
from digest.i18n import translations

RECIPIENT_FIELDS = ("name", "email", "unsubscribe_url", "preferences_url")
DERIVED_FIELDS = ("greeting", "first_name")
"""Fields made from the recipient's name and attributes when filled (:func:`first_name`,
:func:`greeting`), never passed in."""
PLACEHOLDERS: dict[str, str] = {
    field: f"__DIGEST_{field.upper()}__" for field in (*RECIPIENT_FIELDS, *DERIVED_FIELDS)
}
"""Field → token. ASCII letters, digits and underscores only: they pass MJML, premailer,
URL attributes and quoted-printable untouched."""

DEFAULT_GREETING = ("Hello, {first_name}!", "Hello!")
"""``(greeting, greeting_anonymous)`` when the caller names none (the ``[render]`` defaults)."""

NAME_FALLBACK = "Reader"
"""Shown where a recipient has no name."""

DISPLAY_MAX = 64
"""Characters of a name or attribute shown in an issue; a longer one is cut and ends in "…".
The size budget counts on it (:mod:`digest.render.wire`)."""

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


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_UNCUT = frozenset(("email", "unsubscribe_url", "preferences_url"))


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


def first_name(name: str, attributes: Mapping[str, Any]) -> str:
    """A reader's first name: the ``first_name`` attribute (imports fill it from "First Name",
    Mailchimp's FNAME and the like), else the first word of their name, else ''."""
    given = _CONTROL_RE.sub(" ", str(attributes.get("first_name") or "")).strip()
    if given:
        return given
    words = _CONTROL_RE.sub(" ", name).split()
    return words[0] if words and "@" not in words[0] else ""


def greeting(name: str, attributes: Mapping[str, Any], pair: tuple[str, str] = DEFAULT_GREETING) -> str:
    """The greeting for one reader: ``pair[0]`` with ``{first_name}`` / ``{name}`` filled when
    the reader has a first name, else ``pair[1]`` (``[render] greeting`` and
    ``greeting_anonymous``, checked at config load to use only those fields)."""
    given = first_name(name, attributes)
    if not given:
        return pair[1].format()
    return pair[0].format(first_name=given, name=" ".join(_CONTROL_RE.sub(" ", name).split()) or given)


def _attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    raw = fields.get("attributes") or {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def personalise(
    rendered: str, fields: Mapping[str, Any], *, html: bool, greeting_pair: tuple[str, str] = DEFAULT_GREETING
) -> str:
    """Fill the placeholders in ``rendered`` with one recipient's ``fields`` in one pass.

    Values are escaped for HTML when ``html`` is true; control characters (line breaks)
    become spaces in both modes. A missing or empty ``name`` reads :data:`NAME_FALLBACK`;
    other missing fields become empty. A name or attribute longer than :data:`DISPLAY_MAX`
    characters is cut (addresses and links never are). A subscriber attribute (``attribute:KEY``) comes from
    ``fields["attributes"]`` (a dict, or its JSON text), empty when the subscriber has none.
    ``greeting`` and ``first_name`` are made from the name and attributes (:func:`greeting`,
    with ``greeting_pair``: the config's ``[render] greeting`` and ``greeting_anonymous``).
    """
    literals, names = _split(rendered)
    if not names:
        return rendered
    values = {}
    attributes: dict[str, Any] | None = None  # parsed only when the part has a merge field
    for field in dict.fromkeys(names):  # only the fields this part uses (once per recipient)
        if field.startswith(ATTRIBUTE_PREFIX):
            if attributes is None:
                attributes = _attributes(fields)
            value = str(attributes.get(field[len(ATTRIBUTE_PREFIX) :]) or "")
        elif field in DERIVED_FIELDS:
            if attributes is None:
                attributes = _attributes(fields)
            name = str(fields.get("name") or "")
            if field == "greeting":
                value = greeting(name, attributes, greeting_pair)
            else:
                value = first_name(name, attributes)
        else:
            value = str(fields.get(field) or "")
        if not value and field == "name":
            value = NAME_FALLBACK
        value = _CONTROL_RE.sub(" ", value).strip() if value else value
        if len(value) > DISPLAY_MAX and field not in _UNCUT:
            value = value[: DISPLAY_MAX - 1].rstrip() + "…"
        values[field] = html_lib.escape(value, quote=True) if html else value
    parts = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        parts.append(values[name])
        parts.append(literal)
    return "".join(parts)


def config_greeting(config: Config) -> tuple[str, str]:
    """The config's ``(greeting, greeting_anonymous)``, for :func:`personalise`, in the
    publication's language when they are the built-in defaults (a publisher's own wording
    is not in the catalogue and passes unchanged, unless ``labels/<lang>.po`` translates it)."""
    words = translations(config.publication.language, config.base_dir)
    return words.gettext(config.render.greeting), words.gettext(config.render.greeting_anonymous)


def sample_fields(config: Config) -> dict[str, str]:
    """Stand-in recipient values for previews."""
    base = config.publication.base_url.rstrip("/")
    return {
        "name": "Alex Example",
        "email": "reader@example.org",
        "unsubscribe_url": f"{base}/unsubscribe/preview",
        "preferences_url": f"{base}/preferences/preview",
    }
