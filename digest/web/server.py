"""Run the web app under gunicorn for ``digest web serve``.

Why gunicorn: it is a production WSGI server that ships a pre-fork master
(one process per core, a crashed worker is replaced, SIGTERM drains requests in
flight), it is a plain Python dependency on every Unix, and its threaded worker
(``gthread``) keeps waiting connections in a poller instead of in a thread.
Waitress (the Windows choice in pyproject.toml) is single-process; gevent or
eventlet would handle idle sockets too, but monkey-patch the standard library
under SQLite and the SMTP client for no gain at the rates a sign-up page sees.

Slow and idle clients: gunicorn's stock ``gthread`` worker hands a connection to
a thread once its first bytes arrive, so 2,000 clients that each send half a
request line hold every thread until the request timeout.
:class:`~digest.web.worker.HeadFirstWorker` reads each request head in the
poller instead, with a header deadline (the request timeout, at most 10 s): a
thread is used only once the whole head is in, and a client that sends nothing
or trickles is closed at the deadline. A body that stalls is cut off by a
socket receive timeout (the request timeout). The arbiter's ``timeout``
restarts a worker that stops answering altogether.

Logging: tokens are cut from the access and error logs (see
:mod:`digest.web.logs`), whatever the path looks like, and the ``Server``
header names no version.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from digest.config import Config
from digest.errors import DigestError
from digest.web.app import create_app
from digest.web.logs import RedactingFilter
from digest.web.worker import HeadFirstWorker

ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
IDLE_SECONDS = 5  # a connection that sends nothing (or nothing more) is closed after this
MAX_CONNECTIONS_PER_WORKER = 5000
LISTEN_BACKLOG = 2048


@dataclass(frozen=True)
class ServeOptions:
    """How ``digest web serve`` runs: how many workers and threads (the listening socket,
    made by :func:`listen`, carries the address)."""

    workers: int = 0  # 0: one per core
    threads: int = 8
    timeout: float = 30.0

    @property
    def worker_count(self) -> int:
        """The number of worker processes (``workers``, or the number of cores)."""
        return self.workers or os.cpu_count() or 1


class RedactingLogger(Logger):
    """gunicorn's logger with tokens filtered out of every access and error line."""

    def setup(self, cfg: Any) -> None:
        """Set up gunicorn's handlers, then add the redacting filter to both logs."""
        super().setup(cfg)
        for handler in self.access_log.handlers:
            # gunicorn's "-" is stdout for the access log; stdout is for the CLI's own lines.
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
        if not any(isinstance(f, StalledClientFilter) for f in self.error_log.filters):
            self.error_log.addFilter(StalledClientFilter())
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactingFilter) for f in log.filters):
                log.addFilter(RedactingFilter())


class StalledClientFilter(logging.Filter):
    """A request cut off by the socket timeout is routine: one info line, not an error with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite gunicorn's "Socket error" record for a receive/send timeout; keep every record."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (BlockingIOError, TimeoutError)):
            record.msg, record.args = "closed a connection that stalled mid-request", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class _Application(BaseApplication):
    def __init__(self, config: Config, settings: dict[str, Any]) -> None:
        self._config = config
        self._settings = settings
        self._app: Any = None
        self._app_pid = 0
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app after the fork: nothing from the master's SQLite use
        # crosses a fork (with a shared, preloaded app, reads slowed to a crawl after writes).
        if self._app is None or self._app_pid != os.getpid():
            self._app = create_app(self._config)
            self._app_pid = os.getpid()
        return self._app


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; raises DigestError naming the address when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise DigestError(
            f"cannot listen on {host}:{port} ({reason}); choose another --host or --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def gunicorn_settings(options: ServeOptions, bind: str) -> dict[str, Any]:
    """The gunicorn settings ``digest web serve`` uses (the bench runs plain gunicorn with the same)."""
    return {
        "bind": [bind],
        "workers": options.worker_count,
        "threads": options.threads,
        "worker_class": f"{HeadFirstWorker.__module__}.{HeadFirstWorker.__qualname__}",
        "worker_connections": MAX_CONNECTIONS_PER_WORKER,
        "keepalive": IDLE_SECONDS,
        # The arbiter's liveness timeout, not the request's (that is the socket timeout): a busy
        # machine must not get a healthy worker killed.
        "timeout": max(int(options.timeout) * 2, 30),
        "graceful_timeout": max(int(options.timeout), 1),
        "backlog": LISTEN_BACKLOG,
        "preload_app": False,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": f"{RedactingLogger.__module__}.{RedactingLogger.__qualname__}",
        "limit_request_line": 4094,
        "limit_request_fields": 50,
        "proc_name": "digest-web",
        "control_socket_disable": True,  # no control socket left in $HOME
    }


def serve(
    config: Config,
    options: ServeOptions,
    sock: socket.socket,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve the app on the listening ``sock`` until SIGTERM or SIGINT; returns the exit status.

    ``on_ready`` is called once the app is built (database opened and checked,
    secret read), just before the workers start: an error in either is raised
    before it, so nothing announces a server that never runs.
    """
    HeadFirstWorker.request_timeout = options.timeout
    application = _Application(config, gunicorn_settings(options, f"fd://{sock.fileno()}"))
    try:
        application.load()  # errors in the config or database surface here, before any fork
        if on_ready is not None:
            on_ready()
    except BaseException:
        sock.close()  # only before gunicorn has it: afterwards it closes the descriptor itself
        raise
    from gunicorn.arbiter import Arbiter  # lazy: start-up

    master = os.getpid()
    try:
        Arbiter(application).run()
    except SystemExit as exc:
        if os.getpid() != master:
            raise  # a forked worker leaving: it must not return into the CLI
        return exc.code if isinstance(exc.code, int) else 0
    return 0
