"""Getting the bytes of a source: HTTP(S) with limits and conditional GET, or a local file.

HTTP requests carry a User-Agent, send ``If-None-Match`` / ``If-Modified-Since``
when the caller knows an ETag / Last-Modified from the previous fetch, stop at a
byte limit (also for gzip bodies, counted after decompression) and give up after
a total time limit, not just a per-read one.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from digest.errors import DigestError

CHUNK = 64 * 1024


class FetchError(DigestError):
    """A source could not be read (unreachable, HTTP error, too big, too slow, missing file).
    ``status`` is the HTTP status of an error reply, else None."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Fetched:
    """The result of one fetch. ``content`` is None when the server answered 304."""

    source: str
    url: str  # the final URL after redirects, or the absolute file path
    content: bytes | None
    status: int  # HTTP status; 0 for a local file
    etag: str | None = None
    modified: str | None = None
    content_type: str | None = None

    @property
    def not_modified(self) -> bool:
        """True when the server said the content has not changed since the last fetch."""
        return self.status == 304


def is_http(source: str) -> bool:
    """True when ``source`` is an http:// or https:// URL."""
    return urlsplit(source.strip()).scheme.lower() in ("http", "https")


def local_path(source: str) -> Path:
    """The filesystem path named by ``source`` (a plain path or a file:// URL)."""
    if source.startswith("file://"):
        return Path(urllib.request.url2pathname(urlsplit(source).path))
    return Path(source).expanduser()


def fetch(
    source: str,
    *,
    timeout: float = 20.0,
    max_bytes: int = 10_000_000,
    user_agent: str = "digest",
    etag: str | None = None,
    modified: str | None = None,
) -> Fetched:
    """Read ``source`` (http(s) URL, file:// URL or path). Raises :class:`FetchError` with a
    one-line message naming the source."""
    if is_http(source):
        return _fetch_http(source, timeout, max_bytes, user_agent, etag, modified)
    scheme = urlsplit(source).scheme.lower()
    if scheme not in ("", "file") and len(scheme) > 1:  # one letter: a Windows drive
        raise FetchError(f"{source}: unsupported URL scheme {scheme!r}; use http(s) or a file path")
    return _read_file(source, max_bytes)


def _read_file(source: str, max_bytes: int) -> Fetched:
    path = local_path(source)
    try:
        with path.open("rb") as fh:
            content = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise FetchError(f"{source}: is a folder, not a file") from None
    except OSError as exc:
        raise FetchError(f"{source}: cannot read ({exc.strerror or exc})") from None
    if len(content) > max_bytes:
        raise _too_big(source, max_bytes)
    return Fetched(source=source, url=str(path.resolve()), content=content, status=0)


def fetch_head(url: str, *, limit: int, timeout: float, user_agent: str = "digest") -> bytes:
    """The first ``limit`` bytes of an http(s) resource, within ``timeout`` seconds in all
    (connect, redirects and reads: the same watchdog as :func:`fetch`). Asks for a byte range;
    a server that sends the whole file is cut off after ``limit`` bytes. Raises FetchError."""
    if not is_http(url):
        raise FetchError(f"{url}: not an http(s) URL")
    headers = {"User-Agent": user_agent, "Range": f"bytes=0-{limit - 1}", "Accept-Encoding": "identity"}
    request = urllib.request.Request(url, headers=headers)
    watchdog = _Watchdog(timeout)
    opener = urllib.request.build_opener(
        _WebOnlyRedirects(), _DeadlineHTTPHandler(watchdog), _DeadlineHTTPSHandler(watchdog)
    )
    with watchdog:
        try:
            with opener.open(request, timeout=timeout) as response:
                parts: list[bytes] = []
                size = 0
                while size < limit and time.monotonic() < watchdog.deadline:
                    chunk = response.read1(min(CHUNK, limit - size))
                    if not chunk:
                        break
                    parts.append(chunk)
                    size += len(chunk)
                return b"".join(parts)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if watchdog.expired:
                raise _timed_out(url, timeout) from None
            raise FetchError(f"{url}: unreachable ({exc})") from None


class _WebOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): urllib would otherwise follow one to ftp://."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-HTTP URL {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch_http(
    url: str,
    timeout: float,
    max_bytes: int,
    user_agent: str,
    etag: str | None,
    modified: str | None,
) -> Fetched:
    headers = {
        "User-Agent": user_agent,
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
        "text/xml;q=0.9, application/json;q=0.8, text/csv;q=0.8, */*;q=0.5",
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    request = urllib.request.Request(url, headers=headers)
    watchdog = _Watchdog(timeout)
    opener = urllib.request.build_opener(
        _WebOnlyRedirects(), _DeadlineHTTPHandler(watchdog), _DeadlineHTTPSHandler(watchdog)
    )
    deadline = watchdog.deadline
    with watchdog:
        try:
            return _open_and_read(opener, request, url, timeout, max_bytes, etag, modified, deadline)
        except Exception:
            if watchdog.expired:  # the watchdog cut the connection: whatever broke, it was time
                raise _timed_out(url, timeout) from None
            raise


def _open_and_read(
    opener: urllib.request.OpenerDirector,
    request: urllib.request.Request,
    url: str,
    timeout: float,
    max_bytes: int,
    etag: str | None,
    modified: str | None,
    deadline: float,
) -> Fetched:
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            return Fetched(
                source=url,
                url=url,
                content=None,
                status=304,
                etag=exc.headers.get("ETag") or etag,
                modified=exc.headers.get("Last-Modified") or modified,
            )
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}", status=exc.code) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"{url}: unreachable ({_reason(exc.reason, timeout)})") from None
    except TimeoutError:
        raise _timed_out(url, timeout) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise FetchError(f"{url}: unreachable ({exc})") from None
    with response:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise _too_big(url, max_bytes)
        encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        body = _read_body(response, url, encoding, deadline, timeout, max_bytes)
        if time.monotonic() > deadline:  # the watchdog may have cut the body short
            raise _timed_out(url, timeout)
        return Fetched(
            source=url,
            url=response.geturl() or url,
            content=body,
            status=response.status,
            etag=response.headers.get("ETag"),
            modified=response.headers.get("Last-Modified"),
            content_type=response.headers.get("Content-Type"),
        )


def _read_body(
    response: http.client.HTTPResponse,
    url: str,
    encoding: str,
    deadline: float,
    timeout: float,
    max_bytes: int,
) -> bytes:
    decoder = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise _timed_out(url, timeout)
            chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
            if not chunk:
                break
            if decoder is not None:
                # max_length bounds the output of a decompression bomb chunk by chunk.
                chunk = decoder.decompress(chunk, max_bytes + 1 - size)
                if decoder.unconsumed_tail:
                    raise _too_big(url, max_bytes)
            size += len(chunk)
            if size > max_bytes:
                raise _too_big(url, max_bytes)
            parts.append(chunk)
        if decoder is not None:
            tail = decoder.flush()
            size += len(tail)
            if size > max_bytes:
                raise _too_big(url, max_bytes)
            parts.append(tail)
    except TimeoutError:
        raise _timed_out(url, timeout) from None
    except zlib.error:
        raise FetchError(f"{url}: the server sent a corrupt {encoding} body") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url}: connection broke while reading ({exc})") from None
    return b"".join(parts)


class _Watchdog:
    """A deadline for a whole fetch, headers included. Socket timeouts only bound each read,
    so a server that sends one byte at a time could hold a fetch forever; at the deadline
    this shuts every connection of the fetch down, which wakes any blocked read."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        """Seconds left (a small positive floor, so a socket timeout is never 0 = blocking)."""
        return max(0.01, self.deadline - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` at the deadline (at once when it has already passed)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            self._cut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._cut(sock)

    @staticmethod
    def _cut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnect:
    """Connect within the fetch's deadline and hand the socket to its watchdog (mixed into
    the HTTP and HTTPS connection classes)."""

    timeout: Any
    sock: Any

    def __init__(self, *args: Any, watchdog: _Watchdog, **kwargs: Any) -> None:
        self.watchdog = watchdog
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def connect(self) -> None:
        self.timeout = min(self.timeout, self.watchdog.remaining())
        super().connect()  # type: ignore[misc]
        self.watchdog.watch(self.sock)


class _DeadlineHTTPConnection(_WatchedConnect, http.client.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_WatchedConnect, http.client.HTTPSConnection):
    pass


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.connection = functools.partial(_DeadlineHTTPConnection, watchdog=watchdog)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connection, req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.connection = functools.partial(_DeadlineHTTPSConnection, watchdog=watchdog)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connection, req, context=self._context)


def _too_big(source: str, max_bytes: int) -> FetchError:
    return FetchError(f"{source}: larger than the {max_bytes}-byte limit (ingest.max_bytes)")


def _timed_out(url: str, timeout: float) -> FetchError:
    return FetchError(f"{url}: timed out after {timeout:g}s (ingest.timeout)")


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
