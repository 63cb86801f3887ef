"""Measure the story-merge rule on a labelled set of article pairs (JSON Lines).

Each line: ``{"split": "tune"|"heldout", "same": true|false, "a": {"title": …, "summary": …,
"category": …}, "b": {…}}``. The rule and its threshold are tuned on the ``tune`` half only;
the ``heldout`` half measures them. Used by ``bench/stories.py`` (which prints the figures)
and by the test that keeps them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from digest.compose.stories import StoryText, same_story, story_text
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


SPLITS = ("tune", "heldout")


def load_pairs(path: Path, split: str | None = None) -> list[dict]:
    """The labelled pairs in ``path`` (only those of ``split`` when given); a malformed line
    is an error naming it."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            pair = json.loads(line)
            _ = (pair["same"], pair["a"]["title"], pair["b"]["title"])
            if pair["split"] not in SPLITS:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise DigestError(
                f"{path}:{number}: expected {{'split': 'tune' or 'heldout', 'same', "
                "'a': {'title', 'summary', 'category'}, 'b': …}"
            ) from None
        if split is None or pair["split"] == split:
            pairs.append(pair)
    return pairs


def _side(side: dict) -> StoryText:
    return story_text(side["title"], side.get("summary", ""), side.get("category"))


def score_pairs(pairs: list[dict], threshold: float) -> PairScore:
    """Apply the merge rule to every pair at ``threshold`` and count right and wrong answers."""
    counts = {(True, True): 0, (False, True): 0, (True, False): 0, (False, False): 0}
    for pair in pairs:
        a, b = (_side(pair["a"]), _side(pair["b"]))
        merged = same_story(a, b, threshold)
        counts[(merged, bool(pair["same"]))] += 1
    return PairScore(
        threshold, counts[(True, True)], counts[(True, False)], counts[(False, True)], counts[(False, False)]
    )
