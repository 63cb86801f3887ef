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

A line is ``row_id<TAB>code<TAB>enhanced<TAB>sent_at<LF>``; a torn last line is ignored.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Journal", "JournalEntry", "journal_path", "read_journals"]


def _pattern(db_path: Path, issue_id: int) -> str:
    return f"{db_path.name}.send-{issue_id}.*.journal"


def journal_path(db_path: Path, issue_id: int, tag: str) -> Path:
    """The journal of one connection worker (``tag``: process id and worker number)."""
    return db_path.with_name(f"{db_path.name}.send-{issue_id}.{tag}.journal")


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
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self.fd, f"{row_id}\t{code}\t{enhanced or ''}\t{at}\n".encode())

    def discard(self) -> None:
        """Everything journaled is committed to the ledger: close and remove the file."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def read_journals(db_path: Path, issue_id: int) -> tuple[list[JournalEntry], list[Path]]:
    """Every entry left by earlier runs of the issue, and the files they came from."""
    entries: list[JournalEntry] = []
    paths = sorted(db_path.parent.glob(_pattern(db_path, issue_id)))
    for path in paths:
        with contextlib.suppress(OSError):
            for line in path.read_bytes().split(b"\n")[:-1]:  # the last piece is torn or empty
                parts = line.decode("ascii", "replace").split("\t")
                if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
                    continue
                entries.append(JournalEntry(int(parts[0]), int(parts[1]), parts[2] or None, parts[3]))
    return entries, paths
