"""What one message in the bounce mailbox says: :func:`classify_message`.

Pure parsing, no database: the message's bytes in, a list of :class:`Finding`
out (a DSN that names three failed recipients gives three). The order of the
checks matters, because the formats overlap (a DSN is also ``Auto-Submitted``):

1. an ARF feedback report (RFC 5965) → ``complaint``;
2. an RFC 3464 delivery status notification, read with the standard library's
   parser: ``failed`` with 5.x.x → ``hard``; 5.7.x (policy), ``delayed`` and
   4.x.x → ``soft``; ``delivered``/``relayed``/``expanded`` → ``other``;
3. a non-standard bounce recognised by flufl.bounce (Exim, qmail, Postfix,
   Exchange... formats): its permanent failures → ``hard`` (5.7.x → ``soft``),
   its temporary ones → ``soft``;
4. an auto-reply (out of office, ``Auto-Submitted``) or challenge-response →
   ``other``, left alone;
5. a message to the List-Unsubscribe ``mailto:`` address → ``unsubscribe``;
6. anything else → ``other`` ("unrecognised").

Each finding also carries what can name the delivery it is about: the VERP
token of the address the report was sent to, the quoted original's
Message-ID, the failed recipient's address, or a signed unsubscribe token.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

from digest.bounces.limits import (
    MAX_MESSAGE_BYTES,
    RefusedMessage,
    check_depth,
    check_size,
    scan_depth,
    tree_depth,
)
from digest.mail.verp import verp_token_of

KINDS = ("hard", "soft", "complaint", "unsubscribe", "other")

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNSUB_TOKEN = re.compile(r"(?<![0-9A-Za-z_.-])([1-9][0-9]{0,17}\.[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")
_ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto:|away from|"
    r"abwesenheitsnotiz|absence|vacation|on leave)",
    re.IGNORECASE,
)
_CHALLENGE_SUBJECT = re.compile(
    r"(please confirm (that )?you|verify (that )?you are|confirm your (message|email)|"
    r"challenge|anti-?spam verification|whitelist)",
    re.IGNORECASE,
)
_MAX_BODY = 200_000  # characters of a text part searched for an unsubscribe token


@dataclass
class Finding:
    """One outcome of a report: its kind and whatever may name the delivery it concerns."""

    kind: str
    reason: str
    status_code: str | None = None
    recipient: str | None = None  # the address the report names (failed recipient, complainer)
    verp_token: str | None = None  # the text after '+' of the address the report was sent to
    original_message_id: str | None = None  # Message-ID of the quoted original
    unsubscribe_token: str | None = None  # a signed unsubscribe token found in a mailed request
    sender: str | None = None  # the From address (a mailed unsubscribe without a token)
    named: tuple[str, ...] = ()  # every other address the report names (all of a complaint's)


def parse_message(data: bytes) -> email.message.Message:
    """The message as the standard library's compat32 tree (what flufl.bounce reads).

    Raises :class:`~digest.bounces.limits.RefusedMessage` for a message over the size or
    nesting limits of :mod:`digest.bounces.limits`: measured before it is parsed, and the
    parsed tree again, so nothing that walks the tree later recurses deeper than the limit.
    """
    check_size(data)
    check_depth(scan_depth(data))
    try:
        msg = email.message_from_bytes(data)
        check_depth(tree_depth(msg))
    except RecursionError:
        raise RefusedMessage("nested too deep to parse") from None
    return msg


def refusal(data: bytes) -> str | None:
    """Why :func:`parse_message` refuses ``data`` (one line), or None."""
    try:
        parse_message(data)
    except RefusedMessage as exc:
        return exc.reason
    return None


def headers_of(data: bytes) -> email.message.Message:
    """Only the top-level headers of ``data`` (never recurses): for :func:`message_key` of a refused one."""
    return email.parser.BytesHeaderParser().parsebytes(data[:MAX_MESSAGE_BYTES])


def message_key(msg: email.message.Message, data: bytes) -> str:
    """What a processed message is remembered by: its Message-ID, else a hash of its bytes."""
    mid = _clean_id(msg.get("Message-ID"))
    if mid:
        return mid

    return "sha256:" + hashlib.sha256(data).hexdigest()


def classify_message(
    msg: email.message.Message,
    *,
    bounce_local: str | None = None,
    unsubscribe_address: str | None = None,
) -> list[Finding]:
    """Classify one message from the bounce mailbox; never raises on odd input.

    ``bounce_local`` is the local part of ``delivery.bounce_address`` (VERP tokens are
    looked for only on it when set); ``unsubscribe_address`` the List-Unsubscribe
    ``mailto:`` address, if any.
    """
    token = _verp_token(msg, bounce_local)
    if _is_report(msg, "feedback-report"):
        return [_complaint(msg, token, bounce_local)]
    if _is_report(msg, "delivery-status"):
        findings = _dsn_findings(msg, token)
        if findings:
            return findings
    findings = _flufl_findings(msg, token)
    if findings:
        return findings
    auto = _auto_reply(msg)
    if auto:
        return [Finding("other", auto, verp_token=token)]
    if unsubscribe_address and _addressed_to(msg, unsubscribe_address):
        return [_unsubscribe(msg)]
    return [Finding("other", "unrecognised", verp_token=token)]


# --- the parts ------------------------------------------------------------------------------


def _is_report(msg: email.message.Message, report_type: str) -> bool:
    if msg.get_content_type() != "multipart/report":
        return False
    return str(msg.get_param("report-type", "")).lower() == report_type


def _complaint(msg: email.message.Message, token: str | None, bounce_local: str | None) -> Finding:
    named: list[str] = []
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            for block in _report_fields(part):
                for name in ("Original-Rcpt-To", "Removal-Recipient"):
                    named.extend(_addresses(block.get_all(name, [])))
    original = _original(msg)
    original_id = None
    if original is not None:
        original_id = _clean_id(original.get("Message-ID"))
        token = token or _verp_in(original.get_all("Return-Path", []), bounce_local)
        named.extend(_addresses(original.get_all("To", [])))
    return Finding(
        "complaint",
        "spam complaint (feedback report)",
        recipient=named[0] if named else None,
        verp_token=token,
        original_message_id=original_id,
        named=tuple(dict.fromkeys(named)),
    )


def _dsn_findings(msg: email.message.Message, token: str | None) -> list[Finding]:
    original = _original(msg)
    original_id = _clean_id(original.get("Message-ID")) if original is not None else None
    findings = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _report_fields(part):
            action = str(block.get("Action", "")).strip().lower()
            recipient = _address(block.get("Original-Recipient")) or _address(block.get("Final-Recipient"))
            if not action and not recipient:
                continue  # the per-message block
            status = _status(str(block.get("Status", ""))) or _status(str(block.get("Diagnostic-Code", "")))
            kind, reason = _dsn_kind(action, status)
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())[:200]
            if diagnostic:
                reason = f"{reason}: {diagnostic}"
            findings.append(
                Finding(
                    kind,
                    reason,
                    status_code=status,
                    recipient=recipient,
                    verp_token=token,
                    original_message_id=original_id,
                )
            )
    return findings


def _dsn_kind(action: str, status: str | None) -> tuple[str, str]:
    if action.startswith(("delivered", "relayed", "expanded")):
        return "other", f"delivery notice ({action})"
    if action.startswith("delayed"):
        return "soft", "delayed"
    if status and status.startswith("4."):
        return "soft", "temporary failure"
    if status and status.startswith("5.7."):
        return "soft", "refused by policy"
    if action.startswith(("fail", "error")) and status and status.startswith("5."):
        return "hard", "failed"
    if action.startswith(("fail", "error")):
        return "soft", "failed without a permanent status"
    return "other", f"delivery status with action {action or 'missing'!r}"


def _flufl_findings(msg: email.message.Message, token: str | None) -> list[Finding]:
    from flufl.bounce import all_failures  # lazy: start-up

    # flufl.bounce logs each detector that chokes on odd input with its traceback; spam in a
    # bounce mailbox is normal, so that must not reach a cron log as a traceback.
    flufl_log = logging.getLogger("flufl.bounce")
    flufl_log.propagate = False
    if not flufl_log.handlers:
        flufl_log.addHandler(logging.NullHandler())
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a heuristic detector choking on odd input is not a bounce
        return []
    if not temporary and not permanent:
        return []
    status = _status(_text_of(msg, limit=20_000))
    original = _original(msg)
    original_id = _clean_id(original.get("Message-ID")) if original is not None else None
    findings = []
    for raw in sorted(permanent):
        address = raw.decode("ascii", "replace")
        if status and status.startswith("5.7."):
            kind, reason = "soft", "refused by policy (non-standard bounce)"
        else:
            kind, reason = "hard", "failed (non-standard bounce)"
        findings.append(Finding(kind, reason, status, address, token, original_id))
    for raw in sorted(temporary - permanent):
        address = raw.decode("ascii", "replace")
        findings.append(Finding("soft", "delayed (non-standard bounce)", status, address, token, original_id))
    return findings


def _auto_reply(msg: email.message.Message) -> str | None:
    subject = str(msg.get("Subject", ""))
    if _CHALLENGE_SUBJECT.search(subject) or msg.get("X-Challenge") or msg.get("X-TMDA-Confirm"):
        return "challenge-response"
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return "auto-reply"
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponder"):
        return "auto-reply"
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return "auto-reply"
    if _AUTO_SUBJECT.search(subject):
        return "auto-reply"
    return None


def _unsubscribe(msg: email.message.Message) -> Finding:
    subject = str(msg.get("Subject", ""))
    match = _UNSUB_TOKEN.search(subject) or _UNSUB_TOKEN.search(_text_of(msg, limit=_MAX_BODY))
    return Finding(
        "unsubscribe",
        "mailed unsubscribe",
        unsubscribe_token=match.group(1) if match else None,
        sender=_address(msg.get("From")),
    )


# --- helpers --------------------------------------------------------------------------------


def _report_fields(part: email.message.Message) -> list[email.message.Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, email.message.Message)]
    if isinstance(payload, str):  # some parsers leave the blocks as text
        blocks = re.split(r"\r?\n\s*\r?\n", payload.strip())
        parser = email.parser.HeaderParser()
        return [parser.parsestr(b) for b in blocks if b.strip()]
    return []


def _original(msg: email.message.Message) -> email.message.Message | None:
    """The quoted original (message/rfc822 or text/rfc822-headers), if the report has one."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
                return payload[0]
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            text = part.get_payload(decode=True) or b""
            return email.parser.BytesHeaderParser().parsebytes(text)
    return None


def _verp_token(msg: email.message.Message, bounce_local: str | None) -> str | None:
    for name in _ENVELOPE_HEADERS:
        token = _verp_in(msg.get_all(name, []), bounce_local)
        if token:
            return token
    return None


def _verp_in(values: list, bounce_local: str | None) -> str | None:
    for _name, address in getaddresses([str(v) for v in values]):
        token = verp_token_of(address)
        if token is None:
            continue
        local = address.split("+", 1)[0].lower()
        if bounce_local is not None and local != bounce_local.lower():
            continue
        if bounce_local is None and "-" not in token:
            continue  # someone's plus address, not a VERP token of ours
        return token
    return None


def _addressed_to(msg: email.message.Message, address: str) -> bool:
    wanted = address.lower()
    for name in (*_ENVELOPE_HEADERS, "cc"):
        for _n, found in getaddresses([str(v) for v in msg.get_all(name, [])]):
            if found.lower() == wanted:
                return True
    return False


def _address(value: object) -> str | None:
    """The bare address of a header or report field (``rfc822; a@b`` or ``Name <a@b>``)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if ";" in text:
        text = text.split(";", 1)[1]
    address = parseaddr(text.strip())[1].strip()
    return address.lower() if "@" in address else None


def _addresses(values: list) -> list[str]:
    """The bare addresses of header or report field values (each may list several)."""
    found = []
    for value in values:
        text = " ".join(str(value).split())
        if text.lower().startswith("rfc822;"):
            text = text.split(";", 1)[1]
        found.extend(a.lower() for _n, a in getaddresses([text]) if "@" in a)
    return found


def _status(text: str) -> str | None:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


def _clean_id(value: object) -> str | None:
    if value is None:
        return None
    text = "".join(str(value).split())
    return text[:500] or None


def _text_of(msg: email.message.Message, *, limit: int) -> str:
    """The text/plain parts of the message (not of a quoted original), up to ``limit`` characters."""
    out: list[str] = []
    size = 0
    stack = [msg]
    while stack and size < limit:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype.startswith("message/"):
                continue
            stack[:0] = [p for p in part.get_payload() if isinstance(p, email.message.Message)]
            continue
        if ctype != "text/plain":
            continue
        data = part.get_payload(decode=True) or b""
        try:
            text = data.decode(part.get_content_charset() or "utf-8", "replace")
        except LookupError:  # an unknown charset name
            text = data.decode("utf-8", "replace")
        out.append(text)
        size += len(text)
    return "\n".join(out)[:limit]
