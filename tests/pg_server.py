"""A private PostgreSQL server for tests: Debian's ``postgresql`` binaries, run by hand.

:class:`PgServer` runs ``initdb`` in a temporary folder and starts the server with
``pg_ctl`` on a free loopback port, its Unix socket in the same folder, and durability
off (fsync, synchronous commit, full-page writes: a test database is thrown away).
:meth:`PgServer.fresh_database` makes an empty database for one test from a template,
which is much faster than another ``initdb``. Everything is removed at :meth:`PgServer.stop`.

``initdb`` refuses to run as root; when the tests do (CI does), the server binaries run as
the ``postgres`` system user that Debian's package creates, and the folder is theirs.
On Debian the binaries live in ``/usr/lib/postgresql/<version>/bin``, not on PATH.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "digest"  # the server's superuser, and the user of every URL handed out
_counter = itertools.count(1)


def find_binary(name: str) -> str | None:
    """``name`` (initdb, pg_ctl) on PATH, else in the newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return candidates[-1] if candidates else None


def missing_reason() -> str | None:
    """Why a private server cannot run here (None when it can)."""
    for name in ("initdb", "pg_ctl"):
        if find_binary(name) is None:
            return f"PostgreSQL's {name} is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    """One private PostgreSQL server in a temporary folder (see the module docstring)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        os.chmod(self.folder, 0o700)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        """initdb and start the server; raises RuntimeError with the server's log if it cannot."""
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        assert initdb and pg_ctl, missing_reason()
        self._run(initdb, "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip
        for _attempt in range(5):
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_connections=50 -c shared_buffers=32MB"
            )
            log = self.folder / "server.log"
            done = self._run(
                pg_ctl, "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start", check=False
            )
            if done.returncode == 0:
                self.admin("CREATE DATABASE template_digest")
                return
            time.sleep(0.2)  # the port may have been taken between the check and the start
        raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}{self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.folder / "server.log"
        try:
            return log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        """The libpq URL of ``database`` on this server (trust authentication: no password)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg  # lazy: start-up (only the PostgreSQL tests need it)

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def fresh_database(self, template: str = "template_digest") -> str:
        """A new database copied from ``template`` (the empty one unless told); its URL."""
        name = f"test_{os.getpid()}_{next(_counter)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (any session still on it is ended first)."""
        self.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        pg_ctl = find_binary("pg_ctl")
        if pg_ctl and self.data.exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
