"""`digest send` on a PostgreSQL store: one sender, two together, and three with one killed.

A real private PostgreSQL (``pg_url``), real SMTP sinks (tests/smtp_server.py) and real
``digest send`` processes. The workspace is made on SQLite, as every delivery test's is,
and moved to PostgreSQL with `digest db copy --to`, the way a publisher moves one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from delivery_fixtures import Setup, make_setup
from smtp_server import Handler, SMTPServer
from test_send_cli import wait_for

from digest.cli import cli
from digest.delivery import ledger
from digest.delivery.journal import journal_base
from digest.delivery.ledger import Ledger
from digest.store.database import iso, open_store, transaction, utcnow


def on_postgresql(path: Path, pg_url: str, subscribers: int) -> Setup:
    """A delivery workspace whose store is the PostgreSQL database ``pg_url``."""
    setup = make_setup(path, subscribers=subscribers)
    setup.db.close()
    copied = invoke(setup, "db", "copy", "--to", pg_url)
    assert copied.exit_code == 0, copied.output
    text = setup.config_file.read_text(encoding="utf-8")
    assert "[storage]\n" in text
    text = re.sub(r"(?m)^url = .*\n", "", text)  # the PostgreSQL pass: the factory's own database
    setup.config_file.write_text(
        text.replace("[storage]\n", f'[storage]\nurl = "{pg_url}"\n'), encoding="utf-8"
    )
    (path / "digest.db").unlink(missing_ok=True)  # nothing may quietly go on using the file
    setup.db = open_store(pg_url)
    return setup


def invoke(setup: Setup, *args: str):
    return CliRunner().invoke(cli, ["--config", str(setup.config_file), *args])


def start_send(setup: Setup, url: str, *extra: str, lease: float = 60.0) -> subprocess.Popen:
    env = {**os.environ, "DIGEST_DELIVERY_TIMEOUT": "10", "DIGEST_DELIVERY_LEASE_SECONDS": str(lease)}
    command = [sys.executable, "-m", "digest", "--config", str(setup.config_file), "send", "1"]
    return subprocess.Popen(
        [*command, "--transport", url, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a kill of its process group takes its worker processes too
    )


def listed(setup: Setup) -> dict[str, dict]:
    """`digest deliveries 1 --json`, by address."""
    result = invoke(setup, "deliveries", "1", "--json")
    assert result.exit_code == 0, result.output
    return {row["email"]: row for row in json.loads(result.output)}


def senders(setup: Setup) -> set[str]:
    """The sends (host/pid) that claimed the issue's rows."""
    rows = setup.db.execute("SELECT DISTINCT leased_by FROM deliveries WHERE issue_id = 1").fetchall()
    return {by.rsplit("/", 1)[0] for (by,) in rows if by}


def test_a_send_on_postgresql_delivers_every_reader_once_and_deliveries_agrees(
    tmp_path: Path, pg_url: str
) -> None:
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=12)
    with SMTPServer() as server:
        result = invoke(setup, "send", "1", "--transport", server.url, "--concurrency", "3")
    assert result.exit_code == 0, result.output
    assert "sent 12, failed 0" in result.output and "issue sent" in result.output
    everyone = Counter({s["email"]: 1 for s in setup.subscribers})
    assert server.handler.per_recipient() == everyone
    rows = listed(setup)
    assert {e: r["status"] for e, r in rows.items()} == dict.fromkeys(everyone, "sent")
    for received in server.handler.received:  # the Message-ID the ledger records went out
        assert rows[received.rcpt_tos[0]]["message_id"] == received.message["Message-ID"]
    # Journals and locks live in this host's folder beside the config; a clean send leaves none.
    assert not list((tmp_path / "ws").rglob("*.journal")) and not list((tmp_path / "ws").rglob("*.lock"))
    again = invoke(setup, "send", "1", "--transport", server.url)
    assert again.exit_code == 0 and "sent 0" in again.output


def frozen(setup: Setup) -> None:
    ledger.freeze(setup.db, setup.config, setup.issue, utcnow())


def worker_ledger(setup: Setup, pg_url: str, holder: str) -> Ledger:
    journals = setup.path / "send-journals" / "this-host" / "digest"
    db = open_store(pg_url, migrate=False)
    return Ledger(db, setup.config, 1, iso(utcnow()), holder=holder, journals=journals)


def test_a_claim_skips_the_rows_another_sender_is_claiming_without_waiting(
    tmp_path: Path, pg_url: str
) -> None:
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=8)
    frozen(setup)
    first, second = worker_ledger(setup, pg_url, "a/1/1-0"), worker_ledger(setup, pg_url, "b/2/2-0")
    taken: list[int] = []
    with transaction(first.db):  # the first claim's rows stay locked until this commits
        mine = [row.id for row in first.commit([], claim=3)[0]]
        other = threading.Thread(target=lambda: taken.extend(r.id for r in second.commit([], claim=3)[0]))
        other.start()
        other.join(timeout=10)
        assert not other.is_alive(), "the second claim waited for the first"
    assert len(mine) == len(taken) == 3 and not set(mine) & set(taken)
    leased = dict(
        setup.db.execute("SELECT id, leased_by FROM deliveries WHERE status = 'sending'").fetchall()
    )
    assert leased == {**dict.fromkeys(mine, "a/1/1-0"), **dict.fromkeys(taken, "b/2/2-0")}


def test_a_claim_late_in_a_send_reads_its_rows_not_those_already_sent(tmp_path: Path, pg_url: str) -> None:
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=2000)
    frozen(setup)
    with transaction(setup.db):
        setup.db.execute("UPDATE deliveries SET status = 'sent' WHERE issue_id = 1 AND id <= 1000")
    setup.db.execute("ANALYZE deliveries")
    late = worker_ledger(setup, pg_url, "a/1/1-0")

    def rows_read() -> int:  # from the table's heap, by scans and index fetches (the server's stats)
        late.db.execute("SELECT pg_stat_force_next_flush()")  # the claim's counts, flushed now
        setup.db.execute("SELECT pg_stat_clear_snapshot()")
        sql = "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables"
        return setup.db.execute(sql + " WHERE relname = 'deliveries'").fetchone()[0]

    before = rows_read()
    claimed = late.commit([], claim=5)[0]
    read = rows_read() - before
    assert [row.id for row in claimed] == list(range(1001, 1006))
    assert read < 100, read  # not the 1,000 rows already sent: a claim's cost does not grow with the send


def test_a_vanished_senders_rows_go_back_to_the_pool_when_its_lease_ends(tmp_path: Path, pg_url: str) -> None:
    # A host that vanished: its session lingers on the server (nothing closed it), so only the
    # lease tells the others that its rows are free.
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=6)
    frozen(setup)
    setup.config.delivery.lease_seconds = 1.0
    vanished = worker_ledger(setup, pg_url, "a/1/1-0")
    lost = {row.id for row in vanished.commit([], claim=2)[0]}
    claimed_at = time.monotonic()
    setup.config.delivery.lease_seconds = 60.0
    survivor = worker_ledger(setup, pg_url, "b/2/2-0")
    first = {row.id for row in survivor.commit([], claim=10)[0]}
    assert len(first) == 4 and not first & lost
    assert survivor.others_sending()  # held by the other send...
    time.sleep(max(0.0, claimed_at + 1.1 - time.monotonic()))
    assert survivor.others_sending()  # ...until its lease ends: then they are queued again
    assert {row.id for row in survivor.commit([], claim=10)[0]} == lost
    assert not survivor.others_sending()
    vanished.db.close()


def test_a_sender_killed_on_this_host_frees_its_rows_at_once(tmp_path: Path, pg_url: str) -> None:
    # A killed process: its kernel closes its connection and the server ends its session, so
    # its rows are free long before its 60-second lease would end, when it ran on this host
    # (whose journals the reclaim reads). Another host's wait for their lease: its own
    # senders may still replay its journals first.
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=6)
    frozen(setup)
    here = socket.gethostname()
    killed = worker_ledger(setup, pg_url, f"{here}/1/1-0")
    lost = {row.id for row in killed.commit([], claim=2)[0]}
    elsewhere = worker_ledger(setup, pg_url, "another-host/1/1-0")
    theirs = {row.id for row in elsewhere.commit([], claim=2)[0]}
    survivor = worker_ledger(setup, pg_url, f"{here}/2/2-0")
    assert len(survivor.commit([], claim=10)[0]) == 2
    killed.db.close()
    elsewhere.db.close()
    started = time.monotonic()
    wait_for(lambda: lost <= queued_ids(setup, pg_url))  # the server ended the session: reclaimed
    assert time.monotonic() - started < 10
    assert survivor.others_sending()  # another host's rows: still its own until the lease ends
    assert not theirs & queued_ids(setup, pg_url)
    assert {row.id for row in survivor.commit([], claim=10)[0]} == lost


def queued_ids(setup: Setup, pg_url: str) -> set[int]:
    """The issue's rows that a sender's reclaim has put back in the queue (it runs it first)."""
    worker = worker_ledger(setup, pg_url, f"{socket.gethostname()}/9/9-0")
    try:
        worker.others_sending()
        rows = worker.db.execute("SELECT id FROM deliveries WHERE issue_id = 1 AND status = 'queued'")
        return {row[0] for row in rows}
    finally:
        worker.db.close()


def test_a_send_replays_only_this_hosts_journals_of_a_killed_sender(tmp_path: Path, pg_url: str) -> None:
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=8)
    frozen(setup)
    setup.config.delivery.lease_seconds = 0.01
    killed = worker_ledger(setup, pg_url, "gone/1/1-0")
    here, there = killed.commit([], claim=2)[0]  # both went out; neither was committed
    killed.db.close()
    emails = {row.id: row.email for row in (here, there)}
    line = "{}\t250\t2.0.0\t" + iso(utcnow()) + "\n"
    ours = journal_base(None, setup.path).with_name("digest.send-1.99999-0.journal")
    ours.write_text(line.format(here.id))
    theirs = setup.path / "send-journals" / "another-host" / "digest.send-1.99999-0.journal"
    theirs.parent.mkdir(parents=True)
    theirs.write_text(line.format(there.id))
    time.sleep(0.05)
    with SMTPServer() as server:
        result = invoke(setup, "send", "1", "--transport", server.url)
    assert result.exit_code == 0, result.output
    received = server.handler.per_recipient()
    assert emails[here.id] not in received  # journaled here: recorded as sent, not sent again
    assert received[emails[there.id]] == 1  # another host's journal cannot be read: sent again
    assert len(received) == 7 and set(r["status"] for r in listed(setup).values()) == {"sent"}
    assert not ours.exists() and theirs.exists()


def test_two_senders_on_one_issue_deliver_each_reader_exactly_once(tmp_path: Path, pg_url: str) -> None:
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=300)
    handler = Handler(delay=0.005)
    with SMTPServer(handler) as server:
        procs = [start_send(setup, server.url, "--concurrency", "2") for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()  # neither refused: several senders are allowed
    assert handler.per_recipient() == Counter({s["email"]: 1 for s in setup.subscribers})
    assert set(r["status"] for r in listed(setup).values()) == {"sent"}
    assert len(senders(setup)) == 2  # both took part
    assert setup.db.execute("SELECT status FROM issues WHERE id = 1").fetchone()[0] == "sent"


def test_three_senders_one_killed_the_others_finish_after_its_lease_ends(tmp_path: Path, pg_url: str) -> None:
    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=3000)
    sinks = [Handler() for _ in range(3)]
    connections = 2
    with SMTPServer(sinks[0]) as a, SMTPServer(sinks[1]) as b, SMTPServer(sinks[2]) as c:
        procs = [
            start_send(setup, server.url, "--concurrency", str(connections), lease=2.0)
            for server in (a, b, c)
        ]
        victim = procs[0]
        wait_for(lambda: len(sinks[0].received) >= 100)
        os.killpg(victim.pid, signal.SIGKILL)  # the send and its worker processes, at once
        victim.wait(timeout=30)
        # Its journals are in this host's folder beside the config (there is no database file).
        assert list((tmp_path / "ws" / "send-journals").glob("*/digest.send-1.*.journal"))
        at_kill = {e for e, r in listed(setup).items() if r["status"] == "sending" and r["sent_at"] is None}
        assert at_kill, "the killed sender should have left rows in flight"
        for proc in procs[1:]:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
        rerun = invoke(setup, "send", "1", "--transport", b.url)  # nothing is left for a later run
        assert rerun.exit_code == 0, rerun.output
        assert "sent 0" in rerun.output
    received = sum((sink.per_recipient() for sink in sinks), Counter())
    everyone = {s["email"] for s in setup.subscribers}
    assert set(received) == everyone  # nobody skipped
    repeated = {e: n for e, n in received.items() if n > 1}
    # What repeats is only what the killed sender had in flight: one per open connection.
    assert set(repeated) <= at_kill
    assert sum(n - 1 for n in repeated.values()) <= connections, repeated
    rows = listed(setup)
    assert {e for e, r in rows.items() if r["status"] == "sent"} == everyone  # the ledger agrees
    assert all(len(sink.received) > 0 for sink in sinks)
    assert setup.db.execute("SELECT status FROM issues WHERE id = 1").fetchone()[0] == "sent"
    assert not list((tmp_path / "ws").rglob("*.journal"))  # the killed sender's were replayed


def test_a_sender_waiting_to_reconnect_keeps_the_leases_of_the_rows_it_holds(
    tmp_path: Path, pg_url: str
) -> None:
    # The relay turns the first connections away ("421 too many connections") for about 7 s,
    # longer than the 2 s lease: the rows the sender claimed before connecting stay its own
    # (renewed while it waits), never free for another sender to take and send again.
    from test_delivery_throttling import TooManyConnections

    setup = on_postgresql(tmp_path / "ws", pg_url, subscribers=10)
    lapsed = 0
    with SMTPServer() as server, TooManyConnections(server.port, refuse=3) as door:
        proc = start_send(setup, door.url, "--concurrency", "1", lease=2.0)
        while proc.poll() is None:
            now = utcnow().isoformat(timespec="milliseconds")
            (count,) = setup.db.execute(
                "SELECT count(*) FROM deliveries WHERE issue_id = 1 AND status = 'sending'"
                " AND lease_until < ?",
                [now],
            ).fetchone()
            lapsed = max(lapsed, count)
            time.sleep(0.1)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert door.turned_away == 3
    assert lapsed == 0, f"{lapsed} rows' leases ended while their sender waited to reconnect"
    assert server.handler.per_recipient() == Counter({s["email"]: 1 for s in setup.subscribers})
