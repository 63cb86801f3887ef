"""Build the email for an issue: prepared once per variant, filled per recipient.

The message is multipart/alternative (text, then HTML), UTF-8, each part in the
shorter transfer encoding for it (quoted-printable, or base64 for non-Latin text:
:mod:`digest.render.wire`, which the size budget counts with). A quoted-printable
part keeps every placeholder whole on a line of its own, so filling a recipient in
is a join of prepared byte segments with their encoded values; a base64 part's
literals are encoded ahead and a fill encodes only the bytes around its values — no
MIME object per recipient, no re-encoding of the 60 KB body.

Header values are built only from checked input: CR and LF never get in,
non-ASCII subjects and names become RFC 2047 encoded words, long fields are
folded (:func:`fold`), and every header line stays far below 998 octets. With
``[dkim]`` configured each message is signed (relaxed/relaxed; the fixed head is
canonicalised once per prepared message, each fill's four own headers and body hash
per recipient, OpenSSL makes the RSA signature), over-signing the headers of
:data:`digest.mail.signing.OVERSIGNED`, present or absent.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import format_datetime, parseaddr
from html import escape as html_escape
from typing import Any

from digest.config import Config
from digest.errors import DigestError
from digest.mail.message_ids import message_ids
from digest.mail.signing import OVERSIGNED, DkimSigner, PreparedSigner, dkim_signer
from digest.render.personalise import config_greeting, personalise, placeholder_field, placeholder_token
from digest.render.wire import (
    BASE64,
    Base64Part,
    encode_qp,
    encode_value,
    link_room,
    raw_literals,
    shorter_encoding,
)

__all__ = [
    "OVERSIGNED",
    "PreparedMessage",
    "build_message",
    "dkim_signer",
    "encode_header_text",
    "feedback_id",
    "format_address",
    "header_address",
    "message_id",
    "prepare_message",
]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_URL = re.compile(r"(https?|mailto):[!#-;=?-~]+")  # printable ASCII, no space, quote, < or >
# A local part may be UTF-8 (RFC 6531), the domain is IDNA; no controls (NUL, ESC, DEL, C1).
_EMAIL = re.compile(r"[^\s\x00-\x1f\x7f-\x9f<>(),;:\"\[\]\\@]+@[A-Za-z0-9.-]+")
_MAX_HEADER_TEXT = 900


# ---------------------------------------------------------------- headers


def _clean(text: str, *, limit: int = 400) -> str:
    """Untrusted text for a header: control characters (CR, LF...) become spaces, runs collapse."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())[:limit]


def encode_header_text(text: str) -> str:
    """A header value: ASCII as is; otherwise RFC 2047 UTF-8 B encoded words, folded."""
    text = _clean(text, limit=_MAX_HEADER_TEXT)
    if text.isascii() and "=?" not in text:
        return text
    words: list[str] = []
    chunk = ""
    for ch in text:
        # 45 raw bytes → 60 base64 chars; with "=?UTF-8?B?" and "?=" a word is 72 ≤ 75.
        if len((chunk + ch).encode()) > 45:
            words.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        words.append(chunk)
    encoded = [f"=?UTF-8?B?{base64.b64encode(w.encode()).decode()}?=" for w in words]
    return "\r\n ".join(encoded)


def format_address(name: str, email: str) -> str:
    """``Name <email>`` with the name quoted or RFC 2047-encoded; raises DigestError on a bad address.
    An international address (RFC 6531) is written in UTF-8 (RFC 6532), for SMTPUTF8."""
    email = str(email).strip()
    if not _EMAIL.fullmatch(email) or len(email.encode()) > 254:
        raise DigestError(f"cannot address a message to {email!r}: not an email address")
    name = _clean(name or "", limit=120)
    if not name:
        return email
    if name.isascii() and "=?" not in name:
        if _ATEXT.fullmatch(name):
            return f"{name} <{email}>"
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{email}>'
    return f"{encode_header_text(name)} <{email}>"


def header_address(name: str, email: str) -> Address:
    """The address for an ``email.message.EmailMessage`` header (the transactional mail's From
    and To): checked like :func:`format_address`, the name cleaned the same way, but left for
    the message's policy to encode and fold. (:func:`format_address` folds a long non-ASCII name
    itself, with CRLF, which ``EmailMessage`` refuses in a header value.)"""
    format_address("", email)  # raises DigestError on a bad address
    local, _, domain = str(email).strip().rpartition("@")  # by parts: an international one parses
    return Address(display_name=_clean(name or "", limit=120), username=local, domain=domain)


def _parse_from(config: Config) -> tuple[str, str]:
    return _parse_from_text(config.publication.from_address, config.publication.name, config.source)


@functools.lru_cache(maxsize=16)
def _parse_from_text(raw: str, publication: str, source: str) -> tuple[str, str]:
    name, email = parseaddr(raw)
    if not email or not _EMAIL.fullmatch(email) or _CONTROL.search(raw):
        raise DigestError(
            f'{source}: publication.from = {raw!r} is not an address; use "Name <address@example.org>"'
        )
    return name or publication, email


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def message_id(config: Config, issue_id: int, subscriber_id: int | None) -> str:
    """A new signed Message-ID for issue × subscriber (:mod:`digest.mail.message_ids`: unique, the
    ledger keeps it for the row); a random unsigned one for test sends."""
    _, sender = _parse_from(config)
    if subscriber_id is None:
        return f"<test.{issue_id}.{secrets.token_hex(8)}@{_domain(sender)}>"
    return message_ids(config).make(issue_id, subscriber_id)


def fold(line: str, *, start: int = 0) -> str:
    """A header field (``Name: value``; or a value, ``start`` being the length of ``Name: ``)
    folded before a space wherever a line would pass 78 characters (RFC 5322 §2.2.3), never
    inside ``Name: ``; a line with no space to fold at stays as long as it is. Unfolding
    (dropping each CRLF) gives the field back."""
    if len(line) + start <= 78 and "\r\n" not in line:
        return line
    out: list[str] = []
    for n, physical in enumerate(line.split("\r\n")):
        offset = start if n == 0 else 0
        lowest = 1 if n or start else line.find(": ") + 2
        while len(physical) + offset > 78:
            cut = physical.rfind(" ", lowest, 78 - offset)
            if cut < lowest:
                cut = physical.find(" ", max(lowest, 78 - offset))
            if cut < lowest:
                break
            out.append(physical[:cut])
            physical, offset, lowest = physical[cut:], 0, 1
        out.append(physical)
    return "\r\n".join(out)


def fold_value(name: str, value: str) -> str:
    """``value`` of the header ``name``, folded as :func:`fold` folds the field."""
    return fold(value, start=len(name) + 2)


def _check_url(url: str, what: str) -> str:
    url = str(url or "").strip()
    if not _URL.fullmatch(url) or len(url) > 700:
        raise DigestError(
            f"{what} {url[:80]!r} is not a plain http(s)/mailto URL; check publication.base_url"
        )
    return url


def _list_id(config: Config, edition: str, sender: str) -> str:
    if config.delivery.list_id:
        value = config.delivery.list_id.strip()
        if _CONTROL.search(value) or len(value) > 300 or not re.search(r"<[A-Za-z0-9.-]+>$", value):
            raise DigestError(
                f'{config.source}: delivery.list_id = {value!r} must look like "Name <label.example.org>"'
            )
        return value
    label = re.sub(r"[^a-z0-9-]+", "-", edition.lower()).strip("-") or "digest"
    title = config.editions[edition].title if edition in config.editions else config.publication.name
    name = encode_header_text(f"{config.publication.name} {title}".strip())
    return f"{name} <{label}.{_domain(sender)}>"


_MAILTO_SUBJECT = "?subject=unsubscribe"
"""The subject of the ``mailto:`` unsubscribe digest writes; :func:`_mailto_for` appends the token."""


def _mailto(config: Config) -> str | None:
    address = config.delivery.unsubscribe_mailto.strip()
    if not address:
        return None
    if address.startswith("mailto:"):
        return _check_url(address, "delivery.unsubscribe_mailto")
    if not _EMAIL.fullmatch(address):
        raise DigestError(f"{config.source}: delivery.unsubscribe_mailto = {address!r} is not an address")
    return f"mailto:{address}{_MAILTO_SUBJECT}"


_URL_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _mailto_for(mailto: str, unsubscribe_url: str) -> str:
    """The reader's own ``mailto:`` unsubscribe: the subject carries the signed token of their
    unsubscribe link, so `digest bounces process` maps the mail to them without trusting its
    From line. A ``mailto:`` URL the publisher wrote in full is used as it is."""
    token = unsubscribe_url.rsplit("/", 1)[-1]
    if not mailto.endswith(_MAILTO_SUBJECT) or not _URL_TOKEN.fullmatch(token):
        return mailto
    return f"{mailto}%20{token}"


def _needs_escape(value: str) -> bool:
    return "&" in value or "<" in value or ">" in value or '"' in value or "'" in value


# ---------------------------------------------------------------- the prepared message


class _DateCache:
    """RFC 5322 Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def now(self) -> bytes:
        t = int(time.time())
        if t != self.second:
            self.second = t
            self.value = format_datetime(datetime.fromtimestamp(t, UTC)).encode()
        return self.value


@dataclass
class PreparedMessage:
    """One variant's message, encoded once; :meth:`fill` makes a recipient's bytes."""

    issue_id: int
    variant: str
    config: Config
    head: bytes  # the headers that are the same for everyone, CRLF-terminated
    segments: list[bytes]  # body split at the placeholders
    fields: list[tuple[str, bool]]  # (recipient field, html?) between the segments; ("#N", html):
    # the whole base64 part N of ``encoded_parts``
    encoded_parts: list[tuple[Base64Part, list[tuple[str, bool]]]] = field(default_factory=list)
    # each base64 part, and the (field, html?) between its literals
    test: bool = False
    signer: DkimSigner | None = None
    mailto: str | None = None
    _dates: _DateCache = field(default_factory=_DateCache)
    _escape: Any = None  # personalise(text, values, html) of digest.render.variants
    _names: tuple[str, ...] = ()  # the recipient fields used
    _probe: str = ""  # their placeholders joined by NUL: filled in one call
    _body: list[bytes] = field(default_factory=list)  # segments, with empty slots between them
    _slots: list[tuple[int, tuple[str, bool]]] = field(default_factory=list)  # slot → field
    _signing: PreparedSigner | None = None  # DKIM with the fixed head and body start done once

    def __post_init__(self) -> None:

        used = [key for key in self.fields if not key[0].startswith("#")]
        used += [key for _, keys in self.encoded_parts for key in keys]
        self._qp_keys = frozenset(key for key in self.fields if not key[0].startswith("#"))
        self._names = tuple(dict.fromkeys(name for name, _ in used))
        self._probe = "\0".join(placeholder_token(name) for name in self._names)
        self._body = [b""] * (2 * len(self.segments) - 1)
        self._body[::2] = self.segments
        self._slots = [(2 * i + 1, key) for i, key in enumerate(self.fields)]
        if self.signer is not None:
            self._signing = self.signer.prepare(_PER_RECIPIENT, self.head, self.segments)

    def fill(
        self,
        recipient: Mapping[str, Any],
        *,
        message_id: str | None = None,
        date: datetime | None = None,
    ) -> bytes:
        """The complete message for ``recipient`` (email, name, unsubscribe_url, preferences_url,
        subscriber_id), CRLF line endings, DKIM-signed when configured."""
        to = fold_value("To", format_address(recipient.get("name") or "", recipient["email"]))
        mid = message_id or _message_id_for(self, recipient)
        unsub = _check_url(recipient["unsubscribe_url"], "unsubscribe URL")
        list_unsub = f"<{unsub}>, <{_mailto_for(self.mailto, unsub)}>" if self.mailto else f"<{unsub}>"
        list_unsub = fold_value("List-Unsubscribe", list_unsub)
        date_value = format_datetime(date).encode() if date is not None else self._dates.now()
        values = [to.encode(), date_value, mid.encode(), list_unsub.encode()]  # _PER_RECIPIENT
        parts = [
            b"To: ",
            values[0],
            b"\r\nDate: ",
            values[1],
            b"\r\nMessage-ID: ",
            values[2],
            b"\r\nList-Unsubscribe: ",
            values[3],
            b"\r\n",
            self.head,
        ]
        fields = {name: str(recipient.get(name) or "") for name in self._names}
        fields.setdefault("name", str(recipient.get("name") or ""))  # the greeting reads it
        fields["attributes"] = recipient.get("attributes") or {}  # merge fields attribute:KEY
        encoded: dict[tuple[str, bool], bytes] = {}
        raw: dict[tuple[str, bool], bytes] = {}
        done: dict[str, bytes] = {}  # URLs read the same escaped for HTML or not: encode once
        if self._names:
            # personalise() cleans each value and, for HTML, escapes it (documented); one call
            # gives the clean values, html.escape the HTML ones (a test keeps the two equal).
            filled = self._escape(self._probe, fields, False).split("\0")
            for name, value in zip(self._names, filled, strict=True):
                escaped = html_escape(value, quote=True) if _needs_escape(value) else value
                for html, text in ((False, value), (True, escaped)):
                    raw[name, html] = text.encode()
                    if (name, html) in self._qp_keys:
                        if text not in done:
                            done[text] = encode_value(text)
                        encoded[name, html] = done[text]
        for n, (part, keys) in enumerate(self.encoded_parts):
            encoded[f"#{n}", False] = part.fill([raw[key] for key in keys])
        body = self._body.copy()  # segments with a slot between each two
        for slot, key in self._slots:
            body[slot] = encoded[key]
        parts.extend(body)
        data = b"".join(parts)
        if self._signing is not None:  # the body's first segment is hashed already
            rest = memoryview(data)[len(data) - sum(map(len, body[1:])) :]
            return self._signing.sign(values, rest) + data
        return self.signer.sign(data) if self.signer is not None else data


_PER_RECIPIENT = (b"To", b"Date", b"Message-ID", b"List-Unsubscribe")
"""The headers :meth:`PreparedMessage.fill` writes per recipient, in this order, above the head."""


def _message_id_for(prepared: PreparedMessage, recipient: Mapping[str, Any]) -> str:
    if prepared.test:
        return message_id(prepared.config, prepared.issue_id, None)
    return message_id(prepared.config, prepared.issue_id, recipient.get("subscriber_id"))


def prepare_message(
    config: Config,
    issue: Mapping[str, Any],
    rendered: Any,
    *,
    test: bool = False,
    signer: DkimSigner | None = None,
) -> PreparedMessage:
    """Encode ``rendered`` (a RenderedVariant) once; :meth:`PreparedMessage.fill` makes each recipient's."""
    sender_name, sender = _parse_from(config)
    greeting = config_greeting(config)  # filled per reader, in the publication's language

    subject = str(rendered.subject or issue.get("subject") or config.publication.name)
    if test:
        subject = f"[TEST] {subject}"
    boundary = (
        "=_digest_"
        + hashlib.sha256(f"{issue['id']}|{rendered.variant}|{len(rendered.html)}".encode()).hexdigest()[:24]
    )
    head_lines = [
        f"From: {format_address(sender_name, sender)}",
        f"Subject: {encode_header_text(subject)}",
    ]
    if config.publication.reply_to:
        raw = config.publication.reply_to
        name, reply = parseaddr(raw)
        if not reply or not _EMAIL.fullmatch(reply) or _CONTROL.search(raw):  # as publication.from
            raise DigestError(
                f"{config.source}: publication.reply_to = {raw!r} is not an address;"
                ' use "Name <reply@example.org>" or leave it out'
            )
        head_lines.append(f"Reply-To: {format_address(name, reply)}")
    head_lines += [
        f"List-Id: {_list_id(config, str(issue.get('edition') or ''), sender)}",
        f"Feedback-ID: {feedback_id(config, issue)}",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        f"List-Archive: <{_check_url(_archive_url(config), 'archive URL')}>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    if test:
        head_lines.append("X-Digest-Test: yes")
    head = ("\r\n".join(fold(line) for line in head_lines) + "\r\n\r\n").encode()
    for line in head.split(b"\r\n"):
        if len(line) > 990:
            raise DigestError(f"header line too long ({len(line)} octets): {line[:60]!r}…")

    segments, fields, encoded_parts = _body(
        boundary.encode(), rendered, link_room(config.publication.base_url)
    )
    return PreparedMessage(
        issue_id=int(issue["id"]),
        variant=str(rendered.variant),
        config=config,
        head=head,
        segments=segments,
        fields=fields,
        encoded_parts=encoded_parts,
        test=test,
        signer=signer if signer is not None else dkim_signer(config),
        mailto=_mailto(config),
        _escape=lambda text, values, html: personalise(text, values, html=html, greeting_pair=greeting),
    )


def _body(
    boundary: bytes, rendered: Any, url_chars: int
) -> tuple[list[bytes], list[tuple[str, bool]], list[tuple[Base64Part, list[tuple[str, bool]]]]]:
    """The multipart body: its literal segments, the slot keys between them (a recipient's
    value, or ``#N``, base64 part N whole) and the base64 parts' raw pieces. Each part goes in
    the shorter transfer encoding for its longest fill (:func:`digest.render.wire.shorter_encoding`,
    the one the size budget counts)."""
    pieces: list[bytes | tuple[str, bool]] = [b"This is a multi-part message in MIME format.\r\n\r\n"]
    encoded_parts: list[tuple[Base64Part, list[tuple[str, bool]]]] = []
    for kind, text, html in (("plain", str(rendered.text), False), ("html", str(rendered.html), True)):
        encoding, _ = shorter_encoding(text, html=html, url_chars=url_chars)
        pieces.append(
            b"--%s\r\nContent-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n\r\n"
            % (boundary, kind.encode(), encoding.encode())
        )
        if encoding == BASE64:
            literals, tokens = raw_literals(text)
            encoded_parts.append((Base64Part(literals), [(placeholder_field(t), html) for t in tokens]))
            pieces.append((f"#{len(encoded_parts) - 1}", False))
            continue
        segments, tokens = encode_qp(text)
        pieces.append(segments[0])
        for token, segment in zip(tokens, segments[1:], strict=True):
            pieces.extend([(placeholder_field(token), html), segment])
    pieces.append(b"--" + boundary + b"--\r\n")
    segments_out: list[bytes] = [b""]
    fields: list[tuple[str, bool]] = []
    for piece in pieces:
        if isinstance(piece, bytes):
            segments_out[-1] += piece
        else:
            fields.append(piece)
            segments_out.append(b"")
    return segments_out, fields, encoded_parts


def feedback_id(config: Config, issue: Mapping[str, Any]) -> str:
    """``campaign:edition:publication`` for Gmail's feedback loop (ASCII tokens, no colons)."""

    def token(text: str, fallback: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or fallback

    edition = token(str(issue.get("edition") or ""), "edition")
    return f"issue-{int(issue['id'])}:{edition}:{token(config.publication.name, 'digest')}"


def _archive_url(config: Config) -> str:
    return config.publication.base_url.rstrip("/") + "/archive"


def build_message(
    config: Config,
    issue: Mapping[str, Any],
    rendered: Any,
    recipient: Mapping[str, Any],
    *,
    test: bool = False,
) -> bytes:
    """The complete RFC 5322 message (CRLF line endings) for one recipient.

    ``recipient`` carries email, name, unsubscribe_url, preferences_url and
    subscriber_id. The send produces the same bytes (it prepares once per
    variant and fills per recipient).
    """
    return prepare_message(config, issue, rendered, test=test).fill(recipient)
