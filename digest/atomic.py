"""Writing files safely: whole or not at all, and never through a planted link.

A file is written under a fresh random name in its own folder, created with ``O_EXCL`` and
``O_NOFOLLOW`` (a file or symbolic link already at that name is never opened or followed),
then moved over the target with ``os.replace``: a reader sees the old file or the new one,
never half of it, and a link at the target itself is replaced, not written through.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

PRIVATE = 0o600
"""The mode for files only their owner may read: the config, exports of personal data."""

_ATTEMPTS = 100


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, mode: int = 0o666, newline: str | None = None
) -> Iterator[TextIO]:
    """A UTF-8 text handle whose content replaces ``path`` when the block ends without an error.

    ``mode`` is narrowed by the umask as ``open()`` narrows it, so :data:`PRIVATE` stays 0600
    under any umask; on an error the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    fd, tmp = _create_temporary(target, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike[str], text: str, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``text`` (UTF-8) as a whole (see :func:`atomic_output`)."""
    with atomic_output(path, mode=mode) as handle:
        handle.write(text)


def write_atomic_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data`` as a whole, the way :func:`atomic_output` writes text."""
    target = Path(path)
    fd, tmp = _create_temporary(target, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def create_new(path: str | os.PathLike[str], text: str, *, mode: int = PRIVATE) -> None:
    """Create ``path`` holding ``text`` (UTF-8); :class:`FileExistsError` when anything is
    there already, a dangling symbolic link included (it is not followed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _create_temporary(target: Path, mode: int) -> tuple[int, str]:
    """Open a new file beside ``target`` under an unpredictable name, refusing any that exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        name = str(target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp"))
        try:
            return os.open(name, flags, mode), name
        except FileExistsError:
            continue
    raise FileExistsError(f"{target.parent}: no free temporary name after {_ATTEMPTS} tries")
