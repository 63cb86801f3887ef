"""What a valid subscriber is: normalised address, name, status, editions, categories, zone.

Every parser here takes untrusted text (a CLI argument, a CSV cell, a form
field) and returns the stored form or raises :class:`InvalidValue` with a short
reason. Control characters (CR, LF, NUL and the rest of C0) are rejected in
every field, so nothing a subscriber typed can split a mail header.

Addresses: the whole address is lower-cased (``Alice@Example.COM`` and
``alice@example.com`` are one subscriber) and the domain is stored in its IDNA
(``xn--``) form. International addresses (RFC 6531, a UTF-8 local part such as
``ñoñó@example.org``) are accepted: their local part is stored in Unicode NFC and
they are mailed with SMTPUTF8. A local part is at most 64 octets and the stored
address at most 254 (RFC 5321, counted in UTF-8). Common plain ASCII addresses are
checked by a strict regular expression; anything else goes through email-validator.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable
from functools import lru_cache

import email_validator

from digest.errors import DigestError

STATUSES = ("pending", "active", "unsubscribed", "bounced")
SOURCES = ("cli", "import", "web", "bounce", "send", "complaint", "email")
MAX_NAME = 200
MAX_LABEL = 100  # an edition key or category name
MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1, in UTF-8 for an international address (RFC 6531)
MAX_ADDRESS_OCTETS = 254  # RFC 5321 4.5.3.1.3 less the angle brackets

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A subset of what email-validator accepts, chosen so that its verdict and its
# normalisation are certain: at most 254 characters, a dot-atom local part of at
# most 64 from a small alphabet, LDH labels with no "--" anywhere (so nothing
# IDNA-like such as "xn--"), and an alphabetic TLD that is not a special-use name.
SPECIAL_TLDS = sorted({name.rsplit(".", 1)[-1] for name in email_validator.SPECIAL_USE_DOMAIN_NAMES})
_LOCAL = r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
_DOMAIN = (
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    rf"(?!(?:{'|'.join(SPECIAL_TLDS)})(?![a-z]))[a-z]{{2,63}}"
)
SIMPLE_ADDRESS = re.compile(
    rf"(?=.{{3,254}}\Z)(?=[^@]{{1,64}}@)(?!.*--){_LOCAL}@{_DOMAIN}",
    re.IGNORECASE | re.DOTALL | re.ASCII,  # ASCII: no Unicode case folding (KELVIN SIGN is not k)
)
_SIMPLE_LOCAL = re.compile(_LOCAL, re.IGNORECASE | re.ASCII)


class InvalidValue(DigestError):
    """One field failed validation; the message says what is wrong with it."""


def has_control(text: str) -> bool:
    """True when ``text`` contains CR, LF, NUL or another control character."""
    return _CONTROL.search(text) is not None


def simple_address(text: str) -> str | None:
    """The normalised form of a plain ASCII address, or None when it needs the full validator."""
    return text.lower() if SIMPLE_ADDRESS.fullmatch(text) else None


def normalize_email(text: str, *, check_deliverability: bool = False) -> str:
    """Validate an address and return its stored form: lower-cased, domain in IDNA form.

    No DNS lookup unless ``check_deliverability`` is true.
    """
    if not isinstance(text, str):
        raise InvalidValue("email is missing")
    if has_control(text):
        raise InvalidValue("email contains a line break or control character")
    text = text.strip()
    if not text:
        raise InvalidValue("email is empty")
    if not check_deliverability:
        simple = simple_address(text)
        if simple is not None:
            return simple
        # A plain local part at an internationalised domain: validate each domain once.
        local, at, domain = text.rpartition("@")
        if at and len(local) <= 64 and _SIMPLE_LOCAL.fullmatch(local):
            ascii_domain = _ascii_domain(domain)
            if ascii_domain is not None and len(local) + 1 + len(ascii_domain) <= 254:
                return f"{local}@{ascii_domain}".lower()
    try:
        # SMTPUTF8 allowed: the send engine says SMTPUTF8 to a relay that offers it (and fails
        # such a reader alone through one that does not).
        valid = email_validator.validate_email(
            text, check_deliverability=check_deliverability, allow_display_name=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        raise InvalidValue(f"email {_clip(text)!r} is not a valid address: {reason}") from None
    local = unicodedata.normalize("NFC", valid.local_part.lower())
    stored = f"{local}@{valid.ascii_domain.lower()}"
    # email-validator (not strict) counts neither the local part nor, for an international
    # one, its octets: RFC 5321's limits are in octets of what goes on the wire.
    if len(local.encode()) > MAX_LOCAL_OCTETS:
        raise InvalidValue(
            f"email {_clip(text)!r} is not a valid address: the part before the @-sign is"
            f" {len(local.encode())} octets long, at most {MAX_LOCAL_OCTETS} are allowed"
        )
    if len(stored.encode()) > MAX_ADDRESS_OCTETS:
        raise InvalidValue(
            f"email {_clip(text)!r} is not a valid address: it is {len(stored.encode())} octets long,"
            f" at most {MAX_ADDRESS_OCTETS} are allowed"
        )
    return stored


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """The IDNA form of a valid domain, or None (the full validator then explains why)."""
    try:
        valid = email_validator.validate_email(f"x@{domain}", check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    return valid.ascii_domain


_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
_DASH_TAGS = ("yahoo.", "ymail.com", "rocketmail.com")


def canonical_address(email: str) -> str:
    """The mailbox an address most likely reaches, for rate limits only (never stored or mailed).

    Lower-cased; a ``+tag`` is dropped everywhere (Outlook, iCloud, Fastmail, Proton and most
    hosts deliver ``a+x@`` to ``a@``); Gmail also ignores dots and ``googlemail.com`` is
    ``gmail.com``; Yahoo's disposable addresses use ``-`` instead of ``+``. Two addresses with
    the same canonical form may rarely be two mailboxes: they then share one limit.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    if not local:
        return email.strip().lower()
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS:
        return f"{local.replace('.', '')}@{_DOTLESS[domain]}"
    if domain.startswith(_DASH_TAGS[0]) or domain in _DASH_TAGS[1:]:
        local = local.split("-", 1)[0] or local
    return f"{local}@{domain}"


def email_hash(email: str) -> str:
    """One-way hash of a normalised address: what the suppression list and old events keep."""
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()


def normalize_name(text: str | None) -> str:
    """A display name: trimmed, at most MAX_NAME characters, no control characters."""
    if text is None:
        return ""
    if has_control(text):
        raise InvalidValue("name contains a line break or control character")
    text = " ".join(text.split())
    if len(text) > MAX_NAME:
        raise InvalidValue(f"name is longer than {MAX_NAME} characters")
    return text


def normalize_status(text: str) -> str:
    """One of :data:`STATUSES` (case-insensitive)."""
    value = text.strip().lower()
    if value not in STATUSES:
        raise InvalidValue(f"status {_clip(text)!r} is not one of {', '.join(STATUSES)}")
    return value


def normalize_labels(
    values: Iterable[str] | None, *, what: str, known: Iterable[str] | None = None
) -> list[str] | None:
    """Editions or categories: trimmed, de-duplicated, order kept; None or empty means all.

    With ``known``, a value matching a known one case-insensitively takes its
    spelling, and an unknown one is an error naming the known ones (a reader who
    follows a category nothing has would get nothing).
    """
    if values is None:
        return None
    known_map = {k.lower(): k for k in known} if known is not None else None
    out: list[str] = []
    for raw in values:
        if has_control(raw):
            raise InvalidValue(f"{what} contains a line break or control character")
        value = " ".join(raw.split())
        if not value:
            continue
        if len(value) > MAX_LABEL:
            raise InvalidValue(f"{what} {_clip(value)!r} is longer than {MAX_LABEL} characters")
        if known_map is not None:
            if value.lower() in known_map:
                value = known_map[value.lower()]
            elif what == "edition":
                choices = ", ".join(known_map.values()) or "none configured"
                raise InvalidValue(f"unknown edition {_clip(value)!r}; configured editions: {choices}")
            else:
                choices = ", ".join(known_map.values()) or "none yet"
                raise InvalidValue(
                    f"unknown {what} {_clip(value)!r}; known: {choices} "
                    f"(add --allow-new-{what} to accept a new one)"
                )
        if value not in out:
            out.append(value)
    return out or None


def split_labels(cell: str) -> list[str]:
    """A ``;``-separated CSV cell as a list."""
    return cell.split(";")


def join_labels(values: list[str] | None) -> str:
    """The CSV cell for a list (empty for None = all)."""
    return ";".join(values) if values else ""


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def available_zones() -> list[str]:
    """Every IANA zone name this machine knows, sorted."""
    return sorted(_zones().values())


def normalize_timezone(text: str | None) -> str | None:
    """An IANA zone name in its canonical spelling; empty means none (the edition's zone)."""
    if text is None:
        return None
    if has_control(text):
        raise InvalidValue("timezone contains a line break or control character")
    value = text.strip()
    if not value:
        return None
    canonical = _zones().get(value.lower())
    if canonical is None:
        raise InvalidValue(f"timezone {_clip(value)!r} is not an IANA zone name (e.g. Europe/Berlin)")
    return canonical


def encode_labels(values: list[str] | None) -> str | None:
    """The stored JSON for an editions/categories list (NULL = all)."""
    return json.dumps(values, ensure_ascii=False) if values else None


def decode_labels(text: str | None) -> list[str] | None:
    """The list stored by :func:`encode_labels`."""
    if not text:
        return None
    values = json.loads(text)
    return values or None


def normalize_columns(
    name: str | None,
    status: str,
    editions: Iterable[str] | None,
    categories: Iterable[str] | None,
    timezone: str | None,
    known_editions: Iterable[str] | None = None,
    known_categories: Iterable[str] | None = None,
) -> dict[str, str | None]:
    """A new subscriber's name, status, editions, categories and timezone as stored (in that
    order), each normalised; an :class:`InvalidValue` names the first bad one."""
    return {
        "name": normalize_name(name),
        "status": normalize_status(status),
        "editions": encode_labels(normalize_labels(editions, what="edition", known=known_editions)),
        "categories": encode_labels(normalize_labels(categories, what="category", known=known_categories)),
        "timezone": normalize_timezone(timezone),
    }


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


MAX_ATTRIBUTE = 1000  # characters in one attribute value
_ATTRIBUTE_KEY_JUNK = re.compile(r"[^a-z0-9]+")
_ATTRIBUTE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # line breaks and tabs may stay


def attribute_key(column: str) -> str:
    """The stored key of an attribute column: lower-case ASCII letters and digits joined by
    single underscores (``"Company Size"`` → ``company_size``); '' when nothing is left.

    The same rule names the merge field, so ``{{ subscriber.attributes.company_size }}``
    reads the column ``Company Size``.
    """
    return _ATTRIBUTE_KEY_JUNK.sub("_", column.strip().lower()).strip("_")


def normalize_attribute(text: str) -> str:
    """An attribute value as stored: stripped; no control characters but line breaks and tabs
    (a merge field turns those into spaces); at most MAX_ATTRIBUTE long."""
    value = text.strip()
    if _ATTRIBUTE_CONTROL.search(value):
        raise InvalidValue(f"attribute value {_clip(value)!r} contains a control character")
    if len(value) > MAX_ATTRIBUTE:
        raise InvalidValue(f"attribute value is longer than {MAX_ATTRIBUTE} characters")
    return value
