"""A relay that says "too fast" (421, 451 4.7.x, 454): the send slows down, retries those
readers later in the run and ends only when everyone is delivered — or, when the relay
never stops throttling, after ``delivery.throttle_patience`` with the rest queued, exit 1,
the issue not "sent". Against a real aiosmtpd relay, through the CLI."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup
from smtp_server import Handler, Received, SMTPServer

from digest.cli import cli
from digest.delivery.policy import Outcome, closing_reply, decide, throttling
from digest.delivery.throttle import Pace
from digest.mail.transports import Reply

READERS = 400
THROTTLE = "451 4.7.1 throttling: too many messages, slow down"


class ThrottlingRelay(Handler):
    """Answers :data:`THROTTLE` to ``share`` of the messages for ``seconds`` from ``after``
    seconds after the first message (``seconds`` None: for ever); records when each message
    arrived."""

    def __init__(self, share: float, seconds: float | None, after: float = 0.0) -> None:
        super().__init__(data_policy=self._policy)
        self.share = share
        self.seconds = seconds
        self.after = after
        self.random = random.Random(24)
        self.started: float | None = None
        self.accepted_at: list[float] = []
        self.throttled_at: list[float] = []
        self.on_message = self._arrived
        self.clock_lock = threading.Lock()

    def _policy(self, address: str, attempt: int) -> str | None:
        now = time.monotonic()
        with self.clock_lock:
            if self.started is None:
                self.started = now
            since = now - self.started - self.after
            throttling = since >= 0 and (self.seconds is None or since < self.seconds)
            if throttling and self.random.random() < self.share:
                self.throttled_at.append(now - self.started)
                return THROTTLE
        return None

    def _arrived(self, item: Received) -> None:
        assert self.started is not None
        self.accepted_at.append(time.monotonic() - self.started)

    def per_window(self, width: float = 0.5) -> list[int]:
        """Messages accepted in each ``width``-second window from the first message."""
        counts = Counter(int(t / width) for t in self.accepted_at)
        return [counts.get(i, 0) for i in range(max(counts) + 1)] if counts else []


class TooManyConnections:
    """A front door to ``port``: its first ``refuse`` connections are greeted with "421 4.7.0
    too many connections" and closed; later ones are passed through to the relay."""

    def __init__(self, port: int, refuse: int) -> None:
        self.port = port
        self.refuse = refuse
        self.turned_away = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"smtp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self.turned_away < self.refuse:
                self.turned_away += 1
                client.sendall(b"421 4.7.0 too many connections from your address, slow down\r\n")
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def __enter__(self) -> TooManyConnections:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "ws", subscribers=READERS)


def send(setup: Setup, url: str, *extra: str):
    return CliRunner().invoke(
        cli,
        ["--config", str(setup.config_file), "send", "1", "--transport", url, "--concurrency", "4", *extra],
    )


def test_throttled_send_slows_down_delivers_everyone_and_recovers(setup: Setup) -> None:
    relay = ThrottlingRelay(share=0.3, seconds=1.5, after=1.0)
    with SMTPServer(relay) as server:
        result = send(setup, server.url, "--rate", "100")
    assert result.exit_code == 0, result.output
    assert "issue sent" in result.output and "the relay throttled" in result.output
    # Every reader delivered exactly once; nobody failed, deferred or left queued.
    per_reader = relay.per_recipient()
    assert len(per_reader) == READERS and set(per_reader.values()) == {1}
    assert {r["status"] for r in setup.rows().values()} == {"sent"}
    assert len(relay.throttled_at) > 10
    windows = relay.per_window()
    print(f"\nthrottled {len(relay.throttled_at)} times; accepted per 0.5 s: {windows}")
    # The pace fell while the relay throttled and came back once it stopped.
    first = max(windows[:2])  # before the relay throttles: the configured 100/s
    low = min(windows[2:6])
    after = max(windows[7:-1])
    assert low <= first / 2, windows
    assert after >= 2 * low and after >= 0.6 * first, windows


def test_relay_that_never_stops_throttling_ends_after_patience_with_readers_queued(setup: Setup) -> None:
    text = setup.config_file.read_text(encoding="utf-8")
    setup.config_file.write_text(text.replace("[delivery]", "[delivery]\nthrottle_patience = 3"), "utf-8")
    relay = ThrottlingRelay(share=1.0, seconds=None)
    started = time.monotonic()
    with SMTPServer(relay) as server:
        result = send(setup, server.url)
    took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert "kept throttling the send" in result.output and "Traceback" not in result.output
    assert relay.received == []
    statuses = Counter(r["status"] for r in setup.rows().values())
    assert statuses == {"queued": READERS}, statuses
    issue = setup.db.execute("SELECT status FROM issues WHERE id = ?", [setup.issue["id"]]).fetchone()[0]
    assert issue != "sent"
    assert took < 20


def test_relay_turning_connections_away_with_421_slows_down_and_delivers_everyone(
    tmp_path: Path, fake_clock
) -> None:
    small = make_setup(tmp_path / "small", subscribers=12)
    with SMTPServer() as server, TooManyConnections(server.port, refuse=20) as door:
        result = send(small, door.url)
    assert result.exit_code == 0, result.output
    # Far more than delivery.retries (3) attempts per connection, none counted as a failure.
    assert door.turned_away == 20
    assert server.handler.per_recipient() == {s["email"]: 1 for s in small.subscribers}
    assert {r["status"] for r in small.rows().values()} == {"sent"}


def test_throttle_replies_are_told_from_other_temporary_ones() -> None:
    def outcome(code: int, text: str) -> Outcome:
        reply = Reply(code, text, text.split()[0] if text[:1].isdigit() else None)
        return decide(reply, tries=1, retries=3)

    assert outcome(451, "4.7.1 throttling").status == "throttled"
    assert outcome(454, "4.7.0 Temporary authentication failure").status == "throttled"
    assert outcome(450, "4.2.1 The user you are trying to contact is receiving mail too fast").status == (
        "throttled"
    )
    assert outcome(451, "4.7.1 Greylisted, try again in 5 minutes").status == "retry"
    assert outcome(451, "4.3.0 try again later").status == "retry"
    assert throttling(Reply(421, "4.7.0 Too many connections"))
    lost = closing_reply("127.0.0.1:25 is closing the connection: 421 4.7.0 slow down")
    assert lost is not None and lost.code == 421 and lost.enhanced == "4.7.0"
    assert closing_reply("connection reset by peer") is None


def test_pace_halves_on_throttle_and_grows_back_on_clean_replies(fake_clock) -> None:
    pace = Pace(40.0, 4, fake_clock)
    pace.throttled()
    assert pace.rate == 20.0 and pace.allowed == 2
    pace.throttled()  # a reply to a message already in flight: the same cut
    assert pace.rate == 20.0
    fake_clock.time += 2
    pace.throttled()
    assert pace.rate == 10.0 and pace.allowed == 1
    assert pace.throttled_for() == 2
    for _ in range(10 * 6):
        pace.clean_reply()
    assert pace.rate == 40.0 and pace.allowed == 4
    assert pace.throttled_for() == 0  # recovered: the patience starts again with the next episode
