"""Export the subscriber list as CSV (the import format, so the two round-trip) or JSON, streaming."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import TextIO

import sqlite_utils

from subscribers.importer import COLUMNS, guard_cell
from subscribers.model import join_labels
from subscribers.store import list_subscribers, stored_attribute_keys

FORMATS = ("csv", "json")
_STEP = 1000


def export_subscribers(
    db: sqlite_utils.Database,
    out: TextIO,
    *,
    format: str = "csv",
    status: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every subscriber (optionally of one status) to ``out``; returns how many.

    CSV has the import's columns, then one column per attribute key any exported
    subscriber has (sorted; empty where a subscriber has none), so an import of
    the file gives the attributes back; JSON is an array of full records (times,
    source, attributes included: the store's whole row). ``progress`` is called
    with the number of rows written since the last call.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}")
    keys: list[str] = []
    if format == "csv":
        keys = attribute_keys(db, status=status)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow((*COLUMNS, *keys))
    else:
        out.write("[")
    count = 0
    for sub in list_subscribers(db, status=status):
        if format == "csv":
            writer.writerow(
                (
                    guard_cell(sub["email"]),
                    guard_cell(sub["name"]),
                    guard_cell(join_labels(sub["editions"])),
                    guard_cell(join_labels(sub["categories"])),
                    sub["timezone"] or "",
                    sub["status"],
                    *(guard_cell(str(sub["attributes"].get(key, ""))) for key in keys),
                )
            )
        else:
            out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(sub, ensure_ascii=False))
        count += 1
        if progress is not None and count % _STEP == 0:
            progress(_STEP)
    if format == "json":
        out.write("\n]\n" if count else "]\n")
    if progress is not None and count % _STEP:
        progress(count % _STEP)
    return count


def attribute_keys(db: sqlite_utils.Database, *, status: str | None = None) -> list[str]:
    """Every attribute key the subscribers (optionally of one status) have, sorted."""
    return [key for key in stored_attribute_keys(db, status=status) if key not in COLUMNS]
