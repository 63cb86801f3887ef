"""The reply policy: what one SMTP reply to one row means for that row and for the run.

A pure function, :func:`decide`, from a reply (and how often the row was tried)
to an :class:`Outcome`. It tells *whose* fault a refusal is (see DESIGN.md,
"Failure is the normal case"):

- the reader's (a bad mailbox, 5.1.x): the row fails and the address bounces;
- the run's (the relay refuses the sender, the session or the message itself —
  too big, a command out of sequence): the run stops and every unsent row stays
  queued; no row is failed for it;
- maybe either (a 5.7.x policy refusal, a bare 550): the row fails, but the
  reply is *repeatable*: the worker stops the run when the same reply comes
  back for :data:`REPEATS_TO_STOP` different recipients in a row (then it was
  about the message or the sender after all, and those rows are requeued).
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.transports import Reply

__all__ = ["REPEATS_TO_STOP", "Outcome", "decide", "mailbox_problem"]

REPEATS_TO_STOP = 3
"""The same repeatable refusal for this many different recipients in a row stops the run."""

_SENDER_CODES = ("5.1.7", "5.1.8")  # bad sender address / sender's domain: about us, not the reader
_MESSAGE_CODES = ("5.3.4", "5.2.3", "5.6.")  # too big, over a length limit, bad content/encoding
_SESSION_CODES = ("5.5.1", "5.5.2", "5.5.4", "5.7.8", "5.7.9")  # sequence, syntax, authentication
_SEQUENCE = (500, 502, 503, 504, 530, 535)  # unknown/unimplemented command, bad sequence, auth needed


@dataclass(frozen=True)
class Outcome:
    """What to do with a row after a reply.

    ``status``: sent / retry (again in this run) / deferred (next run) / failed / stop.
    ``bounced``: the subscriber's mailbox is bad (marks them bounced).
    ``repeatable``: a failure that stops the run if it repeats for several recipients.
    ``why``: for ``stop``, what was refused (the message, the sender, the session).
    """

    status: str
    bounced: bool = False
    repeatable: bool = False
    why: str = ""


def mailbox_problem(enhanced: str | None) -> bool:
    """True for an enhanced code about the recipient's mailbox (5.1.x, not the sender's 5.1.7/8)."""
    return bool(enhanced) and enhanced.startswith("5.1.") and enhanced not in _SENDER_CODES


def decide(reply: Reply, *, tries: int, retries: int) -> Outcome:
    """The outcome of ``reply`` for a row tried ``tries`` times this run (``retries`` allowed)."""
    if reply.ok:
        return Outcome("sent")
    if reply.temporary:
        return Outcome("retry" if tries <= retries else "deferred")
    enhanced = reply.enhanced or ""
    if reply.stage == "mail" or enhanced in _SENDER_CODES:
        return Outcome("stop", why="the sender")
    if mailbox_problem(enhanced) and reply.stage in ("rcpt", "data", "message"):
        return Outcome("failed", bounced=True)
    if enhanced.startswith(_MESSAGE_CODES) or (reply.code == 552 and reply.stage == "message"):
        return Outcome("stop", why="the message")
    if reply.code in _SEQUENCE or enhanced in _SESSION_CODES or (reply.code == 501 and reply.stage != "rcpt"):
        return Outcome("stop", why="the session")
    return Outcome("failed", repeatable=True)
