"""`digest doctor` against real servers on loopback: a DNS server (dnslib) serving good and broken
SPF/DKIM/DMARC records, aiosmtpd with and without STARTTLS and AUTH, and the web app."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from conftest import new_workspace
from dnslib import QTYPE, RR, TXT
from dnslib.server import BaseResolver, DNSServer
from smtp_server import Handler, _authenticator, free_port

from digest.cli import cli
from digest.config import load_config
from digest.doctor.dns import make_resolver, txt_records
from digest.doctor.transport import check_transport

FROM_DOMAIN = "news.good.test"


class _Quiet:
    """A dnslib logger that logs nothing (its default prints every query to stdout)."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


class _Zone(BaseResolver):
    """Answers TXT queries from a dict (name → records); NXDOMAIN for anything else."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if name not in self.records:
            reply.header.rcode = 3  # NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.TXT:
            for record in self.records[name]:
                data = record.encode()
                chunks = [data[i : i + 255] for i in range(0, len(data), 255)]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply


@pytest.fixture(scope="module")
def dns_server() -> Iterator[tuple[_Zone, str]]:
    """A DNS server on a free loopback port (UDP and TCP); yields the zone and HOST:PORT."""
    zone = _Zone()
    port = free_port()
    servers = [
        DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp, logger=_Quiet()) for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    yield zone, f"127.0.0.1:{port}"
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def dkim_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A DKIM key file, its TXT record, and the record of another key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test key")
    folder = tmp_path_factory.mktemp("dkim")
    records = []
    for name in ("dkim.pem", "other.pem"):
        key = folder / name
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        public = subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
        ).stdout
        records.append("v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode())
    key = folder / "dkim.pem"
    key.chmod(0o600)
    return key, records[0], records[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _good_zone(zone: _Zone, dkim_record: str) -> None:
    zone.records.clear()
    zone.records[FROM_DOMAIN] = ["v=spf1 ip4:127.0.0.1 -all", "google-site-verification=abc"]
    zone.records[f"digest._domainkey.{FROM_DOMAIN}"] = [dkim_record]
    zone.records[f"_dmarc.{FROM_DOMAIN}"] = [f"v=DMARC1; p=reject; rua=mailto:dmarc@{FROM_DOMAIN}"]


def _workspace(tmp_path: Path, *, transport: str, key: Path | None = None, base_url: str = "") -> Path:
    dkim = f'[dkim]\ndomain = "{FROM_DOMAIN}"\nselector = "digest"\nkey_file = "{key}"\n' if key else ""
    config = (
        "[publication]\n"
        f'from = "Good News <letters@{FROM_DOMAIN}>"\n'
        f'base_url = "{base_url or "https://" + FROM_DOMAIN}"\n'
        "[delivery]\n"
        f'transport = "{transport}"\n' + dkim + "[editions.daily]\n"
    )
    return new_workspace(tmp_path / "ws", config=config, db=False).path


def _doctor(folder: Path, *args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(cli, ["--config", str(folder / "digest.toml"), "doctor", "--json", *args])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.output)
    assert data["ok"] is (result.exit_code == 0)
    return result.exit_code, {check["name"]: check for check in data["checks"]}


# --- DNS -------------------------------------------------------------------------------------


def test_good_spf_dkim_and_dmarc_pass(dns_server, dkim_pair, tmp_path: Path) -> None:
    zone, address = dns_server
    key, record, _other = dkim_pair
    _good_zone(zone, record)
    folder = _workspace(tmp_path, transport="maildir:outbox", key=key)
    _code, checks = _doctor(folder, "--resolver", address)
    assert checks["spf"]["status"] == "ok", checks["spf"]
    assert checks["dkim"]["status"] == "ok", checks["dkim"]
    assert "digest._domainkey.news.good.test publishes the public part" in checks["dkim"]["detail"]
    assert checks["dmarc"]["status"] == "ok" and "p=reject" in checks["dmarc"]["detail"]


def test_a_long_dkim_record_in_several_strings_is_joined(dns_server, dkim_pair) -> None:
    zone, address = dns_server
    _key, record, _other = dkim_pair
    _good_zone(zone, record)
    [found] = txt_records(make_resolver(address, 2.0), f"digest._domainkey.{FROM_DOMAIN}")
    assert found == record and len(record) > 255


@pytest.mark.parametrize(
    ("spf", "status", "words"),
    [
        (None, "fail", "no SPF record at news.good.test"),
        (["v=spf1 a -all", "v=spf1 mx -all"], "fail", "2 SPF records"),
        (["v=spf1 +all"], "fail", "lets any server send as you"),
        (["v=spf1 a"], "warn", "does not say what to do with other servers"),
    ],
)
def test_broken_spf_is_named_with_its_fix(dns_server, dkim_pair, tmp_path: Path, spf, status, words) -> None:
    zone, address = dns_server
    key, record, _other = dkim_pair
    _good_zone(zone, record)
    if spf is None:
        del zone.records[FROM_DOMAIN]
    else:
        zone.records[FROM_DOMAIN] = spf
    code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox", key=key), "--resolver", address)
    assert checks["spf"]["status"] == status and words in checks["spf"]["detail"], checks["spf"]
    assert checks["spf"]["fix"]
    if status == "fail":
        assert code == 1


def test_a_dkim_record_of_another_key_fails_and_dmarc_reject_then_fails_too(
    dns_server, dkim_pair, tmp_path: Path
) -> None:
    zone, address = dns_server
    key, _record, other = dkim_pair
    _good_zone(zone, other)
    del zone.records[FROM_DOMAIN]  # no SPF either: nothing aligns
    code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox", key=key), "--resolver", address)
    assert code == 1
    assert checks["dkim"]["status"] == "fail"
    assert "is not the public part of" in checks["dkim"]["detail"]
    assert "digest._domainkey.news.good.test" in checks["dkim"]["fix"]
    assert checks["dmarc"]["status"] == "fail" and "receivers will reject" in checks["dmarc"]["detail"]


def test_missing_dkim_and_dmarc_records(dns_server, dkim_pair, tmp_path: Path) -> None:
    zone, address = dns_server
    key, record, _other = dkim_pair
    _good_zone(zone, record)
    del zone.records[f"digest._domainkey.{FROM_DOMAIN}"]
    del zone.records[f"_dmarc.{FROM_DOMAIN}"]
    zone.records[f"_dmarc.{FROM_DOMAIN}"] = ["v=DMARC1; rua=mailto:x@news.good.test"]  # no policy
    _code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox", key=key), "--resolver", address)
    assert checks["dkim"]["status"] == "fail" and "no DKIM record at" in checks["dkim"]["detail"]
    assert checks["dmarc"]["status"] == "fail" and "no valid p= policy" in checks["dmarc"]["detail"]
    del zone.records[f"_dmarc.{FROM_DOMAIN}"]
    _code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox", key=key), "--resolver", address)
    assert checks["dmarc"]["status"] == "fail" and "no DMARC record" in checks["dmarc"]["detail"]
    assert '"v=DMARC1; p=none;' in checks["dmarc"]["fix"]


def test_a_subdomain_falls_back_to_the_organisations_dmarc_record(
    dns_server, dkim_pair, tmp_path: Path
) -> None:
    zone, address = dns_server
    key, record, _other = dkim_pair
    _good_zone(zone, record)
    zone.records["_dmarc.good.test"] = zone.records.pop(f"_dmarc.{FROM_DOMAIN}")
    _code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox", key=key), "--resolver", address)
    assert checks["dmarc"]["status"] == "ok" and "_dmarc.good.test" in checks["dmarc"]["detail"]


def test_a_dns_server_that_does_not_answer_is_one_failure(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    folder = _workspace(tmp_path, transport="maildir:outbox")
    code, checks = _doctor(folder, "--resolver", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert code == 1
    assert checks["dns"]["status"] == "fail" and "cannot query DNS" in checks["dns"]["detail"]
    assert "spf" not in checks


# --- SMTP ------------------------------------------------------------------------------------


def _controller(
    certificate=None, *, starttls: bool = False, users: dict[str, str] | None = None
) -> Controller:
    kwargs: dict = {}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        kwargs.update(tls_context=context, require_starttls=True)
    if users is not None:
        kwargs.update(authenticator=_authenticator(users), auth_required=True, auth_require_tls=starttls)
    return Controller(Handler(), hostname="127.0.0.1", port=free_port(), **kwargs)


def _transport_check(tmp_path: Path, url: str):
    return check_transport(load_config(_workspace(tmp_path, transport=url) / "digest.toml"), timeout=5)


def test_a_plain_server_answers_without_a_message(tmp_path: Path) -> None:
    controller = _controller()
    controller.start()
    try:
        check = _transport_check(tmp_path, f"smtp://127.0.0.1:{controller.port}")
    finally:
        controller.stop()
    assert check.status == "ok", check
    assert "connected, EHLO (no message sent)" in check.detail
    assert controller.handler.received == []


def test_starttls_and_auth_with_the_configured_user(
    tmp_path: Path, certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test certificate
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret-pass")
    controller = _controller(certificate, starttls=True, users={"mailer": "s3cret-pass"})
    controller.start()
    try:
        url = f"smtp://mailer@127.0.0.1:{controller.port}?starttls=true"
        good = _transport_check(tmp_path, url)
        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
        wrong = _transport_check(tmp_path, url)
        monkeypatch.delenv("DIGEST_SMTP_PASSWORD")
        missing = _transport_check(tmp_path, url)
        monkeypatch.delenv("SSL_CERT_FILE")
        untrusted = _transport_check(tmp_path, url)
    finally:
        controller.stop()
    assert good.status == "ok" and "EHLO, STARTTLS, AUTH as mailer" in good.detail, good
    assert wrong.status == "fail" and "rejected the login for 'mailer'" in wrong.detail, wrong
    assert missing.status == "fail" and "DIGEST_SMTP_PASSWORD is not" in missing.detail
    assert untrusted.status == "fail" and "certificate not trusted" in untrusted.detail, untrusted
    assert controller.handler.received == []


def test_starttls_asked_of_a_server_without_it(tmp_path: Path) -> None:
    controller = _controller()
    controller.start()
    try:
        check = _transport_check(tmp_path, f"smtp://127.0.0.1:{controller.port}?starttls=true")
    finally:
        controller.stop()
    assert check.status == "fail" and "does not offer STARTTLS" in check.detail


def test_auth_asked_of_a_server_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pw-123456")
    controller = _controller()
    controller.start()
    try:
        check = _transport_check(tmp_path, f"smtp://someone@127.0.0.1:{controller.port}")
    finally:
        controller.stop()
    assert check.status == "fail" and "offers no AUTH" in check.detail


class _CramMd5Only(Handler):
    """A server whose only AUTH mechanism is CRAM-MD5, which digest's sends do not speak."""

    async def auth_CRAM__MD5(self, server, args):  # aiosmtpd: "__" stands for "-"
        import hmac

        from aiosmtpd.smtp import AuthResult

        challenge = b"<1.2@doctor.test>"
        answer = await server.challenge_auth(challenge)
        user, _, digest = bytes(answer).partition(b" ")
        good = hmac.new(b"pw-123456", challenge, "md5").hexdigest().encode()
        return AuthResult(success=hmac.compare_digest(digest, good), handled=False, auth_data=user)


def test_a_login_the_sends_cannot_make_is_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """smtplib (the doctor's own session before) logs in with CRAM-MD5 and said ✔; every send then
    failed, since the send engine speaks AUTH PLAIN and LOGIN. The doctor uses the engine's session."""
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pw-123456")
    controller = Controller(
        _CramMd5Only(),
        hostname="127.0.0.1",
        port=free_port(),
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
        auth_require_tls=False,
    )
    controller.start()
    try:
        check = _transport_check(tmp_path, f"smtp://someone@127.0.0.1:{controller.port}")
    finally:
        controller.stop()
    assert check.status == "fail" and "offers no AUTH PLAIN or LOGIN" in check.detail, check
    assert check.fix


def test_no_server_listening(tmp_path: Path) -> None:
    check = _transport_check(tmp_path, f"smtp://127.0.0.1:{free_port()}")
    assert check.status == "fail" and "connection refused" in check.detail
    assert check.fix


# --- the workspace ---------------------------------------------------------------------------


def test_base_url_localhost_fails_only_for_smtp(tmp_path: Path) -> None:
    from digest.doctor.setup import check_base_url

    for transport, status in (("smtp://127.0.0.1:2525", "fail"), ("maildir:outbox", "warn")):
        folder = _workspace(tmp_path, transport=transport, base_url="http://localhost:8080")
        check = check_base_url(load_config(folder / "digest.toml"))
        assert check.status == status and "is not https" in check.detail
    folder = _workspace(tmp_path, transport="smtp://127.0.0.1:2525", base_url="https://127.0.0.1:8443")
    assert check_base_url(load_config(folder / "digest.toml")).status == "fail"


def test_a_secret_value_in_the_config_file_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _workspace(tmp_path, transport="maildir:outbox")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2-hunter2")
    config = folder / "digest.toml"
    config.write_text(config.read_text() + '# smtp password is "hunter2-hunter2"\n')
    _code, checks = _doctor(folder)
    assert checks["secrets"]["status"] == "fail"
    assert "contains the value of DIGEST_SMTP_PASSWORD" in checks["secrets"]["detail"]
    assert "hunter2" not in json.dumps(checks)


def test_a_postgresql_store_with_a_key_file_of_one_host_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.doctor.setup import check_secrets

    folder = _workspace(tmp_path, transport="maildir:outbox")
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    monkeypatch.setenv("DIGEST_DB_URL", "postgresql://digest@db.example.org/digest")
    check = check_secrets(load_config(folder / "digest.toml"))
    assert check.status == "warn" and "a file on this host" in check.detail
    assert "DIGEST_SECRET" in check.fix and not (folder / "digest.key").exists()
    monkeypatch.setenv("DIGEST_SECRET", "s" * 40)
    assert check_secrets(load_config(folder / "digest.toml")).status == "ok"


def test_file_modes_of_the_database_and_keys(tmp_path: Path, dkim_pair) -> None:
    key = tmp_path / "dkim.pem"
    key.write_bytes(dkim_pair[0].read_bytes())
    folder = _workspace(tmp_path, transport="maildir:outbox", key=key)
    db = folder / "digest.db"
    db.write_bytes(b"")
    for path, mode in ((db, 0o600), (key, 0o600)):
        path.chmod(mode)
    _code, checks = _doctor(folder)
    assert checks["file_modes"]["status"] == "ok", checks["file_modes"]
    key.chmod(0o640)
    _code, checks = _doctor(folder)
    assert checks["file_modes"]["status"] == "fail" and "the DKIM key" in checks["file_modes"]["detail"]
    assert checks["file_modes"]["fix"].startswith("chmod 600")
    key.chmod(0o600)
    db.chmod(0o644)
    _code, checks = _doctor(folder)
    assert checks["file_modes"]["status"] == "fail" and "the database" in checks["file_modes"]["detail"]


def test_a_config_that_does_not_load_is_the_only_line(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "digest.toml").write_text("[publication]\nbase_url = 3\n")
    result = CliRunner().invoke(cli, ["--config", str(folder / "digest.toml"), "doctor"])
    assert result.exit_code == 1
    assert result.output.startswith("✘ config: ") and "publication.base_url" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_web_app_answers_at_healthz(tmp_path: Path) -> None:
    from werkzeug.serving import make_server

    from digest.doctor.web import check_web
    from digest.store.database import open_store
    from digest.web import create_app

    folder = _workspace(tmp_path, transport="maildir:outbox")
    config = load_config(folder / "digest.toml")
    open_store(config.db_path)
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config.publication.base_url = f"http://127.0.0.1:{server.server_port}"
        assert check_web(config, timeout=5).status == "ok"
        config.publication.base_url = f"http://127.0.0.1:{server.server_port}/missing"
        check = check_web(config, timeout=5)
        assert check.status == "fail" and "answered 404" in check.detail
    finally:
        server.shutdown()
        thread.join()
    check = check_web(config, timeout=5)
    assert check.status == "fail" and "no answer at" in check.detail


def test_the_latest_issue_is_measured(tmp_path: Path) -> None:
    from test_render_support import fixture_issue, make_store

    from digest.doctor.issue import check_latest_issue

    config, db = make_store(tmp_path / "issue-ws")
    fixture_issue(config, db)
    checks = check_latest_issue(config, timeout=300)
    size = checks[0]
    assert size.name == "issue_size" and size.status == "ok", size
    assert "issue daily/1 (id 1):" in size.detail and "KB of HTML" in size.detail
    spam = checks[1]
    if shutil.which("spamassassin") is None:
        assert spam.status == "warn" and "not installed" in spam.detail
    else:
        assert spam.status == "ok" and "scores" in spam.detail, spam


def test_doctor_text_output_has_a_symbol_and_a_fix_per_line(tmp_path: Path) -> None:
    folder = _workspace(tmp_path, transport=f"smtp://127.0.0.1:{free_port()}", base_url="http://localhost:1")
    env = {**os.environ}
    result = CliRunner().invoke(
        cli, ["--config", str(folder / "digest.toml"), "doctor", "--resolver", f"127.0.0.1:{free_port()}",
              "--timeout", "0.5"], env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert all(line[:2] in ("✔ ", "⚠ ", "✘ ") for line in lines), lines
    failing = [line for line in lines if line.startswith("✘")]
    assert failing and all("; fix: " in line for line in failing)
    assert any(line.startswith("✘ base_url:") for line in lines)


def test_without_a_config_file_doctor_says_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert result.output.startswith("✘ config: no digest.toml here or above; fix: run `digest init`")
    assert list(empty.iterdir()) == []  # doctor made nothing


def test_a_resolver_port_that_is_not_a_number(tmp_path: Path) -> None:
    folder = _workspace(tmp_path, transport="maildir:outbox")
    _code, checks = _doctor(folder, "--resolver", "127.0.0.1:dns")
    assert checks["dns"]["status"] == "fail" and "the port must be a number" in checks["dns"]["detail"]


def test_doctor_with_a_bounce_address_does_not_crash(run_cli, edit_config) -> None:
    edit_config(
        '# unsubscribe_mailto = "unsubscribe@example.org"',
        'bounce_address = "bounces@example.org"',
    )
    result = run_cli("doctor", "--timeout", "1")
    assert "spf" in result.output, result.output
    assert not isinstance(result.exception, ValueError), result.exception
