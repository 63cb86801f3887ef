"""Per-connection journals: each 250 is on disk before the next message leaves.

The ledger is committed in batches (cheap), so a SIGKILL could lose the record
of up to a batch of accepted messages, and the next run would send them again.
Each connection worker therefore appends one short line per accepted message
to its own journal file (one ``write`` on an ``O_APPEND`` descriptor: it is in
the kernel's page cache, which survives the death of the process) before it
sends the next message. The next run replays every journal of the issue
(:func:`digest.delivery.ledger.replay_journals`) before it requeues rows left in
flight; a worker that finishes cleanly removes its journal once its results are
committed. After a SIGKILL at any moment at most the one message in flight per
open connection can go out twice.

Where they live: beside the SQLite file (``digest.db.send-ISSUE.PID-N.journal``); with a
PostgreSQL store, where several senders on several hosts share one ledger, in a folder of
this host's own beside the config (:func:`journal_base`). Each journal is held with an
``flock`` while its worker lives, so a replay (another sender of the same issue starting
on this host) reads only the journals of processes that are gone.

A line is ``row_id<TAB>code<TAB>enhanced<TAB>sent_at<LF>``; a torn last line is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Journal", "JournalEntry", "journal_base", "journal_path", "read_journals"]

JOURNALS_FOLDER = "send-journals"
"""With a PostgreSQL store: the folder (beside the config) of each host's journal folder."""


def journal_base(db_file: Path | None, workspace: Path) -> Path:
    """Where the journals go, as a path whose folder holds them and whose name starts theirs:
    the SQLite file itself, or (PostgreSQL: ``db_file`` None) ``send-journals/HOST/digest``
    in ``workspace``, created private (0700) when missing."""
    if db_file is not None:
        return db_file
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname()) or "host"
    folder = workspace / JOURNALS_FOLDER / host
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / "digest"


def _pattern(base: Path, issue_id: int) -> str:
    return f"{base.name}.send-{issue_id}.*.journal"


def journal_path(base: Path, issue_id: int, tag: str) -> Path:
    """The journal of one connection worker (``tag``: process id and worker number)."""
    return base.with_name(f"{base.name}.send-{issue_id}.{tag}.journal")


@dataclass(frozen=True)
class JournalEntry:
    """One journaled 250."""

    row_id: int
    code: int
    enhanced: str | None
    at: str


class Journal:
    """An append-only journal of one connection worker; created on the first entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def sent(self, row_id: int, code: int, enhanced: str | None, at: str) -> None:
        """Append one accepted message (one write system call)."""
        if self.fd is None:
            self.fd = self._open()
        os.write(self.fd, f"{row_id}\t{code}\t{enhanced or ''}\t{at}\n".encode())

    def _open(self) -> int:
        """Open (create) the file and hold its lock; a replay that removed it meanwhile makes
        this open a new one."""
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # a replay holds it only while it reads
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    return fd
            os.close(fd)

    def discard(self) -> None:
        """Everything journaled is committed to the ledger: close and remove the file."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


@contextlib.contextmanager
def read_journals(base: Path, issue_id: int) -> Iterator[list[JournalEntry]]:
    """Every entry left by the issue's runs that are gone (a journal whose worker lives is
    locked, and skipped); the files are removed when the block ends without an error."""
    entries: list[JournalEntry] = []
    held: list[tuple[Path, int]] = []
    try:
        for path in sorted(base.parent.glob(_pattern(base, issue_id))):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its worker is still sending
                os.close(fd)
                continue
            held.append((path, fd))
            entries.extend(_entries(path))
        yield entries
        for path, _ in held:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        for _, fd in held:
            os.close(fd)


def _entries(path: Path) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    with contextlib.suppress(OSError):
        for line in path.read_bytes().split(b"\n")[:-1]:  # the last piece is torn or empty
            parts = line.decode("ascii", "replace").split("\t")
            if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
                continue
            entries.append(JournalEntry(int(parts[0]), int(parts[1]), parts[2] or None, parts[3]))
    return entries
