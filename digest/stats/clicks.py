"""The click counts: the one owner of ``link_clicks`` and ``click_scanners``.

``link_clicks`` keeps, per issue and link, how many clicks were counted and how many were
left out as a scanner's; nothing about who clicked. ``click_scanners`` holds, for a few
minutes, the keyed hash of each client that followed an issue's canary link (the key lives
only in the web server's memory, so a stored hash cannot be tied back to an address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlite_utils

from digest.store.database import transaction

CountKey = tuple[int, str]  # (issue id, link)


def add_counts(db: sqlite_utils.Database, counts: Mapping[CountKey, tuple[int, int]]) -> None:
    """Add ``(clicks, scanner)`` to each ``(issue, link)``'s counts, in one transaction."""
    if not counts:
        return
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO link_clicks (issue_id, link, clicks, scanner) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (issue_id, link) DO UPDATE SET"
            " clicks = link_clicks.clicks + excluded.clicks,"
            " scanner = link_clicks.scanner + excluded.scanner",  # named: PostgreSQL's are ambiguous
            [(issue, link, clicks, scanner) for (issue, link), (clicks, scanner) in counts.items()],
        )


def mark_scanner(db: sqlite_utils.Database, client: str, until: str) -> None:
    """Remember (until ``until``, UTC ISO) that the client keyed ``client`` is a scanner."""
    with transaction(db):
        db.execute(
            "INSERT INTO click_scanners (client, until) VALUES (?, ?)"
            " ON CONFLICT (client) DO UPDATE SET until = max(click_scanners.until, excluded.until)",
            [client, until],
        )


def scanner_clients(db: sqlite_utils.Database, clients: Iterable[str], now: str) -> set[str]:
    """Those of ``clients`` marked as scanners and not yet forgotten at ``now``."""
    wanted = sorted(set(clients))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ", ".join("?" * len(part))
        found.update(
            row[0]
            for row in db.execute(
                f"SELECT client FROM click_scanners WHERE until > ? AND client IN ({marks})", [now, *part]
            )
        )
    return found


def forget_scanners(db: sqlite_utils.Database, now: str) -> int:
    """Delete the scanner marks whose time has passed; how many."""
    with transaction(db):
        return db.execute("DELETE FROM click_scanners WHERE until <= ?", [now]).rowcount


def issue_clicks(db: sqlite_utils.Database, issue_id: int) -> dict[str, tuple[int, int]]:
    """Link → (clicks, scanner) for one issue."""
    rows = db.execute("SELECT link, clicks, scanner FROM link_clicks WHERE issue_id = ?", [issue_id])
    return {link: (clicks, scanner) for link, clicks, scanner in rows}
