"""Filter: leave out the addresses on the suppression list (people who left, or were removed),
or with --resubscribe lift their suppression. Runs in the writer, per chunk.
Entry point: :meth:`Suppressions.filter`.
"""

from __future__ import annotations

import sqlite_utils

from subscribers.importing.report import ImportReport
from subscribers.model import email_hash


class Suppressions:
    """The suppression list as one import sees it (looked at only when it has any entries)."""

    def __init__(self, db: sqlite_utils.Database, report: ImportReport, *, resubscribe: bool) -> None:
        self.db = db
        self.report = report
        self.resubscribe = resubscribe
        self.active = db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone() is not None

    def filter(self, chunk: list[tuple]) -> tuple[list[tuple], set[str]]:
        """The chunk without suppressed addresses (the same list when none is), and the addresses
        whose suppression --resubscribe lifted (their consent record must say so)."""
        if not self.active:
            return chunk, set()
        hashes = {email_hash(row[0]): row[0] for row in chunk}
        marks = ",".join("?" * len(hashes))
        found = [
            r[0]
            for r in self.db.execute(
                f"SELECT email_hash FROM suppressions WHERE email_hash IN ({marks})", list(hashes)
            )
        ]
        if not found:
            return chunk, set()
        if self.resubscribe:
            self.db.conn.executemany("DELETE FROM suppressions WHERE email_hash = ?", [(h,) for h in found])
            return chunk, {hashes[h] for h in found}
        self.report.suppressed += len(found)
        suppressed = {hashes[h] for h in found}
        return [row for row in chunk if row[0] not in suppressed], set()
