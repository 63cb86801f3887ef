"""Export the subscriber list as CSV (the import format, so the two round-trip) or JSON, streaming."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import Any, TextIO

import sqlite_utils

from subscribers.importer import COLUMNS, guard_cell
from subscribers.model import join_labels
from subscribers.store import list_subscribers

FORMATS = ("csv", "json")
_JSON_FIELDS = (
    "id",
    "email",
    "name",
    "status",
    "editions",
    "categories",
    "timezone",
    "source",
    "attributes",
    "created_at",
    "updated_at",
    "confirmed_at",
    "unsubscribed_at",
)


def export_subscribers(
    db: sqlite_utils.Database,
    out: TextIO,
    *,
    format: str = "csv",
    status: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every subscriber (optionally of one status) to ``out``; returns how many.

    CSV has the import's columns; JSON is an array of full records (times,
    source, attributes included). ``progress`` is called with the number of
    rows written since the last call.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}")
    count = 0
    step = 1000
    if format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for sub in list_subscribers(db, status=status):
            writer.writerow(
                (
                    guard_cell(sub["email"]),
                    guard_cell(sub["name"]),
                    guard_cell(join_labels(sub["editions"])),
                    guard_cell(join_labels(sub["categories"])),
                    sub["timezone"] or "",
                    sub["status"],
                )
            )
            count += 1
            if progress is not None and count % step == 0:
                progress(step)
    else:
        out.write("[")
        for sub in list_subscribers(db, status=status):
            record: dict[str, Any] = {key: sub[key] for key in _JSON_FIELDS}
            out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
            count += 1
            if progress is not None and count % step == 0:
                progress(step)
        out.write("\n]\n" if count else "]\n")
    if progress is not None and count % step:
        progress(count % step)
    return count
