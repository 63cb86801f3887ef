"""SPF, DKIM and DMARC of the From domain: the records exist and agree with the configuration.

Looked up with dnspython, from the system's resolver or the server given as
``--resolver HOST[:PORT]``. Alignment is judged the relaxed way, approximated as
"one domain is the other or a subdomain of it".
"""

from __future__ import annotations

import base64
import binascii
from email.utils import parseaddr

import dns.exception
import dns.resolver

from digest.config import Config
from digest.dkim_keys import GOOD_BITS, MAKE_KEY, MIN_BITS
from digest.doctor.check import FAIL, OK, WARN, Check
from digest.errors import DigestError
from digest.mail.verp import split_bounce_address


class _Unreachable(Exception):
    """DNS could not be asked (no server answered); the message says why."""


def make_resolver(spec: str | None, timeout: float) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks only ``HOST[:PORT]`` (``[v6]:PORT`` for IPv6)."""
    if not spec:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DigestError("no DNS resolver is configured here; pass --resolver HOST[:PORT]") from None
    else:
        host = spec
        if spec.startswith("["):
            host, _, rest = spec[1:].partition("]")
            port_text = rest.removeprefix(":") or "53"
        elif spec.count(":") == 1:
            host, _, port_text = spec.partition(":")
        else:
            port_text = "53"
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DigestError(f"--resolver {spec!r}: the port must be a number from 1 to 65535")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = int(port_text)
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def txt_records(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT records at ``name``, each one's strings joined; [] when there are none."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise _Unreachable(f"no answer for {name} ({exc})") from None
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tags of a DKIM or DMARC record (keys lower-cased, whitespace dropped)."""
    found = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            found[key.strip().lower()] = "".join(value.split())
    return found


def aligned(a: str, b: str) -> bool:
    """Relaxed alignment, approximated: one domain is the other or a subdomain of it."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower()


def check_dns(config: Config, *, resolver: str | None = None, timeout: float = 10.0) -> list[Check]:
    """SPF of the envelope domain, DKIM at ``selector._domainkey``, DMARC of the From domain."""

    from_domain = _domain(config.publication.from_address)
    if not from_domain:
        return [
            Check("dns", FAIL, "publication.from has no address", "set publication.from = Name <you@domain>")
        ]
    try:
        bounce = split_bounce_address(config)
    except DigestError as exc:
        return [Check("dns", FAIL, str(exc), "set delivery.bounce_address = bounces@your-domain")]
    # The envelope (Return-Path) domain SPF is checked for: the VERP domain, else the From's.
    envelope_domain = bounce[1].lower() if bounce else from_domain
    try:
        dns_resolver = make_resolver(resolver, timeout)
        spf, spf_ok = check_spf(dns_resolver, envelope_domain)
        dkim, dkim_ok = check_dkim(dns_resolver, config)
        dmarc = check_dmarc(
            dns_resolver,
            from_domain,
            spf_aligned=spf_ok and aligned(envelope_domain, from_domain),
            dkim_aligned=dkim_ok and aligned(config.dkim.domain, from_domain),
        )
        bimi = check_bimi(dns_resolver, from_domain)
    except (_Unreachable, DigestError) as exc:
        fix = "check --resolver, or this machine's DNS settings"
        return [Check("dns", FAIL, f"cannot query DNS: {exc}", fix)]
    return [spf, dkim, dmarc, bimi]


def check_spf(resolver: dns.resolver.Resolver, domain: str) -> tuple[Check, bool]:
    """Exactly one ``v=spf1`` record, ending in ``-all`` or ``~all``; returns (check, usable)."""
    records = [r for r in txt_records(resolver, domain) if r.lower().startswith("v=spf1")]
    publish = f'publish one TXT record at {domain}: "v=spf1 include:<your mail provider> -all"'
    if not records:
        return Check("spf", FAIL, f"no SPF record at {domain}", publish), False
    if len(records) > 1:
        return (
            Check(
                "spf",
                FAIL,
                f"{len(records)} SPF records at {domain} (receivers treat that as an error)",
                "merge them into one v=spf1 record",
            ),
            False,
        )
    record = records[0]
    terms = record.lower().split()
    final = next((t for t in reversed(terms) if t.lstrip("+-~?") == "all"), None)
    if final in ("all", "+all"):
        return Check(
            "spf", FAIL, f"{domain}: {record!r} lets any server send as you", "end it with -all or ~all"
        ), False
    if final is None or final == "?all":
        fix = "end the record with -all or ~all"
        if any(t.startswith("redirect=") for t in terms):
            return Check("spf", OK, f"{domain}: {record!r} (redirected)"), True
        return Check(
            "spf", WARN, f"{domain}: {record!r} does not say what to do with other servers", fix
        ), True
    return Check("spf", OK, f"{domain}: {record!r}"), True


def check_dkim(resolver: dns.resolver.Resolver, config: Config) -> tuple[Check, bool]:
    """The TXT record at ``selector._domainkey.domain`` publishes the configured key's public part."""
    dkim = config.dkim
    if not dkim.enabled:
        return (
            Check(
                "dkim",
                WARN,
                "messages are not DKIM-signed (Gmail and Yahoo want bulk mail signed)",
                "set [dkim] domain, selector and key_file",
            ),
            False,
        )
    name = f"{dkim.selector}._domainkey.{dkim.domain}"
    try:
        configured = _public_key(config.path(dkim.key_file))
    except DigestError as exc:
        return Check("dkim", FAIL, str(exc), "point dkim.key_file at the PEM private key"), False
    publish = f'publish TXT at {name}: "v=DKIM1; k=rsa; p=<the public key of {dkim.key_file}>"'
    records = [r for r in txt_records(resolver, name) if "p=" in r]
    if not records:
        return Check("dkim", FAIL, f"no DKIM record at {name}", publish), False
    found = tags(records[0])
    if not found.get("p"):
        return Check("dkim", FAIL, f"the DKIM key at {name} is revoked (empty p=)", publish), False
    try:
        published = _parse_public(base64.b64decode(found["p"], validate=True))
    except (binascii.Error, ValueError):
        return Check("dkim", FAIL, f"the DKIM record at {name} holds no readable RSA key", publish), False
    if published != configured:
        return Check(
            "dkim", FAIL, f"the key at {name} is not the public part of {dkim.key_file}", publish
        ), False
    bits = configured[0].bit_length()
    renew = f"make a new key ({MAKE_KEY}), then switch dkim.key_file (a new selector lets both overlap)"
    if bits < MIN_BITS:
        detail = f"{dkim.key_file} is an RSA key of {bits} bits: receivers reject keys under {MIN_BITS} bits"
        return Check("dkim", FAIL, detail, renew), False
    if bits < GOOD_BITS:
        detail = f"{name} publishes {dkim.key_file}, but its {bits} bits are weak (use {GOOD_BITS})"
        return Check("dkim", WARN, detail, renew), True
    return Check("dkim", OK, f"{name} publishes the public part of {dkim.key_file} ({bits} bits)"), True


def _public_key(path) -> tuple[int, int]:
    """(modulus, exponent) of the RSA private key in ``path``."""
    import dkim.crypto  # lazy: start-up

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DigestError(f"dkim.key_file {path}: cannot read ({exc.strerror})") from None
    try:
        key = dkim.crypto.parse_pem_private_key(data)
    except Exception:  # noqa: BLE001 - dkimpy raises several kinds for a key it cannot read
        raise DigestError(f"dkim.key_file {path}: not a PEM RSA private key") from None
    return key["modulus"], key["publicExponent"]


def _parse_public(der: bytes) -> tuple[int, int]:
    import dkim.crypto  # lazy: start-up

    try:
        key = dkim.crypto.parse_public_key(der)
    except Exception:  # noqa: BLE001 - dkimpy raises several kinds for a key it cannot read
        raise ValueError("unreadable key") from None
    return key["modulus"], key["publicExponent"]


def check_dmarc(
    resolver: dns.resolver.Resolver, domain: str, *, spf_aligned: bool, dkim_aligned: bool
) -> Check:
    """One ``v=DMARC1`` record for the From domain (or its parent), and a policy the mail passes."""
    name, records = _dmarc_record(resolver, domain)
    publish = f'publish TXT at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"'
    if not records:
        return Check(
            "dmarc", FAIL, f"no DMARC record at _dmarc.{domain} (Gmail and Yahoo require one)", publish
        )
    if len(records) > 1:
        return Check("dmarc", FAIL, f"{len(records)} DMARC records at {name}", "keep exactly one")
    policy = tags(records[0]).get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return Check("dmarc", FAIL, f"{name}: {records[0]!r} has no valid p= policy", publish)
    if not (spf_aligned or dkim_aligned):
        if policy == "none":
            return Check(
                "dmarc",
                WARN,
                f"{name}: p=none, but neither SPF nor DKIM passes for {domain}",
                "fix SPF and DKIM above before you tighten the policy",
            )
        return Check(
            "dmarc",
            FAIL,
            f"{name}: p={policy}, but neither SPF nor DKIM passes aligned with {domain}: receivers will "
            f"{'reject' if policy == 'reject' else 'junk'} the mail",
            "fix SPF or DKIM above (DKIM with dkim.domain = the From domain is the sure way)",
        )
    return Check(
        "dmarc", OK, f"{name}: p={policy}, and {'DKIM' if dkim_aligned else 'SPF'} aligns with {domain}"
    )


def _dmarc_record(resolver: dns.resolver.Resolver, domain: str) -> tuple[str, list[str]]:
    """(name asked, its ``v=DMARC1`` records): the domain's, else its organisational parent's."""
    name = f"_dmarc.{domain}"
    records = [r for r in txt_records(resolver, name) if r.lower().startswith("v=dmarc1")]
    if not records and domain.count(".") > 1:
        name = "_dmarc." + domain.split(".", 1)[1]  # the organisational domain's policy covers subdomains
        records = [r for r in txt_records(resolver, name) if r.lower().startswith("v=dmarc1")]
    return name, records


def check_bimi(resolver: dns.resolver.Resolver, domain: str) -> Check:
    """BIMI readiness: mailbox providers show a brand logo only for a From domain whose DMARC
    policy is ``quarantine`` or ``reject`` for all its mail (``pct=100``, the default)."""
    name, records = _dmarc_record(resolver, domain)
    found = tags(records[0]) if len(records) == 1 else {}
    policy, pct = found.get("p", "").lower(), found.get("pct", "100")
    logo = [r for r in txt_records(resolver, f"default._bimi.{domain}") if r.lower().startswith("v=bimi1")]
    if policy in ("quarantine", "reject") and pct == "100":
        if logo:
            return Check(
                "bimi", OK, f"ready for BIMI: {name} p={policy} at 100 %, default._bimi.{domain} set"
            )
        return Check(
            "bimi",
            OK,
            f"ready for BIMI: {name} p={policy} at 100 % (no logo published yet)",
            f'to show your logo, publish TXT at default._bimi.{domain}: "v=BIMI1; l=https://…/logo.svg"',
        )
    now = f"p={policy or 'missing'}" + (f", pct={pct}" if pct != "100" else "")
    return Check(
        "bimi",
        WARN,
        f"not ready for BIMI (no brand logo in inboxes): {name} {now}",
        "once SPF and DKIM pass, set p=quarantine or p=reject at pct=100 (BIMI requires it)",
    )
