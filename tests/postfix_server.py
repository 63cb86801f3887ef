"""A private Postfix instance for tests: its own config, queue and data folders under a temp dir.

It listens on 127.0.0.1 at a free port (set in master.cf), takes mail for one
domain and delivers every recipient of it into one maildir through Postfix's
``virtual`` delivery agent (no system users needed). ``postfix -c DIR start``
starts it and ``stop`` stops it; Postfix checks ownership, so the queue belongs
to ``mail_owner`` (the Debian ``postfix`` user) and the maildir to the uid the
``virtual`` agent writes as. (No tests here.)
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
DAEMONS = "/usr/lib/postfix/sbin"

# Only what a loopback test needs: the listener, the queue manager, cleanup, the rewrite
# service, the virtual delivery agent, the SMTP client (for a test that sets relayhost),
# bounces and logging (n: no chroot).
MASTER_CF = """\
{port}    inet  n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixServer:
    """A running private Postfix; use as a context manager. ``maildir`` collects the mail."""

    def __init__(self, root: Path, port: int, domain: str, *, settings: dict[str, str] | None = None) -> None:
        self.root = root
        self.extra = dict(settings or {})  # main.cf settings on top of the defaults below
        self.port = port
        self.domain = domain
        self.config_dir = root / "etc"
        self.queue_dir = root / "queue"
        self.data_dir = root / "data"
        self.mail_base = root / "mail"
        self.maildir = self.mail_base / "inbox"
        self.log = root / "maillog"

    @staticmethod
    def available() -> str | None:
        """Why a private Postfix cannot run here, or None."""
        if not Path(POSTFIX).exists() or not Path(DAEMONS, "master").exists():
            return "postfix is not installed"
        if os.geteuid() != 0:
            return "a private postfix instance needs root (postfix checks the owners of its queue)"
        try:
            pwd.getpwnam("postfix")
            grp.getgrnam("postdrop")
        except KeyError:
            return "the postfix user or postdrop group is missing"
        return None

    @property
    def url(self) -> str:
        """smtp://127.0.0.1:PORT"""
        return f"smtp://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        owner = pwd.getpwnam("postfix")
        for folder in (self.config_dir, self.queue_dir, self.data_dir, self.mail_base):
            folder.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the postfix user must reach data/ and mail/ below it
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        os.chown(self.mail_base, owner.pw_uid, owner.pw_gid)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "command_directory": "/usr/sbin",
            "daemon_directory": DAEMONS,
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": f"postfix-test-{self.port}",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.root,  # default /var: elsewhere postfix stops, silently
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.test.invalid",
            "mydomain": "test.invalid",
            "myorigin": "test.invalid",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "",
            "alias_maps": "",
            "alias_database": "",
            "smtpd_peername_lookup": "no",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": self.mail_base,
            "virtual_mailbox_maps": "static:inbox/",  # every address: one maildir
            "virtual_uid_maps": f"static:{owner.pw_uid}",
            "virtual_gid_maps": f"static:{owner.pw_gid}",
            "default_transport": "error:this test instance delivers only locally",
            "disable_dns_lookups": "yes",
            "smtputf8_enable": "no",
            "biff": "no",
            **self.extra,
        }
        main = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.config_dir / "main.cf").write_text(main)
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(port=self.port))

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args], capture_output=True, text=True, timeout=60
        )

    def __enter__(self) -> PostfixServer:
        self._write_config()
        for step in (("check",), ("start",)):
            done = self._postfix(*step)
            if done.returncode != 0:
                self.__exit__()
                log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise RuntimeError(
                    f"postfix {step[0]} failed: {done.stderr.strip() or done.stdout.strip()} {log}"
                )
        return self

    def __exit__(self, *exc: object) -> None:
        self._postfix("stop")
        pid_file = self.queue_dir / "pid" / "master.pid"
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def messages(self) -> list[bytes]:
        """Every message delivered so far, raw."""
        new = self.maildir / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []

    def wait_for(self, count: int, timeout: float = 60.0) -> list[bytes]:
        """Wait until ``count`` messages are delivered (Postfix delivers asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= count:
                return got
            time.sleep(0.1)
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"
        raise AssertionError(f"postfix delivered {len(self.messages())} of {count} messages; log:\n{log}")
