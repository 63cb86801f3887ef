"""`digest doctor` on what receivers judge the sender by: the DKIM key's size (a key under 1024
bits is refused when the config loads), the sending address's forward-confirmed reverse DNS
and EHLO name, and BIMI readiness — against a real DNS server (dnslib) on loopback."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from dnslib import PTR, QTYPE, RR, TXT, A
from dnslib.server import BaseResolver, DNSServer
from smtp_server import free_port
from test_doctor import FROM_DOMAIN, _doctor, _Quiet, _workspace

from digest.cli import cli
from digest.config import load_config
from digest.errors import ConfigError

SENDING_IP = "192.0.2.25"  # TEST-NET-1: only ever looked up in the test's own DNS server
REVERSE = "25.2.0.192.in-addr.arpa"


class _Zone(BaseResolver):
    """Answers from a dict ((name, type) → rdata list); NXDOMAIN for a name it does not know."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list] = {}

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if not any(known == name for known, _ in self.records):
            reply.header.rcode = 3  # NXDOMAIN
            return reply
        kind = QTYPE[request.q.qtype]
        for rdata in self.records.get((name, kind), []):
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, kind), rdata=rdata, ttl=60))
        return reply

    def txt(self, name: str, *values: str) -> None:
        self.records[name, "TXT"] = [TXT(value.encode()) for value in values]


@pytest.fixture
def zone() -> Iterator[tuple[_Zone, str]]:
    """A DNS server on a free loopback port, serving the From domain's good records."""
    served = _Zone()
    served.txt(FROM_DOMAIN, "v=spf1 ip4:192.0.2.25 -all")
    served.txt(f"_dmarc.{FROM_DOMAIN}", f"v=DMARC1; p=reject; rua=mailto:dmarc@{FROM_DOMAIN}")
    port = free_port()
    servers = [
        DNSServer(served, address="127.0.0.1", port=port, tcp=tcp, logger=_Quiet()) for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    yield served, f"127.0.0.1:{port}"
    for server in servers:
        server.stop()


def _key(folder: Path, bits: int) -> tuple[Path, str]:
    """An RSA key of ``bits`` bits (mode 600) and the DKIM record publishing it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test key")
    key = folder / f"dkim{bits}.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), str(bits)], check=True, capture_output=True)
    key.chmod(0o600)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def test_a_dkim_key_under_1024_bits_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    key, _record = _key(tmp_path, 512)
    folder = _workspace(tmp_path, transport="maildir:outbox", key=key)
    # Before: it loaded, every message was signed with it, and the doctor said ✔.
    with pytest.raises(ConfigError, match="an RSA key of 512 bits; receivers reject DKIM keys under 1024"):
        load_config(folder / "digest.toml")
    doctor = CliRunner().invoke(cli, ["--config", str(folder / "digest.toml"), "doctor"])
    assert doctor.exit_code == 1 and doctor.output.startswith("✘ config: ") and "512 bits" in doctor.output
    send = CliRunner().invoke(cli, ["--config", str(folder / "digest.toml"), "send", "1"])
    assert send.exit_code == 1 and "512 bits" in send.output and "Traceback" not in send.output


def test_a_dkim_key_under_2048_bits_is_a_warning(zone, tmp_path: Path) -> None:
    served, resolver = zone
    key, record = _key(tmp_path, 1024)
    served.txt(f"digest._domainkey.{FROM_DOMAIN}", record)
    _code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox", key=key), "--resolver", resolver)
    assert checks["dkim"]["status"] == "warn" and "1024 bits are weak" in checks["dkim"]["detail"]
    assert "openssl genrsa" in checks["dkim"]["fix"]
    assert checks["dmarc"]["status"] == "ok"  # a weak key still signs: DKIM passes


@pytest.mark.parametrize(
    ("ptr", "forward", "status", "words"),
    [
        (FROM_DOMAIN, SENDING_IP, "ok", "192.0.2.25 ↔ news.good.test: forward-confirmed"),
        (None, None, "warn", "192.0.2.25 has no reverse DNS (PTR)"),
        (FROM_DOMAIN, "192.0.2.99", "warn", "does not resolve back to 192.0.2.25"),
        ("vps-25.hosting.test", SENDING_IP, "warn", "EHLO says news.good.test, but 192.0.2.25 is vps-25"),
    ],
)
def test_the_sending_address_has_forward_confirmed_reverse_dns_naming_the_ehlo_name(
    zone, tmp_path: Path, ptr: str | None, forward: str | None, status: str, words: str
) -> None:
    served, resolver = zone
    if ptr is not None:
        served.records[REVERSE, "PTR"] = [PTR(ptr + ".")]
        served.records[ptr, "A"] = [A(forward)]
    folder = _workspace(tmp_path, transport="maildir:outbox")
    _code, checks = _doctor(folder, "--resolver", resolver, "--sending-ip", SENDING_IP)
    assert checks["sending_host"]["status"] == status, checks["sending_host"]
    assert words in checks["sending_host"]["detail"], checks["sending_host"]


def test_without_an_address_a_file_transport_has_no_sending_host_to_check(zone, tmp_path: Path) -> None:
    _served, resolver = zone
    _code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox"), "--resolver", resolver)
    assert checks["sending_host"]["status"] == "ok" and "no mail leaves" in checks["sending_host"]["detail"]


@pytest.mark.parametrize(
    ("dmarc", "status", "words"),
    [
        ("v=DMARC1; p=reject", "ok", "ready for BIMI: _dmarc.news.good.test p=reject at 100 %"),
        ("v=DMARC1; p=quarantine; pct=100", "ok", "ready for BIMI"),
        ("v=DMARC1; p=quarantine; pct=50", "warn", "not ready for BIMI (no brand logo in inboxes)"),
        ("v=DMARC1; p=none", "warn", "p=none"),
    ],
)
def test_bimi_readiness_follows_the_dmarc_policy(
    zone, tmp_path: Path, dmarc: str, status: str, words: str
) -> None:
    served, resolver = zone
    served.txt(f"_dmarc.{FROM_DOMAIN}", dmarc)
    _code, checks = _doctor(_workspace(tmp_path, transport="maildir:outbox"), "--resolver", resolver)
    assert checks["bimi"]["status"] == status and words in checks["bimi"]["detail"], checks["bimi"]
