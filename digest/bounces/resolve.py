"""Who one report is about: :class:`Resolver`.

Each message we send goes to one reader, so a genuine report concerns one reader.
A report acts on a reader only through a proof that we sent that reader the message
it is about, checked against the workspace secret:

1. the VERP token of the address it was sent to (``bounces+TOKEN@…``); an altered
   token is refused and nothing else is tried;
2. the quoted original's Message-ID: an issue's carries our MAC over issue ×
   subscriber × its random part (:mod:`digest.mail.message_ids`) and must also be
   the one the ledger recorded for that row; a transactional message's is random and
   looked up in the ``outbox``.

A failed recipient's address alone proves nothing (anyone can write a report naming
any address): it acts on nobody. Addresses still count towards the readers a report
names: a report that names several of our readers (several failed recipients on the
list, a complaint about several, a proof for one and the address of another) acts on
none and is held for review (:attr:`Resolution.held`).

A mailed unsubscribe acts at once only with our signed unsubscribe token
(:meth:`Resolver.unsubscribe_token`); see :mod:`digest.bounces.process` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from digest.bounces.classify import Finding
from digest.delivery.ledger import delivery_target
from digest.mail.message_ids import MessageIds
from digest.mail.outbox import outbox_subscriber
from digest.mail.verp import VerpSigner
from subscribers.store import find_subscriber, reader_scope
from subscribers.tokens import InvalidToken, verify_token

SEVERITY = ("complaint", "hard", "soft", "other")  # the finding a report acts by: the first kind present
MAX_ADDRESSES = 10_000  # distinct addresses of one report looked up on the list


@dataclass
class Target:
    """The delivery row and subscriber a report acts on (none known: all None)."""

    subscriber_id: int | None = None
    delivery_id: int | None = None
    issue_id: int | None = None
    problem: str | None = None  # why the report is ignored (an altered token, no proof)


@dataclass
class Resolution:
    """What one report (a message's findings) does: act by ``finding`` on ``target``, or be held."""

    finding: Finding
    target: Target
    readers: int = 0  # how many of our readers the report names
    held: str | None = None  # why it acts on nobody and waits for review


class Resolver:
    """Maps reports to readers with the keys prepared once per pass."""

    def __init__(self, db: sqlite_utils.Database, secret: bytes) -> None:
        self.db = db
        self.secret = secret
        self.verp = VerpSigner(secret)
        self.ids = MessageIds(secret, "")  # only verifies: the domain is not needed

    def report(self, findings: list[Finding]) -> Resolution:
        """The resolution of one report's findings (bounces, complaints; not mailed unsubscribes)."""
        finding = min(findings, key=lambda f: SEVERITY.index(f.kind) if f.kind in SEVERITY else len(SEVERITY))
        target = self._proof(findings[0])  # token and quoted original are the message's, not a block's
        if target.problem:
            return Resolution(finding, target)
        readers = self._named(findings)
        if target.subscriber_id is not None:
            readers.add(target.subscriber_id)
        if len(readers) > 1:
            held = f"names several readers ({len(readers)}); a genuine report concerns one"
            return Resolution(finding, Target(), readers=len(readers), held=held)
        if target.subscriber_id is None and readers:
            no_proof = "unverified: names a reader without our VERP token or Message-ID"
            return Resolution(finding, Target(problem=no_proof), readers=1)
        return Resolution(finding, target, readers=len(readers))

    def unsubscribe_token(self, finding: Finding) -> int | None:
        """The subscriber named by the mailed request's valid unsubscribe token, if it has one."""

        if not finding.unsubscribe_token:
            return None
        try:
            subscriber_id = verify_token(self.secret, finding.unsubscribe_token, "unsubscribe")
        except InvalidToken:
            return None
        return subscriber_id if reader_scope(self.db, subscriber_id) is not None else None

    def _proof(self, finding: Finding) -> Target:
        db = self.db
        if finding.verp_token:
            delivery_id = self.verp.verify(finding.verp_token)
            if delivery_id is None:
                return Target(problem="altered VERP token")
            row = delivery_target(db, delivery_id)
            if row is None:
                return Target(problem="VERP token names no delivery")
            return Target(row[1], row[0], row[2])
        original = finding.original_message_id
        if not original:
            return Target()
        ours = self.ids.verify(original)
        if ours is not None:
            row = delivery_target(db, sent_as=(ours[0], ours[1], original))
            return Target(row[1], row[0], row[2]) if row is not None else Target()
        subscriber_id = outbox_subscriber(db, original)
        return Target(subscriber_id) if subscriber_id is not None else Target()

    def _named(self, findings: list[Finding]) -> set[int]:
        """The subscribers whose addresses the report names (failed recipients, complainers)."""

        addresses: dict[str, None] = {}
        for finding in findings:
            for address in (finding.recipient, *finding.named):
                if address:
                    addresses[address.lower()] = None
        found: set[int] = set()
        for address in list(addresses)[:MAX_ADDRESSES]:
            subscriber = find_subscriber(self.db, address)
            if subscriber is not None:
                found.add(int(subscriber["id"]))
        return found
