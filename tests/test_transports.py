"""Transports chosen by URL: SMTP (TLS verified, STARTTLS never skipped), maildir and mbox."""

from __future__ import annotations

import mailbox
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from delivery_fixtures import AFTER, make_setup
from smtp_server import Handler, SMTPServer, free_port

from digest.config import Config
from digest.delivery import deliver_issue
from digest.errors import DigestError
from digest.mail.transports import (
    ConnectionLost,
    SMTPTransport,
    TransportError,
    open_transport,
    parse_transport_url,
)

MESSAGE = (
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n"
    b".leading dot\r\nFrom the start\r\nend\r\n"
)


def test_urls_are_parsed_strictly() -> None:
    spec = parse_transport_url("smtp://mailer@smtp.example.org:587?starttls=true")
    assert (spec.scheme, spec.host, spec.port, spec.user, spec.starttls) == (
        "smtp",
        "smtp.example.org",
        587,
        "mailer",
        True,
    )
    assert parse_transport_url("smtps://smtp.example.org").port == 465
    assert parse_transport_url("maildir:outbox").path == "outbox"
    assert parse_transport_url("mbox:/var/mail/digest").path == "/var/mail/digest"
    for bad, words in [
        ("smtp://user:secret@host:25", "DIGEST_SMTP_PASSWORD"),
        ("ftp://host", "unknown transport scheme"),
        ("smtp://host:99999", "port"),
        ("smtp://host:25?tls=yes", "unknown option"),
        ("smtps://host?starttls=true", "already TLS"),
        ("maildir:", "needs a path"),
        ("", "no transport"),
    ]:
        with pytest.raises(DigestError, match=words):
            parse_transport_url(bad)


@pytest.mark.parametrize(
    "url",
    [
        "smpt://mailer:hunter2@smtp.example.org:587",
        "SMTPS+x://mailer:hunter2@smtp.example.org",
        "smtp//mailer:hunter2@smtp.example.org",
        "smtp:mailer:hunter2@smtp.example.org",
        "smtp://mailer:hunter2@smtp.example.org:99999",
        "smtp://mailer:hunter2@smtp.example.org:25?tls=yes",
    ],
)
def test_a_bad_transport_url_never_echoes_its_password(url: str) -> None:
    with pytest.raises(DigestError) as caught:
        parse_transport_url(url)
    assert "hunter2" not in str(caught.value)
    assert "mailer" not in str(caught.value)


def test_maildir_transport_writes_one_file_per_message(tmp_path: Path) -> None:
    config = Config(base_dir=tmp_path)
    transport = open_transport("maildir:out", config)
    assert transport.send(MESSAGE, "a@example.org", "b@example.net").ok
    transport.close()
    box = mailbox.Maildir(str(tmp_path / "out"), create=False)
    (msg,) = list(box)
    assert msg["Subject"] == "hi"
    assert msg.get_payload().startswith(".leading dot\n")


def test_mbox_transport_appends_with_from_lines_escaped(tmp_path: Path) -> None:
    config = Config(base_dir=tmp_path)
    transport = open_transport("mbox:digest.mbox", config)
    for _ in range(2):
        assert transport.send(MESSAGE, "a@example.org", "b@example.net").ok
    transport.close()
    messages = list(mailbox.mbox(str(tmp_path / "digest.mbox")))
    assert len(messages) == 2
    assert messages[0]["To"] == "b@example.net"
    assert ">From the start" in messages[0].get_payload()


def test_a_send_into_maildir_and_mbox(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=3)
    report = deliver_issue(setup.db, setup.config, 1, transport_url="mbox:all.mbox", now=AFTER)
    assert report.sent == 3
    box = list(mailbox.mbox(str(setup.path / "all.mbox")))
    assert sorted(m["To"].split("<")[-1].rstrip(">") for m in box) == sorted(
        s["email"] for s in setup.subscribers
    )
    setup2 = make_setup(tmp_path / "ws2", subscribers=3)
    assert deliver_issue(setup2.db, setup2.config, 1, now=AFTER).sent == 3  # the default maildir:outbox
    assert len(list((setup2.path / "outbox" / "new").iterdir())) == 3


def test_smtp_send_and_dot_stuffing_round_trip() -> None:
    for pipelining in (True, False):
        with SMTPServer(Handler(pipelining=pipelining)) as server:
            transport = SMTPTransport(parse_transport_url(server.url), timeout=5)
            reply = transport.send(MESSAGE, "a@example.org", "b@example.net")
            assert reply.ok and reply.code == 250
            assert transport.send(MESSAGE, "a@example.org", "c@example.net").ok
            transport.close()
        got = server.handler.received
        assert [r.rcpt_tos for r in got] == [["b@example.net"], ["c@example.net"]]
        assert server.handler.sessions == 1  # one persistent connection
        body = message_from_bytes(got[0].data, policy=policy.default).get_content()
        assert body.startswith(".leading dot")


def test_required_starttls_that_the_server_does_not_offer_aborts() -> None:
    with SMTPServer() as server:
        url = server.url + "?starttls=true"
        transport = SMTPTransport(parse_transport_url(url), timeout=5)
        with pytest.raises(TransportError, match="does not offer STARTTLS"):
            transport.send(MESSAGE, "a@example.org", "b@example.net")
    assert server.handler.received == []


def test_tls_certificates_are_verified(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed for a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context)
    controller.start()
    try:
        url = f"smtp://127.0.0.1:{port}?starttls=true"
        with pytest.raises(TransportError, match="certificate not trusted"):
            SMTPTransport(parse_transport_url(url), timeout=5).connect()
        trusting = ssl.create_default_context(cafile=str(cert))
        transport = SMTPTransport(parse_transport_url(url), timeout=5, ssl_context=trusting)
        assert transport.send(MESSAGE, "a@example.org", "b@example.net").ok
        assert isinstance(transport.sock, ssl.SSLSocket)
        transport.close()
    finally:
        controller.stop()
    assert len(handler.received) == 1

    # smtps: TLS from the first byte, verified the same way.
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        url = f"smtps://127.0.0.1:{port}"
        with pytest.raises(TransportError, match="certificate not trusted"):
            SMTPTransport(parse_transport_url(url), timeout=5).connect()
        transport = SMTPTransport(parse_transport_url(url), timeout=5, ssl_context=trusting)
        assert transport.send(MESSAGE, "a@example.org", "b@example.net").ok
        transport.close()
    finally:
        controller.stop()


def test_a_user_without_a_password_in_the_environment_is_a_clear_error() -> None:
    with SMTPServer() as server:
        url = server.url.replace("smtp://", "smtp://alice@")
        transport = open_transport(url, Config())
        with pytest.raises(TransportError, match="DIGEST_SMTP_PASSWORD"):
            transport.send(MESSAGE, "a@example.org", "b@example.net")


def test_pipelined_next_envelope_and_abandoning_it() -> None:
    with SMTPServer() as server:
        transport = SMTPTransport(parse_transport_url(server.url), timeout=5)
        a = "a@example.org"
        assert transport.send(MESSAGE, a, "b1@example.net", next_envelope=(a, "b2@example.net")).ok
        assert transport.send(MESSAGE, a, "b2@example.net", next_envelope=(a, "b3@example.net")).ok
        # Announced b3 but sends b4: the announced transaction is abandoned, never completed.
        assert transport.send(MESSAGE, a, "b4@example.net").ok
        transport.close()
    assert [r.rcpt_tos for r in server.handler.received] == [
        ["b1@example.net"],
        ["b2@example.net"],
        ["b4@example.net"],
    ]
    assert server.handler.sessions == 2


class StalledReader:
    """An SMTP server that accepts one message's envelope, says 354, and then stops reading."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(b"220 stalled ESMTP\r\n")
            buf = b""
            while b"DATA\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
                if buf.startswith(b"EHLO") and b"\r\n" in buf:
                    conn.sendall(b"250-stalled\r\n250 PIPELINING\r\n")
                    buf = buf[buf.index(b"\r\n") + 2 :]
            conn.sendall(b"250 ok\r\n250 ok\r\n354 go on\r\n")
            self.done.wait(30)  # and read nothing more


def test_a_server_that_stops_reading_mid_message_ends_the_send_within_the_timeout() -> None:
    """Plain connections leave timeouts to the kernel (SO_SNDTIMEO/SO_RCVTIMEO): a send that
    makes no progress still ends, as with Python's own timeouts."""
    server = StalledReader()
    transport = SMTPTransport(parse_transport_url(f"smtp://127.0.0.1:{server.port}"), timeout=0.3)
    huge = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 40_000  # 40 MB: more than the buffers hold
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionLost, match=r"no progress sending for 0\.3s"):
            transport.send(huge, "a@example.org", "b@example.net")
    finally:
        server.done.set()
    assert time.monotonic() - started < 5
    assert transport.sock is None  # dropped, not reused


def test_plain_connections_use_kernel_timeouts_and_tls_ones_pythons() -> None:
    with SMTPServer(Handler()) as server:
        transport = SMTPTransport(parse_transport_url(server.url), timeout=2.5)
        transport.connect()
        assert transport.sock is not None and transport.sock.gettimeout() is None
        raw = transport.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("@ll"))
        assert struct.unpack("@ll", raw) == (2, 500_000)
        assert transport.send(MESSAGE, "a@example.org", "b@example.net").ok
        transport.close()
