"""One doctor finding: :class:`Check`, and its statuses ``OK``, ``WARN``, ``FAIL``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"
SYMBOLS = {OK: "✔", WARN: "⚠", FAIL: "✘"}


@dataclass
class Check:
    """One finding: what was checked, how it went, and how to fix it."""

    name: str
    status: str  # ok / warn / fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return asdict(self)

    def line(self) -> str:
        """``✔ name: detail`` (with ``; fix: …`` when there is one)."""
        fix = f"; fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{SYMBOLS[self.status]} {self.name}: {self.detail}{fix}"
