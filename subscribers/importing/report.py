"""What an import did: the counters every stage adds to, and the one-line error for invalid rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from typing import Any


@dataclass
class ImportReport:
    """What an import did (or, with dry_run, would do)."""

    file: str
    dry_run: bool = False
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid: int = 0
    invalid_rows: list[tuple[int, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    attribute_columns: list[str] = field(default_factory=list)  # kept as subscriber attributes
    consent_columns: list[str] = field(default_factory=list)  # read into the consent log
    statuses: dict[str, int] = field(default_factory=dict)  # file rows by their status ("" = none given)

    def count_statuses(self, rows: list[tuple], profiles: list[tuple[Any, ...]]) -> None:
        """Add a checked chunk's rows to ``statuses`` (a row's profile's last value is its status)."""
        statuses = self.statuses
        for profile, count in Counter(map(itemgetter(2), rows)).items():
            status = profiles[profile][-1] or ""
            statuses[status] = statuses.get(status, 0) + count

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        rows = [{"line": line, "error": error} for line, error in self.invalid_rows]
        return {**asdict(self), "invalid_rows": rows}


def invalid_message(report: ImportReport) -> str:
    """The error for a file with invalid rows (nothing was imported): the first five, the count."""
    shown = "; ".join(f"line {line}: {error}" for line, error in report.invalid_rows[:5])
    more = f"; and {report.invalid - 5} more" if report.invalid > 5 else ""
    rows = "row" if report.invalid == 1 else "rows"
    return (
        f"{report.file}: {report.invalid} invalid {rows}, nothing imported: {shown}{more}. "
        "Fix them, or rerun with --skip-invalid to import the rest"
    )
