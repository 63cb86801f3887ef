"""The last 7 days of DMARC aggregate reports: do receivers see our mail pass alignment,
and does anyone else send as the domain? Shown only when there are reports."""

from __future__ import annotations

from digest.config import Config
from digest.dmarc import pass_rates
from digest.dmarc.process import window_start
from digest.doctor.check import OK, WARN, Check
from digest.store.database import open_store

DAYS = 7
GOOD_DKIM_RATE = 0.95  # below this, receivers see a share of our own mail fail DMARC


def check_dmarc(config: Config) -> list[Check]:
    """One line with our DKIM/SPF alignment pass rates over the last 7 days, or nothing
    without reports; ⚠ when our DKIM rate is low or an IP that is not ours sends as the domain."""
    if config.store_file is not None and not config.store_file.exists():
        return []
    db = open_store(config.store)
    try:
        figures = pass_rates(db, window_start(DAYS), config.dmarc.our_ips)
    finally:
        db.conn.close()
    if not figures:
        return []
    ours = [f for f in figures if f.ours is not False]
    strangers = [f for f in figures if f.ours is False]
    total = sum(f.messages for f in ours)
    dkim = sum(f.dkim_pass for f in ours) / total if total else 0.0
    spf = sum(f.spf_pass for f in ours) / total if total else 0.0
    whose = "our IPs" if config.dmarc.our_ips else "all IPs (set [dmarc] our_ips to tell ours apart)"
    detail = f"last {DAYS} days, {total} messages from {whose}: DKIM {dkim:.0%}, SPF {spf:.0%} aligned"
    fixes = []
    if strangers:
        shown = ", ".join(f"{f.ip} ({f.messages})" for f in strangers[:5])
        detail += f"; not ours but sending as the domain: {shown}"
        fixes.append("if those are yours, add them to [dmarc] our_ips; if not, publish DMARC p=quarantine")
    if total and dkim < GOOD_DKIM_RATE:
        fixes.append("see `digest dmarc report` for which IPs fail DKIM")
    status = WARN if fixes else OK
    return [Check("dmarc", status, detail, "; ".join(fixes))]
