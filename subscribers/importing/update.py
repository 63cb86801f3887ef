"""Write, for known addresses: a file row applied to a subscriber already on the list, and the
consent record of what changed. Runs in the writer. Entry point: :meth:`Updater.apply`.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from subscribers.importing.report import ImportReport

_ACTIVE_STATES = ("active", "pending")
_STATUS_EVENT = {"unsubscribed": "unsubscribe", "bounced": "bounce", "pending": "status"}


class Updater:
    """Applies rows to known subscribers. A column the file has is authoritative; one it
    lacks leaves the stored value alone (``present`` maps a column to its position or None)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        report: ImportReport,
        *,
        present: dict[str, int | None],
        attribute_keys: set[str],
        resubscribe: bool,
        at: str,
        detail: str,
    ) -> None:
        self.db = db
        self.report = report
        self.pos = present
        self.attribute_keys = attribute_keys
        self.resubscribe = resubscribe
        self.at = at
        self.file_detail = json.loads(detail)  # parsed once: every updated row's events name the file

    def apply(
        self,
        current: tuple,
        name: Any,
        editions: Any,
        categories: Any,
        zone: Any,
        status: str | None,
        *,
        attributes: str | None = None,
        lifted: bool = False,
    ) -> None:
        """Apply a file row to a known subscriber and record what changed. ``lifted``: this
        import (--resubscribe) took the address off the suppression list, which the consent
        record must say even when nothing else changed."""
        report = self.report
        sid, _email, _name, old_status, old_editions, old_categories, old_zone, _seen, _attrs = current
        if status and status in _ACTIVE_STATES and old_status not in _ACTIVE_STATES and not self.resubscribe:
            report.suppressed += 1  # would bring back someone who left
            return
        changes = self._changes(current, name, editions, categories, zone, attributes)
        new_status = status if status and status != old_status else None
        if not changes and new_status is None:
            report.unchanged += 1
            if lifted:
                self._write_events(
                    sid, [("suppression_lifted", {"status": old_status, "was_suppressed": True})]
                )
            return
        report.updated += 1
        at = self.at
        assignments = dict(changes)
        events: list[tuple[str, dict]] = []
        if new_status is not None:
            events.append(_status_change(assignments, new_status, old_status, at, lifted=lifted))
        if changes:
            events.append(
                ("preferences", _preference_detail(changes, old_editions, old_categories, old_zone))
            )
        if lifted and new_status is None:
            events.append(("suppression_lifted", {"status": old_status, "was_suppressed": True}))
        sets = ", ".join(f"{k} = ?" for k in assignments)
        self.db.execute(
            f"UPDATE subscribers SET {sets}, updated_at = ? WHERE id = ?", [*assignments.values(), at, sid]
        )
        self._write_events(sid, events)

    def _changes(
        self, current: tuple, name: Any, editions: Any, categories: Any, zone: Any, attributes: str | None
    ) -> dict[str, Any]:
        """The columns the file gives (its header has them) whose values differ from the row's."""
        _sid, _email, old_name, _status, old_editions, old_categories, old_zone, _seen, old_attrs = current
        present = self.pos
        changes: dict[str, Any] = {}
        if present["name"] is not None and name != old_name:
            changes["name"] = name
        if present["editions"] is not None and editions != old_editions:
            changes["editions"] = editions
        if present["categories"] is not None and categories != old_categories:
            changes["categories"] = categories
        if present["timezone"] is not None and zone != old_zone:
            changes["timezone"] = zone
        if attributes is not None:
            # The file's attribute columns are authoritative (an empty cell removes the key);
            # keys from other columns stay.
            old = json.loads(old_attrs or "{}")
            merged = {k: v for k, v in old.items() if k not in self.attribute_keys}
            merged.update(json.loads(attributes))
            if merged != old:
                changes["attributes"] = json.dumps(merged, ensure_ascii=False)
        return changes

    def _write_events(self, sid: int, events: list[tuple[str, dict]]) -> None:
        """One events row per (kind, detail), each detail naming the file."""
        at = self.at
        file_detail = self.file_detail
        self.db.conn.executemany(
            "INSERT INTO events (subscriber_id, kind, source, detail, at) VALUES (?, ?, 'import', ?, ?)",
            [
                (sid, kind, json.dumps({**detail, **file_detail}, ensure_ascii=False), at)
                for kind, detail in events
            ],
        )


def _decoded(key: str, value: str | None) -> Any:
    if key in ("editions", "categories"):
        return json.loads(value) if value else None
    return value


def _status_change(
    assignments: dict[str, Any], new_status: str, old_status: str, at: str, *, lifted: bool
) -> tuple[str, dict]:
    """Add the new status and its time stamps to ``assignments``; the event that records it."""
    assignments["status"] = new_status
    if new_status == "unsubscribed":
        assignments["unsubscribed_at"] = at
    elif new_status == "active" and old_status == "pending":
        assignments["confirmed_at"] = at
    elif new_status == "active":
        assignments["unsubscribed_at"] = None
    if new_status == "active":
        kind = "confirm" if old_status == "pending" else "resubscribe"
    else:
        kind = _STATUS_EVENT[new_status]
    return kind, {"from": old_status, **({"was_suppressed": True} if lifted else {})}


def _preference_detail(
    changes: dict[str, Any], old_editions: Any, old_categories: Any, old_zone: Any
) -> dict:
    """The ``preferences`` event's detail: lists and zone from/to, name and attributes "changed"."""
    detail: dict[str, Any] = {}
    for key, old in (("editions", old_editions), ("categories", old_categories), ("timezone", old_zone)):
        if key in changes:
            detail[key] = {"from": _decoded(key, old), "to": _decoded(key, changes[key])}
    for key in ("name", "attributes"):
        if key in changes:
            detail[key] = "changed"
    return detail
