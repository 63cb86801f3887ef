"""One connection's loop: claim rows, send each, record the outcome — until done or told to stop.

:class:`Worker` owns one :class:`Connection` (the transport: one SMTP connection, opened
with backoff, reopened after a loss, its EHLO SIZE respected) and one ledger connection.
It asks :func:`digest.delivery.policy.decide` what each reply means (holding back, in a
:class:`~digest.delivery.refusals.RefusalWindow`, refusals that may be the send's rather
than the reader's), sends at the process's :class:`~digest.delivery.throttle.Pace`
(slowed by the relay's throttle replies, whose rows wait in the retry heap), journals
every 250 before the next message (:mod:`digest.delivery.journal`), and commits results
in batches. Its :class:`Messages` makes each row's message; in a signed send the
process's signing pool makes the claimed rows' messages while the connection waits for
the relay. A row whose reader left after the freeze is skipped and the worker claims
again: only an empty claim ends it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.delivery.guard import SendGuard, guard_pauses
from digest.delivery.journal import Journal, journal_path
from digest.delivery.ledger import Ledger
from digest.delivery.messages import Links, Messages, recipient_links
from digest.delivery.policy import closing_reply, decide, throttling
from digest.delivery.refusals import RefusalWindow
from digest.delivery.rows import Counters, Result, Row
from digest.delivery.throttle import Pace, throttle_pause
from digest.errors import DigestError
from digest.mail.message import PreparedMessage
from digest.mail.transports import ConnectionLost, Reply, SMTPTransport, TransportError, open_transport
from digest.mail.transports import transport_for_display as display
from digest.mail.verp import ReturnPath
from digest.store.database import iso, open_store, utcnow

__all__ = [
    "Connection",
    "Counters",
    "Links",
    "Messages",
    "Run",
    "Stopped",
    "Worker",
    "recipient_links",
]

RETRY_BACKOFF_SECONDS = 2.0
"""First wait before retrying a 4xx or a lost connection; doubles each time."""
CLAIM_BATCH = 32
"""Most rows a connection claims at once (marked ``sending`` before anything is sent)."""
CLAIM_SECONDS = 0.25
"""A claim covers about this much sending time: subscriber status is checked when a row is
claimed, so an unsubscribe takes effect for every row claimed later (within this window)."""
FLUSH_SECONDS = 0.5
"""Results are committed at least this often (and with every claim); the journal covers the gap."""
FLUSH_EVERY = 64
"""...and at least every this many results per connection."""
LINGER_SECONDS = 0.5
"""PostgreSQL: how often a connection with nothing left to claim looks whether the rows other
sends hold in flight are done, or theirs to take over (their lease ended)."""
LOST_IN_A_ROW = 5
"""Lost connections / unanswered messages in a row (at least this many, or 3 per connection)
with no reply in between before the run stops: a server that takes the data and never
answers would otherwise cost rows x tries x timeout, each try possibly a duplicate."""


class Clock:
    """The time the back-off waits on: :meth:`now` and :meth:`wait`. Tests put a fake one in
    :data:`CLOCK` that records each wait and moves virtual time on, so the real back-off runs
    (its delays, its tries, giving up) without the real seconds."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait ``seconds`` or until ``stop`` is set; True when it is."""
        return stop.wait(seconds)


CLOCK = Clock()
"""The clock a :class:`Run` takes unless it is given one."""


@dataclass
class Run:
    """What every connection worker of one send shares (copied into worker processes by fork)."""

    db_path: Path  # the SQLite file; on PostgreSQL this host's journal base (journal_base)
    config: Config
    issue_id: int
    url: str
    now_iso: str
    prepared: dict[str, PreparedMessage]
    secret: bytes
    return_path: ReturnPath
    retries: int
    max_per_connection: int
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[str] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    limiter: Pace | None = None  # this process's pace (rate, connections), set by the engine
    live: set[Any] = field(default_factory=set)  # open transports, to cut short on a fatal error
    lost_limit: int = LOST_IN_A_ROW
    lost_in_a_row: int = 0  # sends that ended in ConnectionLost since the last reply (this process)
    signal: int = 0  # the signal (SIGINT/SIGTERM) that stopped the run, if any
    refused: list[str] = field(default_factory=list)  # repeated refusals (reply_key) that stopped it
    proven: bool = False  # the relay has accepted a message in this run (this process)
    unproven: dict[str, int] = field(default_factory=dict)  # bad-mailbox refusals held before that
    running: int = 0  # connection workers started and not yet done (this process; counted at start)
    parked: int = 0  # ...of which waiting at their end for the run to prove the relay
    ahead: Any = None  # the thread pool that makes claimed rows' messages ahead (see Messages)
    clock: Clock = field(default_factory=lambda: CLOCK)  # what the back-off waits on
    guard: SendGuard | None = None  # pauses the send when complaints or hard bounces pass the line
    store: str | Path = ""  # what each worker opens: a PostgreSQL URL, or (unset) db_path
    send: str = ""  # this send's lease tag (digest.delivery.lease.send_tag): PostgreSQL only
    failing: bool = False  # a connection is stopping the run with an error (its fatal not yet added)

    def __post_init__(self) -> None:
        self.store = self.store or self.db_path

    def abort(self) -> None:
        """A connection's loop ended with an error: stop the run, and say it failed before the
        error reaches ``fatal`` (the other connections wind down as for a fatal error)."""
        self.failing = True
        self.stop.set()


class Stopped(Exception):
    """Told to stop while waiting to reconnect."""


class Connection:
    """A worker's one transport: opened when first needed (retrying with backoff), reopened
    after ``max_per_connection`` messages or a lost connection, closed at the end. It also
    refuses a message over the relay's EHLO SIZE and stops the run when sends keep losing
    the connection."""

    def __init__(self, run: Run, ledger: Ledger) -> None:
        self.run, self.ledger = run, ledger  # the ledger renews its worker's leases while it waits
        self.transport: Any = None
        self.failures = 0  # connection attempts that failed since the last answered send
        self.throttles = 0  # connection attempts the relay turned away as too many, since then

    def ready(self) -> Any:
        """The open transport: connected now if there is none or it has carried its share."""
        if (
            self.transport is None
            or getattr(self.transport, "sent_on_connection", 0) >= self.run.max_per_connection
        ):
            self.close()
            self.connect()
        return self.transport

    def can_announce(self) -> bool:
        """True when the next row's envelope may ride along (SMTP, and the connection stays open)."""
        return (
            isinstance(self.transport, SMTPTransport)
            and self.transport.sent_on_connection + 1 < self.run.max_per_connection
        )

    def connect(self) -> None:
        """Open the transport, retrying with backoff; TransportError after too many failures."""
        while True:
            if self.run.stop.is_set():
                raise Stopped
            try:
                self.transport = open_transport(self.run.url, self.run.config)
                self.run.live.add(self.transport)
                if self.run.stop.is_set():  # checked after registering: cut_connections sees us
                    raise Stopped
                connect = getattr(self.transport, "connect", None)
                if connect is not None:
                    connect()
                return
            except ConnectionLost as exc:
                self.transport = None
                closing = closing_reply(str(exc))
                if closing is not None and throttling(closing):  # "421 too many connections"
                    self.throttles += 1
                    self.wait(throttle_pause(self.run, closing, self.throttles))
                    continue
                self.failures += 1
                if self.failures > self.run.retries:
                    raise TransportError(
                        f"cannot deliver through {display(self.run.url)}: {exc} ({self.failures} attempts)"
                    ) from None
                self.wait(RETRY_BACKOFF_SECONDS * 2 ** (self.failures - 1))

    def wait(self, seconds: float) -> None:
        """Wait ``seconds`` to connect again (or until the run stops), renewing the worker's
        leases meanwhile: a back-off may be longer than a lease (PostgreSQL)."""
        clock, end = self.run.clock, self.run.clock.now() + seconds
        while (left := end - clock.now()) > 0 and not clock.wait(self.run.stop, self.ledger.pause(left)):
            self.ledger.keep_lease()

    def close(self) -> None:
        """Close the connection (QUIT, best effort)."""
        if self.transport is not None:
            self.run.live.discard(self.transport)
            with contextlib.suppress(Exception):
                self.transport.close()
            self.transport = None

    def check_size(self, size: int) -> None:
        """Refuse a message bigger than the transport takes (an SMTP relay's EHLO SIZE) before
        any byte of it leaves."""
        limit = self.transport.message_limit()
        if limit is not None and limit < size:
            raise TransportError(
                f"issue {self.run.issue_id} is {size} bytes but {display(self.run.url)} accepts at most"
                f" {limit} bytes; trim the issue or raise the relay's message size limit"
            )

    def answered(self) -> None:
        """A send got a reply: the counts of failures in a row start again."""
        self.failures = 0
        self.throttles = 0
        self.run.lost_in_a_row = 0

    def lost(self, exc: ConnectionLost) -> None:
        """A send lost the connection (or got no answer): close it; TransportError when that has
        happened ``run.lost_limit`` times in a row in this process."""
        self.close()
        with self.run.counters.lock:
            self.run.lost_in_a_row += 1
            lost = self.run.lost_in_a_row
        if lost >= self.run.lost_limit:
            # Reconnecting works but nothing gets an answer (e.g. the server takes the data and
            # never replies): stop rather than time out on every row, maybe twice each.
            raise TransportError(
                f"{lost} sends in a row through {display(self.run.url)} lost the connection or got no answer"
                f" (last: {exc})"
            ) from None


class Worker:
    """One connection's loop: claim rows, send, record — until nothing is left or told to stop."""

    def __init__(self, run: Run, number: int) -> None:
        self.run = run
        self.ledger, self.journal = _records(run, number)
        self.connection = Connection(run, self.ledger)
        self.batch: deque[Row] = deque()
        self.retry: list[tuple[float, int, Row]] = []
        self.results: list[Result] = []
        # Failures held back until it is clear whose (the ledger keeps their leases meanwhile).
        self.refusals = RefusalWindow(run, self.record, keep=self.ledger.keep_lease)
        self.aborted = False  # this worker's loop ended with an exception (the run stops)
        self.from_address = parseaddr(run.config.publication.from_address)[1]
        self.last_flush = time.monotonic()
        self.seq = itertools.count()
        self.per_message: float | None = None  # moving average of seconds per message
        self.announced: int | None = None  # row whose envelope went out with the last message
        self.announced_sender = ""  # that envelope's sender (VERP: an HMAC, made once per row)
        self.messages = Messages(run)

    def loop(self) -> None:
        """Send until no row is left (or the run stops); always record and release."""
        try:
            while True:
                row = self.next_row()
                if row is None:
                    break
                try:
                    self.send_one(row)
                except Stopped:
                    self.batch.appendleft(row)
                    break
                except BaseException:
                    self.batch.appendleft(row)  # not sent: released to queued below
                    raise
                if len(self.results) >= FLUSH_EVERY or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
                    self.flush()
        except BaseException:
            self.aborted = True
            # Said before winding down: a connection parked with refusals held releases them.
            self.run.abort()
            raise
        finally:
            _wind_down(self)

    def flush(self, claim: int = 0) -> tuple[list[Row], int]:
        """Commit the results, claim up to ``claim`` rows: (claimed, skipped: their readers left)."""
        if not self.results and not claim:
            return [], 0
        claimed, skipped = self.ledger.commit(self.results, claim)
        if skipped:
            self.run.counters.add("skipped", skipped)
        self.results = []
        self.last_flush = time.monotonic()
        return claimed, skipped

    def next_row(self) -> Row | None:
        """The next row to send: the announced one, a due retry, the batch, or a new claim."""
        while not self.run.stop.is_set():
            if self.announced is not None and self.batch and self.batch[0].id == self.announced:
                return self.batch.popleft()  # its envelope is already on the wire
            now = self.run.clock.now()
            if self.retry and self.retry[0][0] <= now:
                row = heapq.heappop(self.retry)[2]
                why = self.ledger.ineligible(row)
                if why is None:
                    return row
                # Unsubscribed (or changed what they get) during the backoff: not sent again.
                self.record(Result(row, "skipped", error=why))
                continue
            if self.batch:
                return self.batch.popleft()
            if guard_pauses(self):
                return None
            # One row first; then as many as take about CLAIM_SECONDS to send.
            size = 1 if not self.per_message else int(CLAIM_SECONDS / self.per_message)
            claimed, skipped = self.flush(claim=max(1, min(CLAIM_BATCH, size)))
            if claimed:
                self.batch.extend(claimed)
                self.messages.ahead(claimed)
                continue
            if skipped:
                continue  # every row of that claim had left the list: claim again
            if not self.retry:
                if _linger(self):
                    continue
                return None
            self.run.clock.wait(self.run.stop, self.ledger.pause(self.retry[0][0] - self.run.clock.now()))
        return None

    # -- sending

    def send_one(self, row: Row) -> None:
        """Send one row and act on the reply (timed, for the claim size)."""
        started = time.monotonic()
        try:
            self._send_one(row)
        finally:
            took = time.monotonic() - started
            self.per_message = took if self.per_message is None else 0.8 * self.per_message + 0.2 * took

    def _send_one(self, row: Row) -> None:
        try:
            message = self.messages.take(row)
        except DigestError as exc:
            # One recipient whose message cannot be built (an address that needs SMTPUTF8...)
            # fails alone; the rest of the send goes on.
            self.record(Result(row, "failed", error=str(exc)))
            return
        transport = self.connection.ready()
        self.connection.check_size(len(message))
        if self.run.limiter is None:
            self.run.limiter = Pace(0.0, 1, self.run.clock)
        self.run.limiter.acquire(self.run.stop)
        try:
            self._transact(row, message, transport)
        finally:
            self.run.limiter.release()

    def _transact(self, row: Row, message: bytes, transport: Any) -> None:
        row.tries += 1
        options: dict[str, Any] = {"dot_safe": True}
        announced = row.id == self.announced
        sender = self.announced_sender if announced else self.run.return_path.for_delivery(row.id)
        self.announced = None
        if self.batch and self.connection.can_announce() and not self.run.stop.is_set():
            # The next row's envelope rides along with this message's content (one round trip each).
            following = self.batch[0]
            self.announced = following.id
            self.announced_sender = self.run.return_path.for_delivery(following.id)
            options["next_envelope"] = (self.announced_sender, following.email)
        try:
            reply = transport.send(message, sender, row.email, **options)
        except ConnectionLost as exc:
            closing = closing_reply(str(exc))
            if closing is not None and throttling(closing):
                self.connection.close()  # the relay answered (421): not a lost connection
                self.connection.answered()
                self.throttled(row, closing)
                return
            # Dropped: it may or may not have arrived; it goes again, same Message-ID.
            self.connection.lost(exc)
            self.later(row, str(exc), immediate=row.tries == 1)
            return
        self.connection.answered()
        self.act_on(row, reply, sender)

    def act_on(self, row: Row, reply: Reply, sender: str) -> None:
        """Record what ``reply`` means for ``row``; stop the run when it is the run's fault."""
        senders = (sender, self.from_address)
        outcome = decide(
            reply,
            tries=row.tries - row.throttles,
            retries=self.run.retries,
            senders=senders,
            recipient=row.email,
        )
        if outcome.status == "throttled":
            self.throttled(row, reply)
            return
        if self.run.limiter is not None:
            self.run.limiter.clean_reply()
        if outcome.status == "stop":
            # Not this reader's fault: loop() puts the row back, and it stays queued.
            raise _refused(self.run, outcome.why, sender, reply)
        if outcome.status == "failed" and self.refusals.suspect(outcome, reply, row):
            self.refusals.hold(Result(row, "failed", reply=reply, bounced=outcome.bounced), reply)
            return
        self.refusals.settle()  # a different outcome: the refusals held back were the readers'
        if outcome.status == "sent":
            self.run.proven = True
            at = iso(utcnow())
            self.journal.sent(row.id, reply.code, reply.enhanced, at)  # on disk before the next message
            self.record(Result(row, "sent", reply=reply, at=at))
        elif outcome.status in ("retry", "deferred"):
            self.later(row, reply)
        else:
            self.record(Result(row, "failed", reply=reply, bounced=outcome.bounced))

    def record(self, result: Result) -> None:
        """Queue a result for the next commit and count it."""
        self.results.append(result)
        self.run.counters.add(result.status)

    def later(self, row: Row, why: Reply | str, *, immediate: bool = False) -> None:
        """Retry after a backoff, or leave the row deferred for the next run once out of tries."""
        if row.tries > self.run.retries:
            reply = why if isinstance(why, Reply) else None
            self.record(Result(row, "deferred", reply=reply, error=None if reply else str(why)))
            return
        delay = 0.0 if immediate else RETRY_BACKOFF_SECONDS * 2 ** (row.tries - 1)
        heapq.heappush(self.retry, (self.run.clock.now() + delay, next(self.seq), row))

    def throttled(self, row: Row, reply: Reply) -> None:
        """The relay said "too fast": slower pace, ``row`` again later (not using a try); TransportError
        once throttled for longer than ``delivery.throttle_patience`` (unsent rows stay queued)."""
        row.throttles += 1
        delay = throttle_pause(self.run, reply, row.throttles)
        heapq.heappush(self.retry, (self.run.clock.now() + delay, next(self.seq), row))


def _records(run: Run, number: int) -> tuple[Ledger, Journal]:
    """A worker's own ledger connection (its leases named after it) and journal."""
    tag = f"{os.getpid()}-{number}"
    db = open_store(run.store, migrate=False)
    ledger = Ledger(
        db, run.config, run.issue_id, run.now_iso, holder=f"{run.send}/{tag}", journals=run.db_path
    )
    return ledger, Journal(journal_path(run.db_path, run.issue_id, tag))


def _linger(worker: Worker) -> bool:
    """Nothing left to claim: True (after a pause) while other sends hold rows of the issue in
    flight (PostgreSQL), so that this one takes them over if their lease ends."""
    if not worker.ledger.others_sending():
        return False
    worker.connection.close()
    worker.run.stop.wait(LINGER_SECONDS)
    return True


def _wind_down(worker: Worker) -> None:
    """The end of a worker's loop, however it ended: close the connection, settle the refusals
    held back, commit the results, and release what was claimed but not sent (queued) and what
    waits for a retry (deferred, or queued when the run stopped)."""
    worker.messages.drop()
    worker.connection.close()
    if not worker.aborted:
        worker.refusals.park()
    if worker.aborted or worker.run.fatal or worker.run.stop.is_set():
        # The run stopped: a refusal held back may have been about the send; it goes again.
        worker.batch.extend(worker.refusals.release())
    worker.refusals.settle()
    with worker.run.counters.lock:
        worker.run.running -= 1
    worker.flush()
    worker.journal.discard()  # all its entries are committed now
    waiting = [row for _, _, row in worker.retry]
    if worker.run.fatal or worker.run.failing or worker.aborted:  # the run failed (here or elsewhere): queued
        worker.batch.extend(waiting)
        waiting = []
    worker.ledger.release(list(worker.batch), waiting)
    worker.run.counters.add("deferred", len(waiting))
    worker.batch.clear()
    worker.retry = []
    worker.ledger.db.conn.close()


def _refused(run: Run, why: str, sender: str, reply: Reply) -> TransportError:
    """The error that stops the run when the relay refused the send itself (not a reader)."""
    what = f"the sender <{sender}>" if why == "the sender" else why
    hint = "; check publication.from and the SMTP login (delivery.smtp_user)" if why == "the sender" else ""
    return TransportError(f"{display(run.url)} refused {what}: {reply.describe()}{hint}")
