"""The figures as lines of text for ``digest stats`` (the CLI only prints them)."""

from __future__ import annotations

from typing import Any

from digest.stats.figures import GMAIL_LIMIT, GMAIL_WARN


def percent(rate: float) -> str:
    """A rate as a percentage with two decimals (``0.25 %``)."""
    return f"{rate * 100:.2f} %"


def _rate_line(name: str, rate: float, mark: str) -> str:
    lines = f"(Gmail: under {percent(GMAIL_WARN)}, never {percent(GMAIL_LIMIT)})"
    return f"  {name:<15} {percent(rate):>8} {mark or '✓'}  {lines}"


def issue_lines(f: dict[str, Any]) -> list[str]:
    """One issue's figures, a block of lines."""
    lines = [
        f"{f['issue']}  {f['subject']}  (sent {f['sent_at'] or 'not yet'})",
        f"  delivered       {f['delivered']:>8}",
        f"  failed          {f['failed']:>8}"
        + (f"   ({f['waiting']} still waiting)" if f["waiting"] else ""),
        f"  bounced hard    {f['bounced']['hard']:>8}",
        f"  bounced soft    {f['bounced']['soft']:>8}",
        f"  complaints      {f['complaints']:>8}",
        f"  unsubscribes    {f['unsubscribes_7_days']:>8}   (within 7 days)",
        _rate_line("complaint rate", f["complaint_rate"], f["complaint_flag"]),
        _rate_line("bounce rate", f["bounce_rate"], f["bounce_flag"]),
    ]
    if f["clicks"]:
        lines.append("  clicks per story (scanners left out):")
        lines += [f"    {c['clicks']!s:>6}  {c['story']}" for c in f["clicks"]]
    return lines


def list_lines(f: dict[str, Any]) -> list[str]:
    """The list's figures: a day-by-day table, then sources and choices."""
    lines = [
        f"{'DAY':<10}  {'SIGN-UPS':>8}  {'CONFIRMED':>9}  {'UNSUBS':>6}  {'BOUNCES':>7}  {'LIST SIZE':>9}"
    ]
    for d in f["days"]:
        lines.append(
            f"{d['day']:<10}  {d['signups']:>8}  {d['confirmations']:>9}  {d['unsubscribes']:>6}"
            f"  {d['bounces']:>7}  {d['size']:>9}"
        )
    for title, key in (
        ("Sources", "sources"),
        ("Editions chosen", "editions"),
        ("Categories chosen", "categories"),
    ):
        shown = ", ".join(f"{name} {count}" for name, count in f[key].items()) or "none"
        lines.append(f"{title}: {shown}")
    lines.append("(* = all; web = the sign-up form or an embedded form)")
    return lines
