"""The reply policy: what one SMTP reply to one row means for that row and for the run.

A pure function, :func:`decide`, from a reply (and how often the row was tried)
to an :class:`Outcome`. It tells *whose* fault a refusal is (see DESIGN.md,
"Failure is the normal case"):

- the reader's (a bad mailbox, 5.1.x; a full one, 5.2.2; an international address the
  relay cannot carry, 5.6.7 at RCPT): the row fails, and a bad mailbox bounces the address;
- the run's (the relay refuses the sender, the session or the message itself —
  too big, a command out of sequence): the run stops and every unsent row stays
  queued; no row is failed for it. A refusal whose text names our own sender (the
  envelope sender, a VERP return path of ours, or the From address) is the run's
  whatever its code: relays check the sender at RCPT and word it as they like;
- maybe either (a 5.7.x policy refusal, a bare 550): the row fails, but the
  reply is *repeatable*: the worker stops the run when the same reply comes
  back for :data:`REPEATS_TO_STOP` different recipients in a row (then it was
  about the message or the sender after all, and those rows are requeued).

A reply that says the send is too fast (:func:`throttling`: a 421, 451/454 4.7.x, or
words to that effect) is nobody's fault: ``throttled``, the row goes again later in the
run and the send slows down (:mod:`digest.delivery.throttle`).

An enhanced status code decides before the basic code: ``552 5.2.2`` is a full
mailbox, not a message over the size limit. :func:`reply_key` is what "the same
reply" means: the enhanced code when there is one (``550 5.7.1`` and ``554 5.7.1``
are one refusal), else the basic code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.mail.transports import Reply, make_reply

__all__ = [
    "REPEATS_TO_STOP",
    "Outcome",
    "closing_reply",
    "decide",
    "mailbox_problem",
    "names_recipient",
    "names_sender",
    "reply_key",
    "throttling",
]

REPEATS_TO_STOP = 3
"""The same repeatable refusal for this many different recipients in a row stops the run."""

_SENDER_CODES = ("5.1.7", "5.1.8")  # bad sender address / sender's domain: about us, not the reader
_MESSAGE_CODES = ("5.3.4", "5.2.3", "5.6.")  # too big, over a length limit, bad content/encoding
_SESSION_CODES = ("5.5.1", "5.5.2", "5.5.4", "5.7.8", "5.7.9")  # sequence, syntax, authentication
_NOT_ASCII = "5.6.7"  # RFC 6531: the relay cannot carry this international address (no SMTPUTF8)
_MAILBOX_FULL = "5.2.2"  # over quota: the reader's, soft (their mailbox may have room tomorrow)
_SEQUENCE = (500, 502, 503, 504, 530, 535)  # unknown/unimplemented command, bad sequence, auth needed


@dataclass(frozen=True)
class Outcome:
    """What to do with a row after a reply.

    ``status``: sent / retry (again in this run) / deferred (next run) / throttled (again
    in this run, slower, without using a try) / failed / stop.
    ``bounced``: the subscriber's mailbox is bad (marks them bounced).
    ``repeatable``: a failure that stops the run if it repeats for several recipients.
    ``why``: for ``stop``, what was refused (the message, the sender, the session).
    """

    status: str
    bounced: bool = False
    repeatable: bool = False
    why: str = ""


_THROTTLE_WORDS = re.compile(
    r"throttl|rate.?limit|too many (messages|connections|recipients)|too fast|slow down",
    re.IGNORECASE,
)


def throttling(reply: Reply) -> bool:
    """True when ``reply`` says the send is too fast: a 421, a 451/454 with an enhanced code
    4.7.x, or a 4xx whose text says so ("throttling", "rate limit", "too many messages"...).
    The reader is not at fault: the row goes again later, the send slows down."""
    if not reply.temporary or "greylist" in reply.text.casefold():
        return False  # greylisting is about one sender and reader, and takes minutes
    if reply.code == 421:
        return True
    if reply.code in (451, 454) and (reply.enhanced or "").startswith("4.7."):
        return True
    return bool(_THROTTLE_WORDS.search(reply.text))


_CLOSING = re.compile(r"\b421[ -](.*)$", re.DOTALL)


def closing_reply(text: str) -> Reply | None:
    """The 421 in the text of a lost connection (the SMTP transport raises one for a 421), as
    a :class:`Reply`; None when the connection was lost without one."""
    found = _CLOSING.search(text)
    if found is None:
        return None
    return make_reply(421, [found.group(1)], "message")


def mailbox_problem(enhanced: str | None) -> bool:
    """True for an enhanced code about the recipient's mailbox (5.1.x, not the sender's 5.1.7/8)."""
    return bool(enhanced) and enhanced.startswith("5.1.") and enhanced not in _SENDER_CODES


def reply_key(reply: Reply) -> str:
    """What makes two refusals "the same" for the repeat guard: the enhanced code when the
    reply has one (its meaning), else the basic code."""
    return reply.enhanced or str(reply.code)


_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")


def _split(address: str) -> tuple[str, str]:
    """(local part without any ``+tag``, domain), both case-folded."""
    local, _, domain = address.strip().strip("<>").casefold().rpartition("@")
    return local.partition("+")[0], domain.rstrip(".")


def names_sender(text: str, senders: tuple[str, ...], recipient: str = "") -> bool:
    """True when ``text`` names one of our ``senders`` (``+tag`` aside, so any VERP return path
    of ours counts) or says "sender address rejected". An address in the text that is also the
    recipient's does not count: then the reply may be about the reader."""
    if "sender address rejected" in text.casefold():
        return True
    ours = {_split(s) for s in senders if "@" in s}
    reader = _split(recipient) if "@" in recipient else None
    for found in _ADDRESS.findall(text):
        named = _split(found)
        if named in ours and named != reader:
            return True
    return False


def names_recipient(text: str, recipient: str) -> bool:
    """True when ``text`` names the reader's address: the reply is about that reader."""
    if "@" not in recipient:
        return False
    reader = _split(recipient)
    return any(_split(found) == reader for found in _ADDRESS.findall(text))


def decide(
    reply: Reply, *, tries: int, retries: int, senders: tuple[str, ...] = (), recipient: str = ""
) -> Outcome:
    """The outcome of ``reply`` for a row tried ``tries`` times this run (``retries`` allowed).

    ``senders``: our addresses (the envelope sender of this message, the From address): a
    refusal that names one of them is about the send. ``recipient``: the row's address.
    """
    if reply.ok:
        return Outcome("sent")
    if throttling(reply):
        return Outcome("throttled")
    if reply.temporary:
        return Outcome("retry" if tries <= retries else "deferred")
    enhanced = reply.enhanced or ""
    if reply.stage == "mail" or enhanced in _SENDER_CODES or names_sender(reply.text, senders, recipient):
        return Outcome("stop", why="the sender")
    # The enhanced code first: it says what the basic code only hints at.
    if enhanced == _NOT_ASCII and reply.stage == "rcpt":
        return Outcome("failed")  # this reader's international address: not theirs to bounce
    if mailbox_problem(enhanced) and reply.stage in ("rcpt", "data", "message"):
        return Outcome("failed", bounced=True)
    if enhanced == _MAILBOX_FULL:
        return Outcome("failed")
    if enhanced.startswith(_MESSAGE_CODES):
        return Outcome("stop", why="the message")
    if enhanced in _SESSION_CODES:
        return Outcome("stop", why="the session")
    # Then the basic code.
    if reply.code == 552 and reply.stage == "message":
        return Outcome("stop", why="the message")
    if reply.code in _SEQUENCE or (reply.code == 501 and reply.stage != "rcpt"):
        return Outcome("stop", why="the session")
    return Outcome("failed", repeatable=True)
