"""Story-merge benchmark: precision and recall of the merge rule on the labelled pairs, and
the time to group an issue's worth of articles. Prints figures, never passes or fails.

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
    pairs = load_pairs(args.pairs)
    default = Compose().merge_threshold
    same = sum(1 for p in pairs if p["same"])
    print(f"{len(pairs)} labelled pairs: {same} same story, {len(pairs) - same} different")
    print("threshold  precision  recall   TP  FP  FN  TN")
    for threshold in sorted({0.6, 0.62, 0.64, 0.66, default, 0.7, 0.72, 0.75, 0.8}):
        s = score_pairs(pairs, threshold)
        mark = "  <- default" if threshold == default else ""
        print(
            f"{threshold:9.2f}  {s.precision:9.3f}  {s.recall:6.3f}  {s.true_pos:3d} {s.false_pos:3d}"
            f" {s.false_neg:3d} {s.true_neg:3d}{mark}"
        )
    # Timing: every labelled headline, shuffled and repeated, as one issue's candidates.
    rng = random.Random(7)
    sides = [side for p in pairs for side in (p["a"], p["b"])]
    articles = [
        {"id": i, "url": f"https://example.org/{i}", "title": s["title"], "summary_text": s["summary"]}
        for i, s in enumerate(rng.choice(sides) for _ in range(args.articles))
    ]
    start = time.perf_counter()
    stories = group_stories(articles, threshold=default, max_stories=40)
    took = time.perf_counter() - start
    print(f"grouped {len(articles)} articles into {len(stories)} cards (cap 40) in {took * 1000:.1f} ms")


if __name__ == "__main__":
    main()
