"""A rendered part as it goes on the wire: quoted-printable with whole placeholders, or base64.

Both the size budget (:mod:`digest.render.size_budget`) and the message
(:mod:`digest.mail.message`) use these encoders, so the budget counts the bytes
that are sent.

Quoted-printable would normally wrap long lines anywhere, so a placeholder could be
split by a soft line break; here every placeholder is put on a line of its own (soft
breaks on both sides), which keeps each one a whole token in the encoded bytes, and a
recipient's value is encoded on its own (:func:`encode_value`). The encoded bytes are
left alone by DKIM's relaxed body canonicalisation: a tab is ``=09``, a space after a
space ``=20``, no line ends in a space.

Base64 cannot hold a token in place, so a base64 part is kept as raw UTF-8 pieces
(:func:`raw_literals`), each encoded ahead in the alignments a fill can meet; a fill
encodes only the bytes around its values (:class:`Base64Part`).
Non-Latin text (Greek, Cyrillic: two bytes a letter) triples in quoted-printable and
grows by a third in base64; :func:`shorter_encoding` picks per part, from the most
bytes each can reach once the longest values are filled in (:func:`worst_sizes`).
"""

from __future__ import annotations

import binascii
import html as html_lib
import re
from collections.abc import Mapping

from digest.render.personalise import (
    ATTRIBUTE_PREFIX,
    DERIVED_FIELDS,
    DISPLAY_MAX,
    PLACEHOLDER_RE,
    placeholder_field,
)

QUOTED_PRINTABLE = "quoted-printable"
BASE64 = "base64"

EMAIL_MAX = 254  # octets in an address (RFC 5321)
URL_ROOM = 200  # bytes of a signed link when its base URL is not known
TOKEN_ROOM = 100  # "/preferences/" and the longest signed token (75 characters) after the base URL
_ESCAPED_MAX = 6  # bytes one character can take once escaped for HTML ("&quot;", "&#x27;")
_UTF8_MAX = 4  # bytes of one character in UTF-8

_WSP_RUN = re.compile(rb"[ \t]+")


def _no_wsp_runs(match: re.Match[bytes]) -> bytes:
    run = match.group(0)
    first = b" " if run[:1] == b" " else b"=09"
    return first + b"".join(b"=20" if c == 0x20 else b"=09" for c in run[1:])


def _wrap(flat: bytes, last_max: int = 75) -> bytes:
    """Quoted-printable lines of at most 76 (``=`` soft breaks, CRLF), the last ≤ ``last_max``,
    never cut inside an ``=XX`` escape."""
    out: list[bytes] = []
    at = 0
    while len(flat) - at > last_max:
        cut = at + 75
        while flat[cut - 1 : cut] == b"=" or flat[cut - 2 : cut - 1] == b"=":
            cut -= 1
        out.append(flat[at:cut] + b"=")
        at = cut
    out.append(flat[at:])
    return b"\r\n".join(out)


def qp(data: bytes) -> bytes:
    """Quoted-printable for one piece of a line (no line break in it), CRLF soft breaks, lines
    ≤ 76, the last ≤ 75 (room for a soft break), no tab and no run of spaces left raw."""
    flat = binascii.b2a_qp(data, quotetabs=False, istext=False).replace(b"=\n", b"")
    if b"\t" in flat or b"  " in flat:
        flat = _WSP_RUN.sub(_no_wsp_runs, flat)
    return _wrap(flat)


def safe_line_starts(data: bytes, *, last_max: int = 76) -> bytes:
    """Escape a '.' or 'From ' at a line start (SMTP dot-stuffing and mbox never touch the
    bytes), re-wrapping a line the escape made too long (lines ≤ 76; the last ≤ ``last_max``)."""
    if not (data.startswith((b".", b"From ")) or b"\n." in data or b"\nFrom " in data):
        return data
    lines = data.split(b"\r\n")
    out: list[bytes] = []
    for n, line in enumerate(lines):
        limit = last_max if n == len(lines) - 1 else 76
        while True:
            if line.startswith(b"."):
                line = b"=2E" + line[1:]
            elif line.startswith(b"From "):
                line = b"=46" + line[1:]
            if len(line) <= limit:
                break
            cut = 72
            while b"=" in line[cut - 2 : cut]:  # never inside an =XX escape
                cut -= 1
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\r\n".join(out)


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def encode_qp(text: str, tokens: re.Pattern[str] = PLACEHOLDER_RE) -> tuple[list[bytes], list[str]]:
    """Encode ``text`` as QP; return literal segments and the placeholder tokens between them."""
    segments: list[bytes] = []
    names: list[str] = []
    current: list[bytes] = []
    for line in _lines(text):
        pieces: list[bytes | str] = []
        pos = 0
        for m in tokens.finditer(line):
            if m.start() > pos:
                pieces.append(qp(line[pos : m.start()].encode()))
            pieces.append(m.group(0))
            pos = m.end()
        if pos < len(line) or not pieces:
            pieces.append(qp(line[pos:].encode()))
        for i, piece in enumerate(pieces):
            if i:
                current.append(b"=\r\n")
            if isinstance(piece, str):
                segments.append(b"".join(current))
                current = []
                names.append(piece)
            else:
                current.append(piece)
        current.append(b"\r\n")
    segments.append(b"".join(current))
    return [safe_line_starts(s) for s in segments], names


def encode_value(value: str) -> bytes:
    """One recipient's value as QP, to sit between two soft breaks of :func:`encode_qp`'s."""
    # Most values (names, addresses, links) are printable ASCII without "=" or a run of spaces:
    # QP leaves them as they are, only broken into lines of 75 plus a soft break.
    # (personalise() has already turned control characters into spaces and stripped the ends.)
    if value.isascii() and "=" not in value and "  " not in value:
        if len(value) <= 73:
            data = value.encode()
        else:
            data = "=\r\n".join([value[i : i + 73] for i in range(0, len(value), 73)]).encode()
        return safe_line_starts(data, last_max=75)
    return safe_line_starts(qp(value.encode()), last_max=75)


def raw_literals(text: str, tokens: re.Pattern[str] = PLACEHOLDER_RE) -> tuple[list[bytes], list[str]]:
    """``text`` with CRLF line ends, in UTF-8, split at the placeholders: (literals, tokens)."""
    crlf = "\r\n".join(_lines(text))
    literals: list[bytes] = []
    names: list[str] = []
    pos = 0
    for m in tokens.finditer(crlf):
        literals.append(crlf[pos : m.start()].encode())
        names.append(m.group(0))
        pos = m.end()
    literals.append(crlf[pos:].encode())
    return literals, names


def base64_lines(data: bytes) -> bytes:
    """``data`` in base64, lines of 76 ending in CRLF (the last one too)."""
    flat = binascii.b2a_base64(data, newline=False)
    return b"".join([flat[i : i + 76] + b"\r\n" for i in range(0, len(flat), 76)])


def base64_size(raw: int, pieces: int = 1) -> int:
    """The most bytes ``raw`` bytes take in base64 lines when encoded in ``pieces`` runs, each
    in lines of its own (:class:`Base64Part`)."""
    flat = 4 * ((raw + 2) // 3)
    return flat + 2 * ((flat + 75) // 76 + pieces)


class Base64Part:
    """A part sent in base64, its literals encoded once: each fill encodes only the few bytes
    around its values.

    Base64 turns each 3 bytes into 4 characters, and line breaks may fall anywhere between
    them (RFC 2045: lines of at most 76): so each literal is encoded ahead in the three
    alignments a fill can meet (0, 1 or 2 bytes carried over from the value before it),
    in lines of its own, and a fill joins those with the encoded bytes around its values."""

    def __init__(self, literals: list[bytes]) -> None:
        self.literals = literals
        self.bulk = [[base64_lines(_bulk(literal, skip)) for skip in range(3)] for literal in literals]

    def fill(self, values: list[bytes]) -> bytes:
        """The part's base64 lines (CRLF after each) with ``values`` between the literals."""
        out: list[bytes] = []
        carry = b""
        for n, literal in enumerate(self.literals):
            skip = (3 - len(carry)) % 3  # bytes of the literal that complete the carry
            if len(literal) < skip + 3:
                carry += literal
            else:
                carry += literal[:skip]
                if carry:
                    out.append(base64_lines(carry))
                out.append(self.bulk[n][skip])
                carry = literal[len(literal) - (len(literal) - skip) % 3 :]
            if n < len(values):
                carry += values[n]
                whole = len(carry) - len(carry) % 3
                if whole:
                    out.append(base64_lines(carry[:whole]))
                    carry = carry[whole:]
        if carry:
            out.append(base64_lines(carry))
        return b"".join(out)


def _bulk(literal: bytes, skip: int) -> bytes:
    """The whole 3-byte groups of ``literal`` after its first ``skip`` bytes."""
    return literal[skip : skip + 3 * ((len(literal) - skip) // 3)] if len(literal) >= skip + 3 else b""


def value_worst(field: str, *, html: bool, url_chars: int = URL_ROOM) -> tuple[int, int]:
    """The most bytes one filled-in value of ``field`` can take: (raw UTF-8, quoted-printable
    with its soft breaks). Names and attributes are capped at :data:`DISPLAY_MAX` characters,
    an address at 254 octets, a link at ``url_chars`` bytes (:func:`link_room`)."""
    escaped = _ESCAPED_MAX if html else 1
    if field == "email":
        raw = EMAIL_MAX * max(escaped, 1)
        encoded = EMAIL_MAX * max(escaped, 3)
    elif field in ("unsubscribe_url", "preferences_url"):
        raw = encoded = url_chars  # see link_room
    else:  # name, greeting, first_name, attribute:KEY: each cut at DISPLAY_MAX characters
        assert field == "name" or field in DERIVED_FIELDS or field.startswith(ATTRIBUTE_PREFIX), field
        raw = DISPLAY_MAX * max(escaped, _UTF8_MAX)
        encoded = DISPLAY_MAX * max(escaped, 3 * _UTF8_MAX)
    return raw, encoded + 3 * (encoded // 73 + 1) + 6  # soft breaks in it and around it


def link_room(base_url: str) -> int:
    """The most bytes a reader's link under ``base_url`` takes in a part, escaped for HTML and in
    quoted-printable (the token's characters need neither)."""
    return len(encode_value(html_lib.escape(base_url.rstrip("/"), quote=True))) + TOKEN_ROOM


def worst_sizes(text: str, *, html: bool, url_chars: int = URL_ROOM) -> Mapping[str, int]:
    """The most bytes the part ``text`` can take on the wire in each transfer encoding, once
    the longest values that can be filled in are: {encoding: bytes}."""
    segments, tokens = encode_qp(text)
    literals, _ = raw_literals(text)
    qp_size, raw_size = sum(map(len, segments)), sum(map(len, literals))
    for token in tokens:
        raw, encoded = value_worst(placeholder_field(token), html=html, url_chars=url_chars)
        qp_size += encoded
        raw_size += raw
    pieces = 3 * len(tokens) + 3  # Base64Part.fill: around each value, each literal, the end
    return {QUOTED_PRINTABLE: qp_size, BASE64: base64_size(raw_size, pieces)}


def shorter_encoding(text: str, *, html: bool, url_chars: int = URL_ROOM) -> tuple[str, int]:
    """The transfer encoding whose most bytes for ``text`` are fewer, and that size."""
    sizes = worst_sizes(text, html=html, url_chars=url_chars)
    encoding = min(sizes, key=lambda e: (sizes[e], e != QUOTED_PRINTABLE))
    return encoding, sizes[encoding]
