"""The owner of ``dmarc_reports``, ``dmarc_records`` and ``dmarc_messages``: every SQL for them is here."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from digest.errors import DigestError
from digest.store.database import iso, transaction


@dataclass(frozen=True)
class IpFigures:
    """What the reports say about one sending IP over a period."""

    ip: str
    messages: int
    dkim_pass: int  # messages whose DKIM result aligned with the From domain
    spf_pass: int  # messages whose SPF result aligned
    ours: bool | None  # None: no [dmarc] our_ips configured, so unknown

    @property
    def dkim_rate(self) -> float:
        """DKIM alignment pass rate, 0..1."""
        return self.dkim_pass / self.messages if self.messages else 0.0

    @property
    def spf_rate(self) -> float:
        """SPF alignment pass rate, 0..1."""
        return self.spf_pass / self.messages if self.messages else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures for ``--json``."""
        return {
            "ip": self.ip,
            "messages": self.messages,
            "dkim_pass_rate": round(self.dkim_rate, 4),
            "spf_pass_rate": round(self.spf_rate, 4),
            "ours": self.ours,
        }


def message_outcome(db: sqlite_utils.Database, key: str) -> str | None:
    """How the mailbox message ``key`` was handled before, if it was: stored, duplicate or rejected."""
    row = db.execute("SELECT outcome FROM dmarc_messages WHERE message_key = ?", [key]).fetchone()
    return row[0] if row else None


def record_message(db: sqlite_utils.Database, key: str, source: str, outcome: str, at: datetime) -> None:
    """Remember that the mailbox message ``key`` was read, and what came of it."""
    db.execute(
        "INSERT OR REPLACE INTO dmarc_messages (message_key, source, outcome, processed_at)"
        " VALUES (?, ?, ?, ?)",
        [key, source, outcome, iso(at)],
    )


def store_report(db: sqlite_utils.Database, report: dict[str, Any], key: str, at: datetime) -> bool:
    """Store one parsed aggregate report (parsedmarc's dict) and its records, in one transaction.

    Returns False, storing nothing, when the same organisation's report id is already stored.
    """
    meta = report["report_metadata"]
    org, report_id = str(meta["org_name"] or "?"), str(meta["report_id"] or "?")
    with transaction(db):
        if db.execute(
            "SELECT 1 FROM dmarc_reports WHERE org = ? AND report_id = ?", [org, report_id]
        ).fetchone():
            return False
        cursor = db.execute(
            "INSERT INTO dmarc_reports (org, report_id, domain, begin_at, end_at, message_key, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                org,
                report_id,
                str(report["policy_published"]["domain"]),
                _utc(meta["begin_date"]),
                _utc(meta["end_date"]),
                key,
                iso(at),
            ],
        )
        rows = [
            [
                cursor.lastrowid,
                str(record["source"]["ip_address"]),
                int(record["count"]),
                int(bool(record["alignment"]["dkim"])),
                int(bool(record["alignment"]["spf"])),
                str(record["policy_evaluated"]["disposition"] or ""),
                str(record["identifiers"]["header_from"] or ""),
            ]
            for record in report["records"]
        ]
        db.conn.executemany(
            "INSERT INTO dmarc_records (report, source_ip, messages, dkim_aligned, spf_aligned, disposition,"
            " header_from) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return True


def _utc(text: Any) -> str:
    """parsedmarc's ``2026-12-05 10:30:56`` (UTC) as stored times are: ``2026-12-05T10:30:56+00:00``."""
    return str(text).replace(" ", "T") + "+00:00"


def pass_rates(db: sqlite_utils.Database, since: datetime, our_ips: list[str]) -> list[IpFigures]:
    """Per sending IP, from reports whose period ended at or after ``since``: most messages first.

    ``our_ips`` are CIDRs ([dmarc] our_ips); an IP outside all of them is not ours.
    """
    networks = parse_networks(our_ips)
    rows = db.execute(
        "SELECT r.source_ip, SUM(r.messages), SUM(r.messages * r.dkim_aligned),"
        " SUM(r.messages * r.spf_aligned)"
        " FROM dmarc_records r JOIN dmarc_reports p ON p.id = r.report WHERE p.end_at >= ?"
        " GROUP BY r.source_ip ORDER BY SUM(r.messages) DESC, r.source_ip",
        [iso(since)],
    ).fetchall()
    return [IpFigures(ip, total, dkim, spf, _is_ours(ip, networks)) for ip, total, dkim, spf in rows]


def parse_networks(cidrs: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``[dmarc] our_ips`` as networks; raises DigestError naming the entry that is not a CIDR."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise DigestError(
                f'[dmarc] our_ips: {cidr!r} is not an IP address or CIDR; use e.g. "192.0.2.0/28"'
            ) from None
    return networks


def _is_ours(ip: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool | None:
    if not networks:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
