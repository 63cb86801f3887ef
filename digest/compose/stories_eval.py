"""Measure the story-merge rule on a labelled set of article pairs (JSON Lines).

Each line: ``{"same": true|false, "a": {"title": …, "summary": …}, "b": {…}}``. Used by
``bench/stories.py`` (which prints the figures) and by the test that keeps them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from digest.compose.stories import same_story, story_numbers, story_words
from digest.errors import DigestError


@dataclass
class PairScore:
    """Precision and recall of the rule at one threshold, with the counts behind them."""

    threshold: float
    true_pos: int
    false_pos: int
    false_neg: int
    true_neg: int

    @property
    def precision(self) -> float:
        """Of the pairs merged, the share that are one story (1.0 when none merged)."""
        merged = self.true_pos + self.false_pos
        return self.true_pos / merged if merged else 1.0

    @property
    def recall(self) -> float:
        """Of the pairs that are one story, the share merged."""
        same = self.true_pos + self.false_neg
        return self.true_pos / same if same else 1.0


def load_pairs(path: Path) -> list[dict]:
    """The labelled pairs in ``path``; a malformed line is an error naming it."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            pair = json.loads(line)
            _ = (pair["same"], pair["a"]["title"], pair["b"]["title"])
        except (ValueError, KeyError, TypeError):
            raise DigestError(
                f"{path}:{number}: expected {{'same', 'a': {{'title', 'summary'}}, 'b': …}}"
            ) from None
        pairs.append(pair)
    return pairs


def score_pairs(pairs: list[dict], threshold: float) -> PairScore:
    """Apply the merge rule to every pair at ``threshold`` and count right and wrong answers."""
    counts = {(True, True): 0, (False, True): 0, (True, False): 0, (False, False): 0}
    for pair in pairs:
        sides = []
        for side in (pair["a"], pair["b"]):
            title, summary = side["title"], side.get("summary", "")
            sides.extend([story_words(title, summary), story_numbers(title, summary)])
        merged = same_story(*sides, threshold)
        counts[(merged, bool(pair["same"]))] += 1
    return PairScore(
        threshold, counts[(True, True)], counts[(True, False)], counts[(False, True)], counts[(False, False)]
    )
