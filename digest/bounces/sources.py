"""Where bounce reports are read from: :func:`open_source`.

``maildir:PATH``
    A Maildir (new/ and cur/). A processed message is moved into its
    ``processed`` subfolder (Maildir++ layout: ``PATH/.processed``, what Dovecot uses).
``mbox:PATH``
    An mbox file, read only: processed messages are remembered by Message-ID
    in the database (table ``bounce_messages``) and skipped next time.
``imaps://user@host[:port]/FOLDER`` or ``imap://user@host[:port]/FOLDER?starttls=true``
    An IMAP folder (default INBOX); the password comes from ``DIGEST_IMAP_PASSWORD``.
    A processed message is moved to the ``processed`` folder (created when missing).
    Plain ``imap://`` without STARTTLS is allowed only to a loopback host.

Every source yields ``(handle, bytes)`` and is told :meth:`done(handle)` once a
message is recorded, or :meth:`reject(handle)` for one refused unread (too large,
nested too deep: it moves to the ``rejected`` folder next to ``processed``); the
database remembers every processed message as well, so a message whose move
failed is only moved, never counted twice. No source reads more than
``MAX_MESSAGE_BYTES + 1`` bytes of a message: one byte more says it is too large.

An IMAP pass has a deadline for the whole of it (``[bounces] deadline``, default
60 s), on top of the per-operation timeout, and refuses a response line over 1 MB
or a literal over the message limit before reading it. Every failure of a source
(refused connection, login, an IMAP error, a timeout, the deadline) is raised as
one :class:`~digest.errors.DigestError` line.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from digest.bounces.imap import ImapSource
from digest.bounces.limits import (
    IMAP_DEADLINE,
    PROCESSED,
    READ_LIMIT,
    REJECTED,
)
from digest.errors import DigestError


class BounceSource(Protocol):
    """A mailbox of reports."""

    name: str

    def messages(self) -> Iterator[tuple[Any, bytes]]:
        """Each message not yet moved away, as (handle, raw bytes)."""
        ...

    def done(self, handle: Any) -> None:
        """The message is recorded: move it to ``processed`` (or nothing, for mbox)."""
        ...

    def reject(self, handle: Any) -> None:
        """The message was refused unread: move it to ``rejected`` (or nothing, for mbox)."""
        ...

    def close(self) -> None:
        """Release the mailbox."""
        ...


def open_source(text: str, *, base_dir: Path | None = None, deadline: float = IMAP_DEADLINE) -> BounceSource:
    """The source named by ``text`` (see the module docstring); raises DigestError when it cannot.
    ``deadline``: seconds an IMAP source may take in all, from connecting to logging out."""
    text = text.strip()
    if text.startswith("maildir:"):
        return MaildirSource(_path(text, "maildir:", base_dir), text)
    if text.startswith("mbox:"):
        return MboxSource(_path(text, "mbox:", base_dir), text)
    if text.startswith(("imaps://", "imap://")):
        return ImapSource(text, deadline=deadline)
    raise DigestError(
        f"bounce source {text!r} is not maildir:PATH, mbox:PATH, imaps://user@host/FOLDER "
        "or imap://user@host/FOLDER?starttls=true"
    )


def _path(text: str, prefix: str, base_dir: Path | None) -> Path:
    raw = text[len(prefix) :]
    if not raw:
        raise DigestError(f"bounce source {text!r} names no path; use e.g. {prefix}bounces")
    path = Path(raw).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


class MaildirSource:
    """A Maildir; a processed message is renamed into its ``processed`` subfolder (atomic, no copy),
    a rejected one into ``rejected``."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self._path = path
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise DigestError(f"{name}: {path} is not a maildir (no cur/ and new/ folders)")

    def messages(self) -> Iterator[tuple[Any, bytes]]:
        """Each message in new/ and cur/, oldest file name first."""
        for sub in ("new", "cur"):
            try:
                names = sorted(n for n in os.listdir(self._path / sub) if not n.startswith("."))
            except OSError as exc:
                raise DigestError(f"{self.name}: cannot list {self._path / sub} ({exc.strerror})") from None
            for name in names:
                file = self._path / sub / name
                try:
                    with file.open("rb") as handle:
                        data = handle.read(READ_LIMIT)
                except FileNotFoundError:  # moved away by another reader meanwhile
                    continue
                except OSError as exc:
                    raise DigestError(f"{self.name}: cannot read {file} ({exc.strerror})") from None
                yield (sub, name), data

    def done(self, handle: Any) -> None:
        """Rename the message into ``processed`` (Maildir++ ``.processed``), same sub-folder and name."""
        self._move(handle, PROCESSED)

    def reject(self, handle: Any) -> None:
        """Rename the message into ``rejected`` (Maildir++ ``.rejected``), same sub-folder and name."""
        self._move(handle, REJECTED)

    def _move(self, handle: Any, folder_name: str) -> None:
        sub, name = handle
        folder = self._path / f".{folder_name}"
        try:
            if not (folder / "cur").is_dir():
                for part in ("tmp", "new", "cur"):
                    (folder / part).mkdir(parents=True, exist_ok=True)
                (folder / "maildirfolder").touch()
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._path / sub / name, folder / sub / name)
        except OSError as exc:
            raise DigestError(
                f"{self.name}: cannot move {sub}/{name} to {folder} ({exc.strerror}); "
                "it is recorded and will only be moved next time"
            ) from None

    def close(self) -> None:
        """Nothing to release."""


class MboxSource:
    """An mbox file, read only; the database remembers what was processed."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        if not path.is_file():
            raise DigestError(f"{name}: {path} is not a file")
        self._box = mailbox.mbox(str(path), factory=None, create=False)

    def messages(self) -> Iterator[tuple[Any, bytes]]:
        """Each message in file order."""
        try:
            keys = list(self._box.keys())
        except (OSError, mailbox.Error) as exc:
            raise DigestError(f"{self.name}: cannot read the mbox ({exc})") from None
        for key in keys:
            try:
                with contextlib.closing(self._box.get_file(key)) as file:
                    data = file.read(READ_LIMIT)
            except (OSError, mailbox.Error) as exc:
                raise DigestError(f"{self.name}: cannot read message {key} ({exc})") from None
            yield key, data

    def done(self, handle: Any) -> None:
        """Nothing to move: an mbox is remembered by Message-ID."""

    def reject(self, handle: Any) -> None:
        """Nothing to move: an mbox is remembered by Message-ID (or a hash of its bytes)."""

    def close(self) -> None:
        """Close the file."""
        self._box.close()
