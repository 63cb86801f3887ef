"""Story-merge benchmark: precision and recall of the merge rule on the held-out half of the
labelled pairs, and the time to group an issue's worth of articles. Prints figures, never
passes or fails.

The pairs file marks each pair ``"split": "tune"`` or ``"heldout"``. The rule and its default
threshold were chosen on the tuning half; the figures that count are the held-out half's at
the default threshold. The threshold table is printed for the tuning half only, so choosing
a threshold never looks at the held-out pairs.

    python bench/stories.py [--pairs tests/fixtures/story_pairs.jsonl] [--articles 400]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from digest.compose.stories import group_stories
from digest.compose.stories_eval import load_pairs, score_pairs
from digest.config import Compose

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=REPO / "tests" / "fixtures" / "story_pairs.jsonl")
    parser.add_argument("--articles", type=int, default=400, help="articles to group for the timing")
    args = parser.parse_args()
    tune = load_pairs(args.pairs, "tune")
    held = load_pairs(args.pairs, "heldout")
    default = Compose().merge_threshold
    for name, pairs in (("tuning half", tune), ("held-out half", held)):
        same = sum(1 for p in pairs if p["same"])
        print(f"{name}: {len(pairs)} labelled pairs, {same} same story, {len(pairs) - same} different")
    print("\ntuning half (to choose the threshold)")
    print("threshold  precision  recall   TP  FP  FN  TN")
    for threshold in sorted({0.6, 0.62, 0.64, default, 0.68, 0.7, 0.72, 0.75, 0.8}):
        s = score_pairs(tune, threshold)
        mark = "  <- default" if threshold == default else ""
        print(
            f"{threshold:9.2f}  {s.precision:9.3f}  {s.recall:6.3f}  {s.true_pos:3d} {s.false_pos:3d}"
            f" {s.false_neg:3d} {s.true_neg:3d}{mark}"
        )
    s = score_pairs(held, default)
    print(
        f"\nheld-out half at the default {default:.2f}: precision {s.precision:.3f}, recall {s.recall:.3f}"
        f" (TP {s.true_pos}, FP {s.false_pos}, FN {s.false_neg}, TN {s.true_neg})"
    )
    # Timing: every labelled headline, shuffled and repeated, as one issue's candidates.
    rng = random.Random(7)
    sides = [side for p in tune + held for side in (p["a"], p["b"])]
    articles = [
        {
            "id": i,
            "url": f"https://example.org/{i}",
            "title": s["title"],
            "summary_text": s["summary"],
            "category": s.get("category") or "",
        }
        for i, s in enumerate(rng.choice(sides) for _ in range(args.articles))
    ]
    start = time.perf_counter()
    stories = group_stories(articles, threshold=default, max_stories=40)
    took = time.perf_counter() - start
    print(f"grouped {len(articles)} articles into {len(stories)} cards (cap 40) in {took * 1000:.1f} ms")


if __name__ == "__main__":
    main()
