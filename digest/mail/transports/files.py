"""Transports that write files: ``maildir:PATH`` (:class:`MaildirTransport`) and
``mbox:PATH`` (:class:`MboxTransport`). No mail leaves the machine."""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote

from digest.config import Config
from digest.errors import DigestError
from digest.mail.transports.base import (
    REAL_SENDS_HINT,
    Capabilities,
    Probe,
    Reply,
    TransportBase,
    TransportError,
    TransportSpec,
)

__all__ = ["MaildirTransport", "MboxTransport"]


def check_files(spec: TransportSpec, config: Config, timeout: float) -> Probe:
    """The doctor's word on a file transport: fine, but nothing reaches a reader."""
    return Probe(
        "warn",
        f"{spec.describe()} writes files; no mail leaves this machine",
        REAL_SENDS_HINT,
    )


class FileTransport(TransportBase):
    """What maildir and mbox share: a path URL, one writer at a time, no real mail."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        sends_real_mail=False, max_connections=1, forks_ok=False, doctor_check=check_files
    )

    @classmethod
    def parse(cls, scheme: str, url: str, shown: str) -> TransportSpec:
        """``scheme:PATH`` (or ``scheme://PATH``); the path may be %-encoded."""
        _, _, rest = url.partition(":")
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise DigestError(f"transport {shown!r} needs a path, like {scheme}:outbox")
        return TransportSpec(scheme=scheme, path=unquote(path))

    @classmethod
    def destination(cls, spec: TransportSpec, config: Config) -> str | None:
        """The file it writes (``maildir:outbox`` and its absolute path are one)."""
        return f"{spec.scheme}:{config.path(spec.path).resolve()}"


class MaildirTransport(FileTransport):
    """Deliver into a maildir (``new/``); each message is written to ``tmp/`` and renamed."""

    def __init__(self, path: Path) -> None:
        try:
            self._box = mailbox.Maildir(str(path), create=True)
        except OSError as exc:
            raise TransportError(f"maildir {path}: cannot create it ({exc.strerror})") from None
        self.path = path

    @classmethod
    def open(cls, spec: TransportSpec, config: Config, timeout: float | None) -> MaildirTransport:
        """The maildir at ``spec.path`` (relative to the config folder), created if missing."""
        return cls(config.path(spec.path))

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Store the message; it carries its own headers, so sender/recipient are unused here."""
        msg = mailbox.MaildirMessage(message.replace(b"\r\n", b"\n"))
        try:
            key = self._box.add(msg)
        except OSError as exc:
            raise TransportError(f"maildir {self.path}: cannot write ({exc.strerror})") from None
        return Reply(250, f"stored {key}", stage="message")

    def close(self) -> None:
        """Nothing to release."""
        self._box.close()


class MboxTransport(FileTransport):
    """Append to an mbox file, holding its lock for each message."""

    def __init__(self, path: Path) -> None:
        if not path.parent.exists():
            raise TransportError(f"mbox {path}: folder {path.parent} does not exist")
        self.path = path
        self._box = mailbox.mbox(str(path), create=True)

    @classmethod
    def open(cls, spec: TransportSpec, config: Config, timeout: float | None) -> MboxTransport:
        """The mbox file at ``spec.path`` (relative to the config folder); its folder must exist."""
        return cls(config.path(spec.path))

    def send(self, message: bytes, sender: str, recipient: str, *, dot_safe: bool = False) -> Reply:
        """Append the message with an mboxrd ``From `` separator."""
        msg = mailbox.mboxMessage(message.replace(b"\r\n", b"\n"))
        msg.set_from(sender or "MAILER-DAEMON")
        try:
            self._box.lock()
            try:
                self._box.add(msg)
                self._box.flush()
            finally:
                self._box.unlock()
        except (OSError, mailbox.ExternalClashError) as exc:
            raise TransportError(f"mbox {self.path}: cannot append ({exc})") from None
        return Reply(250, "appended", stage="message")

    def close(self) -> None:
        """Release the file."""
        self._box.close()
