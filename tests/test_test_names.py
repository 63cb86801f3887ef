"""Test files are named after the behaviour or package they test, never after how they came
about (a review round, a defect list, guard rails, regressions)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
HOW_IT_CAME_ABOUT = re.compile(
    r"(?:^|_)(?:reviews?|fix|fixes|defects?|rails|round\d*(?=_\d|$)|round\d+|regressions?)(?:_|$)",
    re.IGNORECASE,
)
"""A word of the file name (words split at "_") that tells how the file came about; `postfix`,
`preview`, `fixtures` and `round_trip` are fine."""


def names_after_how_they_came_about(folder: Path) -> list[str]:
    """The Python files in ``folder`` whose names say how they came about, not what they test."""
    return sorted(p.name for p in folder.glob("*.py") if HOW_IT_CAME_ABOUT.search(p.stem))


def test_no_test_file_is_named_after_a_round_or_a_defect_list() -> None:
    assert names_after_how_they_came_about(TESTS) == []


def test_the_rule_catches_such_a_name(tmp_path: Path) -> None:
    caught = ["test_delivery_defects.py", "test_guard_rails.py", "test_review_fixes.py", "test_round3.py"]
    caught += ["test_second_round.py", "test_fix_42.py", "test_regressions.py"]
    fine = ["test_postfix.py", "test_preview.py", "delivery_fixtures.py", "test_csv_round_trip.py"]
    for name in caught + fine:
        (tmp_path / name).touch()
    assert names_after_how_they_came_about(tmp_path) == sorted(caught)
