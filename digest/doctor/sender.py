"""The sending host as receivers see it: forward-confirmed reverse DNS and the EHLO name.

Receivers look up the connecting address's PTR name, then that name's addresses: when
they lead back to the address (forward-confirmed reverse DNS) and the EHLO name is that
name, the host is who it says it is; otherwise much mail is junked or refused. The
address checked is the one given (``digest doctor --sending-ip``), else the one this
machine uses to reach the SMTP relay. A relay on this machine (a local Postfix) is
itself the sending host: its address cannot be guessed from here.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.resolver
import dns.reversename

from digest.config import Config
from digest.doctor.check import OK, WARN, Check
from digest.doctor.dns import make_resolver
from digest.errors import DigestError
from digest.mail.transports.registry import parse_transport_url
from digest.mail.transports.smtp import helo_name


def check_sending_host(
    config: Config, *, address: str | None = None, resolver: str | None = None, timeout: float = 10.0
) -> Check:
    """⚠ unless the sending address's PTR name resolves back to it and is the EHLO name."""
    ehlo = helo_name(config)
    if address is None:
        try:
            spec = parse_transport_url(config.delivery.transport)
        except DigestError:
            return Check("sending_host", OK, "no SMTP relay configured: nothing to check")  # transport says
        if not spec.host:
            return Check("sending_host", OK, f"{spec.describe()}: no mail leaves from here, nothing to check")
        address = _local_address(spec.host, spec.port)
        if address is None:
            return Check("sending_host", WARN, f"cannot tell which address reaches {spec.host}", _GIVE)
        if ipaddress.ip_address(address).is_loopback:
            detail = f"the relay {spec.host} is on this machine: its own address is what receivers check"
            return Check("sending_host", OK, detail, _GIVE)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise DigestError(f"--sending-ip {address!r} is not an IP address") from None
    lookup = make_resolver(resolver, timeout)
    names = _answers(lookup, dns.reversename.from_address(str(ip)).to_text(), "PTR")
    if not names:
        fix = (
            f"ask whoever runs {ip} (host or ISP) for a PTR record naming {ehlo}, with an A/AAAA record back"
        )
        return Check("sending_host", WARN, f"{ip} has no reverse DNS (PTR): receivers distrust it", fix)
    confirmed = [n for n in names if str(ip) in _answers(lookup, n, "AAAA" if ip.version == 6 else "A")]
    if not confirmed:
        detail = f"{ip} is named {names[0]}, but {names[0]} does not resolve back to {ip}"
        return Check("sending_host", WARN, detail, f"publish an A/AAAA record {names[0]} → {ip}")
    if ehlo not in confirmed:
        detail = f"EHLO says {ehlo}, but {ip} is {confirmed[0]} (forward-confirmed)"
        fix = f"point the PTR of {ip} at {ehlo} (digest's EHLO name: the From domain), with {ehlo} → {ip}"
        return Check("sending_host", WARN, detail, fix)
    return Check("sending_host", OK, f"{ip} ↔ {ehlo}: forward-confirmed reverse DNS, and the EHLO name")


_GIVE = "pass --sending-ip with the public address mail leaves from to check its reverse DNS"


def _answers(resolver: dns.resolver.Resolver, name: str, kind: str) -> list[str]:
    """The answers to ``name``/``kind`` as lower-case text without the final dot; [] when none."""
    try:
        answer = resolver.resolve(name, kind)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise DigestError(f"cannot query DNS for {name} ({exc})") from None
    return [rdata.to_text().rstrip(".").lower() for rdata in answer]


def _local_address(host: str, port: int) -> str | None:
    """The address this machine uses to reach ``host`` (a UDP "connect" sends no packet)."""
    try:
        infos = socket.getaddrinfo(host, port or 25, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            try:
                sock.connect(sockaddr)
            except OSError:
                continue
            return str(sock.getsockname()[0])
    return None
