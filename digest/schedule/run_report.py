"""What one scheduled run did: :class:`RunReport` (with its :class:`Built` and :class:`Sent`).

:meth:`RunReport.summary` is the one line a run logs; :meth:`RunReport.as_dict` is what the
``runs`` table and ``--json`` keep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Built:
    """An issue a run composed (or found already composed) for a scheduled time."""

    edition: str
    scheduled: str  # UTC ISO time the issue's period ends at
    issue_id: int | None
    number: int | None
    created: bool
    message: str


@dataclass
class Sent:
    """What one delivery call did for one issue."""

    issue_id: int
    edition: str
    number: int
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    waiting: int = 0  # local-time rows not due yet
    busy: bool = False  # another process is sending this issue
    error: str | None = None  # the send stopped (e.g. the SMTP server refused the login)
    interrupted: bool = False  # SIGTERM/SIGINT stopped the send after the messages in flight
    dry_run: bool = False
    note: str = ""


@dataclass
class RunReport:
    """Everything one :func:`digest.schedule.run.run_due` call did."""

    at: str
    dry_run: bool = False
    run_id: int | None = None
    editions: list[str] = field(default_factory=list)
    ingested_sources: int = 0
    ingested_new: int = 0
    ingested_updated: int = 0
    ingest_errors: list[str] = field(default_factory=list)
    built: list[Built] = field(default_factory=list)
    deliveries: list[Sent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a build or send that failed; the run went on
    error: str | None = None  # what stopped the whole run
    overdue: list[str] = field(default_factory=list)  # issues past due that have not gone out
    held: list[int] = field(default_factory=list)  # issues waiting for an editor's approval

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing is overdue (a feed that could not be read
        does not count)."""
        return not self.errors and self.error is None and not self.overdue

    @property
    def interrupted(self) -> bool:
        """True when a signal stopped a send early (the rest stays queued for the next run)."""
        return any(d.interrupted for d in self.deliveries)

    @property
    def sent(self) -> int:
        """Messages sent in this run."""
        return sum(d.sent for d in self.deliveries)

    @property
    def failed(self) -> int:
        """Messages that failed permanently in this run."""
        return sum(d.failed for d in self.deliveries)

    @property
    def deferred(self) -> int:
        """Messages left for a later run after temporary failures."""
        return sum(d.deferred for d in self.deliveries)

    def summary(self) -> str:
        """One line: what was ingested, built and sent."""
        when = self.at.replace("+00:00", "Z")
        parts = []
        if self.ingested_sources:
            text = f"ingested {self.ingested_new} new, {self.ingested_updated} updated from "
            text += f"{self.ingested_sources} source{'s' if self.ingested_sources != 1 else ''}"
            if self.ingest_errors:
                text += f" ({len(self.ingest_errors)} failed)"
            parts.append(text)
        for b in self.built:
            if b.issue_id is None and self.dry_run:
                parts.append(f"{b.edition}: would build")
            elif b.created:
                parts.append(f"built {b.edition}/{b.number}")
        for d in self.deliveries:
            if d.busy:
                parts.append(f"{d.edition}/{d.number}: being sent by another process")
            elif d.error:
                parts.append(f"{d.edition}/{d.number}: send stopped ({d.error})")
            elif d.dry_run:
                parts.append(f"{d.edition}/{d.number}: would send {d.sent}")
            elif d.sent or d.failed or d.deferred or d.waiting:
                text = f"{d.edition}/{d.number}: sent {d.sent}"
                if d.failed:
                    text += f", failed {d.failed}"
                if d.deferred:
                    text += f", deferred {d.deferred}"
                if d.interrupted:
                    text += f" (interrupted; {d.waiting} still queued)"
                elif d.waiting:
                    text += f", {d.waiting} queued for later"
                parts.append(text)
        parts.extend(self.notes)
        if self.overdue:
            parts.append(f"{len(self.overdue)} overdue (listed below)")
        if self.error:
            parts.append(f"failed: {self.error}")
        prefix = "dry run" if self.dry_run else "run"
        return f"{prefix} {when}: " + ("; ".join(parts) if parts else "nothing due")

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for --json and the runs table)."""
        data = asdict(self)
        data.update(sent=self.sent, failed=self.failed, deferred=self.deferred, summary=self.summary())
        return data
