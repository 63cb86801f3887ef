"""An exclusive lock file that is removed when the work ends.

``fcntl.flock`` on a file beside the database; the holder writes its pid into it.
Removing a lock file is safe only with care: a process that opened the old file just
before it was unlinked could lock that orphan while a third process creates and locks a
new one. So after taking the lock, :func:`hold_lock` checks that the path still names
the file it locked (else it starts over), and the holder unlinks the path *before*
letting go of the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from digest.errors import DigestError


@contextlib.contextmanager
def hold_lock(path: Path, busy: Callable[[str], DigestError], *, mode: int = 0o600) -> Iterator[int]:
    """Hold the lock at ``path`` for the ``with`` block, then remove the file.

    When another process holds it, raise ``busy(holder)`` (``holder`` is its pid, or
    ``"another process"``). Yields the open file descriptor.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        except OSError as exc:
            raise DigestError(f"{path}: cannot create the lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise busy(holder) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder before us removed it as we opened it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield fd
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)  # closing releases the lock, after the path is gone


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)
