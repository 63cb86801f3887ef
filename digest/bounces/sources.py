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
message is recorded; the database remembers every processed message as well,
so a message whose move failed is only moved, never counted twice.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import mailbox
import os
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from digest.errors import DigestError

IMAP_PASSWORD_ENV = "DIGEST_IMAP_PASSWORD"
PROCESSED = "processed"
IMAP_TIMEOUT = 30.0


class BounceSource(Protocol):
    """A mailbox of reports."""

    name: str

    def messages(self) -> Iterator[tuple[Any, bytes]]:
        """Each message not yet moved away, as (handle, raw bytes)."""
        ...

    def done(self, handle: Any) -> None:
        """The message is recorded: move it to ``processed`` (or nothing, for mbox)."""
        ...

    def close(self) -> None:
        """Release the mailbox."""
        ...


def open_source(text: str, *, base_dir: Path | None = None) -> BounceSource:
    """The source named by ``text`` (see the module docstring); raises DigestError when it cannot."""
    text = text.strip()
    if text.startswith("maildir:"):
        return MaildirSource(_path(text, "maildir:", base_dir), text)
    if text.startswith("mbox:"):
        return MboxSource(_path(text, "mbox:", base_dir), text)
    if text.startswith(("imaps://", "imap://")):
        return ImapSource(text)
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
    """A Maildir; a processed message is renamed into its ``processed`` subfolder (atomic, no copy)."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self._path = path
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise DigestError(f"{name}: {path} is not a maildir (no cur/ and new/ folders)")
        self._processed = path / f".{PROCESSED}"

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
                    data = file.read_bytes()
                except FileNotFoundError:  # moved away by another reader meanwhile
                    continue
                except OSError as exc:
                    raise DigestError(f"{self.name}: cannot read {file} ({exc.strerror})") from None
                yield (sub, name), data

    def done(self, handle: Any) -> None:
        """Rename the message into ``processed`` (Maildir++ ``.processed``), same sub-folder and name."""
        sub, name = handle
        if not (self._processed / "cur").is_dir():
            for part in ("tmp", "new", "cur"):
                (self._processed / part).mkdir(parents=True, exist_ok=True)
            (self._processed / "maildirfolder").touch()
        with contextlib.suppress(FileNotFoundError):
            os.replace(self._path / sub / name, self._processed / sub / name)

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
            yield key, self._box.get_bytes(key)

    def done(self, handle: Any) -> None:
        """Nothing to move: an mbox is remembered by Message-ID."""

    def close(self) -> None:
        """Close the file."""
        self._box.close()


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ImapSource:
    """An IMAP folder; processed messages move to the ``processed`` folder."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        # As given, with the port, but never the password: user@host:port/FOLDER.
        host_port = parts.netloc.rpartition("@")[2]
        shown = f"{parts.scheme}://{parts.username or ''}@{host_port}{parts.path}"
        self.name = shown
        if not parts.hostname or not parts.username:
            raise DigestError(f"bounce source {shown!r} needs a user and a host: imaps://user@host/FOLDER")
        if parts.password:
            raise DigestError(
                f"bounce source {shown!r}: put the password in {IMAP_PASSWORD_ENV}, not in the URL"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise DigestError(
                f"bounce source {shown!r}: unknown option {sorted(unknown)[0]!r}; only starttls"
            )
        starttls = query.get("starttls", ["false"])[-1].lower() in ("1", "true", "yes", "on")
        secure = parts.scheme == "imaps"
        if not secure and not starttls and not _is_loopback(parts.hostname):
            raise DigestError(
                f"bounce source {shown!r} would send the password in clear text; "
                "use imaps:// or add ?starttls=true"
            )
        password = os.environ.get(IMAP_PASSWORD_ENV)
        if not password:
            raise DigestError(f"bounce source {shown!r}: set the IMAP password in {IMAP_PASSWORD_ENV}")
        try:
            port = parts.port or (993 if secure else 143)
        except ValueError:
            raise DigestError(f"bounce source {shown!r}: the port is not a number") from None
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        try:
            if secure:
                self._imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    parts.hostname, port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT
                )
            else:
                self._imap = imaplib.IMAP4(parts.hostname, port, timeout=IMAP_TIMEOUT)
                if starttls:
                    self._imap.starttls(ssl.create_default_context())
            self._imap.login(unquote(parts.username), password)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise DigestError(
                f"{shown}: cannot log in ({_imap_text(exc)}); check the URL and the password"
            ) from None
        # The capabilities after login (MOVE, say) may differ from those in the greeting.
        status, data = self._imap.capability()
        text = b" ".join(d for d in data if isinstance(d, bytes)) if status == "OK" else b""
        self._caps = set(text.upper().split()) | _capabilities(self._imap)
        status, data = self._imap.select(_quote(self.folder))
        if status != "OK":
            self.close()
            raise DigestError(f"{shown}: cannot open folder {self.folder!r} ({_imap_text(data)})")
        self._moved = False
        self._deleted: list[bytes] = []

    def messages(self) -> Iterator[tuple[Any, bytes]]:
        """Each message in the folder, by UID, read without setting \\Seen."""
        status, data = self._imap.uid("SEARCH", "UNDELETED")
        if status != "OK":
            raise DigestError(f"{self.name}: cannot list messages ({_imap_text(data)})")
        uids = (data[0] or b"").split()
        for uid in uids:
            status, fetched = self._imap.uid("FETCH", uid, "(BODY.PEEK[])")
            if status != "OK":
                raise DigestError(f"{self.name}: cannot read message {uid.decode()} ({_imap_text(fetched)})")
            body = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if body is None:
                continue  # expunged meanwhile
            yield uid, bytes(body)

    def done(self, handle: Any) -> None:
        """Move the message to ``processed``: UID MOVE when the server has it, else COPY + delete."""
        if not self._moved:
            self._imap.create(_quote(PROCESSED))  # fails harmlessly when it exists
            self._moved = True
        if b"MOVE" in self._caps:
            status, data = self._imap.uid("MOVE", handle, _quote(PROCESSED))
        else:
            status, data = self._imap.uid("COPY", handle, _quote(PROCESSED))
            if status == "OK":
                status, data = self._imap.uid("STORE", handle, "+FLAGS.SILENT", r"(\Deleted)")
                self._deleted.append(handle)
        if status != "OK":
            raise DigestError(
                f"{self.name}: cannot move message {handle!r} to {PROCESSED!r} ({_imap_text(data)}); "
                "it is recorded and will only be moved next time"
            )

    def close(self) -> None:
        """Expunge what was copied away and log out."""
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            if self._imap.state == "SELECTED" and self._deleted:
                # Only what was copied away: UID EXPUNGE (UIDPLUS) leaves others' \Deleted alone.
                if b"UIDPLUS" in self._caps:
                    self._imap.uid("EXPUNGE", b",".join(self._deleted))
                else:
                    self._imap.expunge()
        # LOGOUT, not CLOSE: CLOSE would expunge every \Deleted message of the folder.
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self._imap.logout()


def _capabilities(imap: imaplib.IMAP4) -> set[bytes]:
    return {c.encode() if isinstance(c, str) else c for c in imap.capabilities}


def _quote(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:200]
