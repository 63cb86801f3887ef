"""The reader's language: translated labels, dates in the local style, the writing direction.

``[publication] language`` (a BCP 47 tag: ``de``, ``pt-BR``, ``ar``) picks a gettext
catalogue shipped in ``digest/locale/<lang>/LC_MESSAGES/digest.po``; the ``.po`` files are
read with Babel when first used (no compile step, no binaries in the wheel).
A publisher's own ``labels/<lang>.po`` in the workspace (next to ``digest.toml``) is laid
over the shipped catalogue: any string it translates wins, the rest fall back.

:func:`translations` gives the gettext object for a language, :func:`direction` its
writing direction (``rtl`` for Arabic, Hebrew, Persian, Urdu), :func:`format_date` and
:func:`format_datetime` a date in the language's style (plain ``en`` keeps ``23 Jan 2026``).

A new label: ``_(label)`` in a template, ``translate(label)`` in the web app, ``gettext`` on a
:func:`translations` object elsewhere; its ``{field}``s are filled with ``str.format`` after
translation. Add it to every ``locale/*/LC_MESSAGES/digest.po`` (English with an empty
``msgstr``): tests/test_languages.py fails until each language has it.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from datetime import date, datetime
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton as _babel_skeleton
from babel.dates import format_time as _babel_time
from babel.dates import get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

from digest.errors import DigestError

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "digest"
SHIPPED = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "el", "ru", "uk", "tr", "ar", "he", "ja", "zh")
"""The languages with a shipped catalogue (``en`` is the msgids themselves)."""
RTL = frozenset({"ar", "he", "fa", "ur"})
OVERRIDE_DIR = "labels"
"""The workspace folder of a publisher's own catalogues: ``labels/<lang>.po``."""


def primary(language: str) -> str:
    """The language subtag of a BCP 47 tag, lower case: ``pt-BR`` → ``pt``."""
    return (language or "en").replace("_", "-").split("-")[0].lower() or "en"


def candidates(language: str) -> list[str]:
    """Catalogue names to try for a tag, most specific first: ``pt-BR`` → ``pt_BR``, ``pt``."""
    parts = (language or "en").replace("_", "-").split("-")
    names = [primary(language)]
    if len(parts) > 1 and parts[1]:
        names.insert(0, f"{parts[0].lower()}_{parts[1].upper() if len(parts[1]) == 2 else parts[1].title()}")
    return names


def direction(language: str) -> str:
    """``rtl`` for a right-to-left language, else ``ltr``."""
    return "rtl" if primary(language) in RTL else "ltr"


def translations(language: str, workspace: Path | None = None) -> gettext.NullTranslations:
    """The gettext translations for ``language``: the workspace's ``labels/<lang>.po`` (when
    ``workspace`` has one) over the shipped catalogue over the English msgids."""
    overrides = []
    if workspace is not None:
        for name in candidates(language):
            path = workspace / OVERRIDE_DIR / f"{name}.po"
            if path.is_file():
                stat = path.stat()
                overrides.append((path, stat.st_mtime_ns, stat.st_size))
    return _translations(language, tuple(overrides))


@functools.lru_cache(maxsize=64)
def _translations(language: str, overrides: tuple[tuple[Path, int, int], ...]) -> gettext.NullTranslations:
    chain: list[gettext.NullTranslations] = [_read(path) for path, _mtime, _size in overrides]
    chain += [_read(p) for name in candidates(language) if (p := _shipped(name)).is_file()]
    if not chain:
        return gettext.NullTranslations()
    first = chain[0]
    for fallback in chain[1:]:
        first.add_fallback(fallback)
    return first


_FIELD_RE = re.compile(r"\{[^{}]*\}")


def _fields(text: str) -> set[str]:
    """The ``{field}``s a label is filled with (str.format)."""
    return set(_FIELD_RE.findall(text))


def _shipped(name: str) -> Path:
    return LOCALE_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(path: Path) -> Translations:
    """A ``.po`` file as a gettext object, compiled in memory (untranslated and fuzzy entries
    fall through to the next catalogue)."""
    try:
        with path.open("rb") as handle:
            catalog = read_po(handle, abort_invalid=True)
    except (OSError, ValueError, PoFileError) as exc:
        raise DigestError(f"{path}: not a readable .po catalogue ({exc}); fix or remove it") from None
    for message in catalog:
        if isinstance(message.id, str) and isinstance(message.string, str) and message.string:
            wanted, used = _fields(message.id), _fields(message.string)
            if used - wanted or ("{" in message.string and not used):
                allowed = ", ".join(sorted(wanted)) or "none"
                raise DigestError(
                    f"{path}:{message.lineno}: the translation of {message.id!r} uses "
                    f"{', '.join(sorted(used - wanted)) or 'a stray brace'}; its fields: {allowed}"
                )
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@functools.lru_cache(maxsize=32)
def locale(language: str) -> Locale:
    """The Babel locale for a tag; plain ``en`` is British English (``23 Jan 2026, 07:30``),
    a tag Babel does not know falls back to its language, then to English."""
    if (language or "en").lower() == "en":
        return Locale.parse("en_GB")
    for name in candidates(language):
        try:
            return Locale.parse(name)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en_GB")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(value: date | datetime, language: str = "en") -> str:
    """A day with its month named, the language's way: ``23 Jan 2026``, ``23. Jan. 2026``,
    ``23 يناير 2026``, ``2026年1月23日`` (a named month reads the same in either direction;
    an all-digit date does not)."""
    if (language or "en").lower() == "en":  # the house style, also in September ("Sept" in en_GB)
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    return _babel_skeleton("yMMMd", value, locale=locale(language))


def format_datetime(value: datetime, language: str = "en") -> str:
    """A day and time of day in the language's style: ``23 Jan 2026, 07:30``."""
    if (language or "en").lower() == "en":
        return f"{format_date(value)}, {value:%H:%M}"
    where = locale(language)
    pattern = get_datetime_format("medium", locale=where).replace("'", "")
    return pattern.format(_babel_time(value, "short", locale=where), format_date(value, language))
