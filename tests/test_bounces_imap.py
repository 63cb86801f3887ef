"""Bounce reports read over IMAP from a real Dovecot, started by the test with its own config
on a free loopback port: plain imap:// (loopback only), imaps:// and STARTTLS with a
self-signed certificate. Skipped only when dovecot is not installed."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bounce_support import EXPECTED, fixture_bytes, make_bounce_workspace, nesting_bomb, reader_dsn
from smtp_server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
OPENSSL = shutil.which("openssl")
USER, PASSWORD = "bounces", "imap-test-password"
MAIL_USER = "nobody"  # Dovecot never gives mail access to root

CONFIG = """
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:{mail}/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {tmp}/passwd
}}
# The passwd file sits in pytest's private tmp_path, which only root can reach.
service auth {{
  user = root
}}
service auth-worker {{
  user = root
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""


@dataclass
class Dovecot:
    port: int
    tls_port: int
    cert: Path | None

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, messages: list[bytes], folder: str = "INBOX") -> None:
        imap = self.connect()
        for data in messages:
            status, detail = imap.append(folder, None, None, data)
            assert status == "OK", detail
        imap.logout()

    def count(self, folder: str) -> int:
        imap = self.connect()
        status, data = imap.select(folder, readonly=True)
        imap.logout()
        return int(data[0]) if status == "OK" else -1


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dovecot exited ({proc.returncode}): {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail("dovecot did not start listening within 10 s")


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot is not installed (Debian: dovecot-imapd)")
    tmp = tmp_path / "dovecot"
    (tmp / "run").mkdir(parents=True)
    (tmp / "state").mkdir()
    # The mail folder belongs to an unprivileged user, who cannot reach into pytest's private
    # tmp_path (mode 0700 up the tree): it lives in its own temporary folder.
    mail = Path(tempfile.mkdtemp(prefix="digest-dovecot-mail-"))
    account = pwd.getpwnam(MAIL_USER)
    os.chown(mail, account.pw_uid, account.pw_gid)
    (tmp / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{account.pw_uid}:{account.pw_gid}::{mail}::\n", encoding="utf-8"
    )
    cert = None
    ssl_files = ""
    if OPENSSL:
        cert, key = tmp / "cert.pem", tmp / "key.pem"
        made = subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            capture_output=True,
        )  # fmt: skip
        if made.returncode == 0:
            ssl_files = f"ssl_cert = <{cert}\nssl_key = <{key}"
        else:
            cert = None
    port, tls_port = free_port(), free_port()
    conf = tmp / "dovecot.conf"
    conf.write_text(
        CONFIG.format(
            tmp=tmp,
            mail=mail,
            port=port,
            tls_port=tls_port,
            ssl="yes" if cert else "no",
            ssl_files=ssl_files,
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_port(port, proc, tmp / "dovecot.log")
        yield Dovecot(port, tls_port, cert)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(mail, ignore_errors=True)


def test_fixtures_over_imap_are_classified_moved_and_not_read_twice(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    dovecot.append(list(fixture_bytes().values()))
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    source = f"imap://{USER}@127.0.0.1:{dovecot.port}/INBOX"
    first = ws.invoke("bounces", "process", source)
    assert first.exit_code == 0, first.output
    assert "9 new reports: 3 hard, 2 soft, 1 complaint, 1 unsubscribe, 2 other" in first.output
    assert PASSWORD not in first.output
    for name, (address, _kind, status) in EXPECTED.items():
        assert ws.status(address) == status, name
    assert dovecot.count("INBOX") == 0 and dovecot.count("processed") == 9
    # Put them back: remembered by Message-ID, so nothing changes but the move.
    before = ws.snapshot()
    dovecot.append(list(fixture_bytes().values()))
    again = ws.invoke("bounces", "process", source)
    assert again.exit_code == 0, again.output
    assert "0 new reports (9 seen before)" in again.output
    assert ws.snapshot() == before
    assert dovecot.count("INBOX") == 0


def test_imaps_and_starttls_with_a_self_signed_certificate(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    if dovecot.cert is None:
        pytest.skip("openssl could not make a test certificate")
    ws = make_bounce_workspace(tmp_path / "ws")
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    imaps = f"imaps://{USER}@127.0.0.1:{dovecot.tls_port}/INBOX"
    starttls = f"imap://{USER}@127.0.0.1:{dovecot.port}/INBOX?starttls=true"
    dovecot.append([reader_dsn("gone@example.com", mid="<tls-1@relay.example>")])
    # The certificate is not trusted yet: refused, nothing read.
    refused = ws.invoke("bounces", "process", imaps)
    assert refused.exit_code == 1 and "cannot log in" in refused.output and "CERTIFICATE" in refused.output
    assert ws.status("gone@example.com") == "active"
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    ssl.create_default_context()  # OpenSSL reads SSL_CERT_FILE when a context loads its defaults
    over_tls = ws.invoke("bounces", "process", imaps)
    assert over_tls.exit_code == 0, over_tls.output
    assert ws.status("gone@example.com") == "bounced"
    dovecot.append([reader_dsn("strict@example.com", status="5.7.1", mid="<tls-2@relay.example>")])
    upgraded = ws.invoke("bounces", "process", starttls)
    assert upgraded.exit_code == 0, upgraded.output
    assert "1 new report: 1 soft" in upgraded.output
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "wrong")
    wrong = ws.invoke("bounces", "process", starttls)
    assert wrong.exit_code == 1 and "cannot log in" in wrong.output and "wrong" not in wrong.output


def test_a_server_without_move_gets_copy_and_uid_expunge(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.bounces.imap import ImapSource
    from digest.bounces.process import _process
    from digest.config import load_config

    ws = make_bounce_workspace(tmp_path / "ws")
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    dovecot.append([reader_dsn("gone@example.com", mid="<nomove-1@relay.example>")])
    # Someone else's message, flagged deleted but not expunged: not ours to expunge.
    dovecot.append([b"From: a@example.com\r\nSubject: keep\r\nMessage-ID: <other@x>\r\n\r\nx\r\n"])
    imap = dovecot.connect()
    imap.select("INBOX")
    imap.uid("STORE", b"2", "+FLAGS.SILENT", r"(\Deleted)")
    imap.logout()
    source = ImapSource(f"imap://{USER}@127.0.0.1:{dovecot.port}/INBOX")
    source._caps.discard(b"MOVE")  # as an IMAP server without RFC 6851 would answer
    try:
        report = _process(ws.db(), load_config(ws.config_path), source, now=None)
    finally:
        source.close()
    assert report.kinds["hard"] == 1 and ws.status("gone@example.com") == "bounced"
    assert dovecot.count("processed") == 1
    assert dovecot.count("INBOX") == 1  # the other \Deleted message is left for its owner


def test_a_nesting_bomb_over_imap_moves_to_the_rejected_folder(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    dovecot.append(
        [nesting_bomb(1000), reader_dsn("gone@example.com", mid="<after-bomb-imap@relay.example>")]
    )
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    result = ws.invoke("bounces", "process", f"imap://{USER}@127.0.0.1:{dovecot.port}/INBOX")
    assert result.exit_code == 0, result.output
    assert "1 new report: 1 hard; marked bounced: 1; 1 rejected: nested 1000 deep (limit 20)" in result.output
    assert dovecot.count("INBOX") == 0 and dovecot.count("processed") == 1 and dovecot.count("rejected") == 1
