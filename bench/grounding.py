"""Grounding-check benchmark: does the check catch a summary with one invented number or name,
and does it let faithful summaries through? Prints figures, never passes or fails.

Two fake models summarise every article of a corpus (the headlines and teasers of
tests/fixtures/story_pairs.jsonl, plus Greek and Russian articles written here):

- *faithful*: takes the article's own sentences and rewrites their figures the ways a model
  does ("5 per cent" → "5%", "£24 million" → "£24m", "1,500" → "1500");
- *fabricating*: the faithful summary with one invented fact: a figure replaced by another, a
  new amount, or a person's name the article never mentions, at the start of a sentence or
  in its middle.

The caught rate (fabricated summaries refused) should be 100 %, the used rate (faithful ones
accepted) at least 95 %. The cost is the check's time per summary; ``verify_model`` would add
one model call per sentence (the mean is printed).

    python bench/grounding.py [--pairs tests/fixtures/story_pairs.jsonl] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

from digest.compose.stories_eval import load_pairs
from digest.summary.grounding import ground
from digest.summary.verify import sentences

REPO = Path(__file__).resolve().parent.parent

OTHER_SCRIPTS = [
    (
        "Η Βουλή ενέκρινε σχέδιο για την Αθήνα",
        "Ο δήμαρχος Γιώργος Παπαδόπουλος είπε ότι το σχέδιο κοστίζει 1,5 εκατ. ευρώ.",
    ),
    (
        "Αύξηση στις τιμές των εισιτηρίων",
        "Τα εισιτήρια του μετρό ακριβαίνουν 12 τοις εκατό από τις 3 Μαρτίου.",
    ),
    ("Νέο λιμάνι στη Θεσσαλονίκη", "Η εταιρεία ΟΛΘ θα επενδύσει 180 εκατ. ευρώ στην επέκταση του λιμανιού."),
    ("Σεισμός στην Κρήτη", "Σεισμός 5,2 Ρίχτερ σημειώθηκε νότια του Ηρακλείου, χωρίς ζημιές."),
    (
        "Москва выделила деньги семьям",
        "Мэр Сергей Собянин сообщил, что 12 500 семей получат 2,4 млрд рублей.",
    ),
    ("Цены на бензин выросли", "По данным Росстата, бензин подорожал на 3,1% за месяц."),
    ("В Казани открыли новый мост", "Мост через Казанку длиной 1 200 метров открыли 1 сентября."),
    ("Сбербанк отчитался о прибыли", "Чистая прибыль Сбербанка составила 1,1 трлн рублей за девять месяцев."),
]
INVENTED_NAMES = [
    "Marek Kowalski",
    "Ingrid Halvorsen",
    "Tomasz Wierzbicki",
    "Oluwaseun Adebayo",
    "Priya Raghunathan",
    "Νίκος Κωνσταντίνου",
    "Иван Петров",
]
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def corpus(pairs_path: Path) -> list[tuple[str, str]]:
    """Every distinct (title, teaser) of the labelled pairs, then the other-script articles."""
    seen: dict[str, tuple[str, str]] = {}
    for pair in load_pairs(pairs_path):
        for side in (pair["a"], pair["b"]):
            seen.setdefault(side["title"], (side["title"], side.get("summary", "")))
    return [*seen.values(), *OTHER_SCRIPTS]


def faithful(title: str, text: str, rng: random.Random) -> str:
    """What a careful model might write: the article's own facts, figures written differently."""
    summary = text if text and rng.random() < 0.7 else f"{title}. {text}".strip()
    if summary.startswith("The ") and rng.random() < 0.3:  # a model's own framing words
        summary = rng.choice(["According to the report, the ", "Reports say the "]) + summary[4:]
    summary = re.sub(r"(\d) per cent", r"\1%", summary)
    summary = re.sub(r"([£$€]\d+(?:\.\d+)?) million", r"\1m", summary)
    summary = re.sub(r"([£$€]\d+(?:\.\d+)?) billion", r"\1bn", summary)
    return re.sub(r"(\d),(\d{3})\b", r"\1\2", summary)


def fabricated(title: str, text: str, rng: random.Random) -> str:
    """The faithful summary with one invented number or name."""
    summary = faithful(title, text, rng).rstrip(".")
    source_digits = set(_NUMBER.findall(f"{title} {text}"))
    kind = rng.choice(["replace number", "new amount", "name in sentence", "name first"])
    numbers = list(_NUMBER.finditer(summary))
    if kind == "replace number" and numbers:
        old = rng.choice(numbers)
        new = _invented_number(source_digits, rng)
        return f"{summary[: old.start()]}{new}{summary[old.end() :]}."
    if kind in ("replace number", "new amount"):
        return f"{summary}, at a cost of £{_invented_number(source_digits, rng)}m."
    name = rng.choice([n for n in INVENTED_NAMES if n.split()[-1] not in f"{title} {text}"])
    if kind == "name first":
        return f"{name} said: {summary}."
    return f"{summary}, according to {name}."


def _invented_number(taken: set[str], rng: random.Random) -> str:
    while True:
        value = str(rng.randint(11, 987))
        if not any(value in digits or digits in value for digits in taken):
            return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=REPO / "tests" / "fixtures" / "story_pairs.jsonl")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    articles = corpus(args.pairs)
    used = caught = checks = calls = 0
    missed: list[str] = []
    refused: list[str] = []
    took = 0.0
    for title, text in articles:
        source = f"{title}\n{text}"
        good, bad = faithful(title, text, rng), fabricated(title, text, rng)
        start = time.perf_counter()
        good_check, bad_check = ground(good, source), ground(bad, source)
        took += time.perf_counter() - start
        checks += good_check.checked + bad_check.checked
        calls += len(sentences(good))
        used += good_check.supported
        caught += not bad_check.supported
        if bad_check.supported:
            missed.append(bad)
        if not good_check.supported:
            refused.append(f"{good}  [{', '.join(good_check.unsupported)}]")
    n = len(articles)
    print(
        f"{n} articles ({len(OTHER_SCRIPTS)} in Greek or Russian), a faithful and a fabricated summary each"
    )
    print(f"caught: {caught}/{n} fabricated summaries refused ({100 * caught / n:.1f} %)")
    print(f"used:   {used}/{n} faithful summaries accepted ({100 * used / n:.1f} %)")
    print(
        f"cost:   {took / (2 * n) * 1e6:.0f} µs per summary for the lexical check "
        f"({checks / (2 * n):.1f} facts looked up); verify_model would add "
        f"{calls / n:.1f} model calls per summary (one per sentence)"
    )
    for text in missed:
        print(f"  missed:  {text}")
    for text in refused:
        print(f"  refused: {text}")


if __name__ == "__main__":
    main()
