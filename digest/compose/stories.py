"""One card per story: group an issue's articles that report the same story.

Two articles are the same story when they share a canonical URL, or when their titles and
summaries are similar enough: rapidfuzz's token-set ratio over their words, with case,
punctuation, thousands separators, a short list of function words and plural endings taken
out, at or above ``[compose] merge_threshold``, unless both mention numbers and none of them
in common ("rises to 3.4%" and "falls to 2.1%" are two stories however alike the words).
The rule and its default threshold are measured on ``tests/fixtures/story_pairs.jsonl``
(``python bench/stories.py``).

Each story shows one card: the article from the first of ``preferred_sources`` that carries
it, else the earliest; the others are listed as "Also covered by", in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from digest.ingest.urls import canonical_url

_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_STOPWORD_TEXT = (
    "a an the of to in on for by at as and or with from after over under is are was were be "
    "been it its this that than into up out new says said say will would could has have had not "
    "no but about before more most also one two three"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def story_words(title: str, summary: str = "") -> str:
    """The words the rule compares: lower case, no punctuation or function words, plurals
    folded (``rates`` → ``rate``), joined by spaces."""
    text = _THOUSANDS.sub("", f"{title} {summary}".lower().replace("’", "'"))
    words = []
    for word in _WORD.findall(text):
        word = word.removesuffix("'s")
        if word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return " ".join(words)


def story_numbers(title: str, summary: str = "") -> frozenset[str]:
    """The numbers an article mentions (``2,000`` and ``2000`` alike; ``$7.5bn`` gives ``7.5``)."""
    return frozenset(_NUMBER.findall(_THOUSANDS.sub("", f"{title} {summary}")))


def same_story(
    words_a: str, numbers_a: frozenset[str], words_b: str, numbers_b: frozenset[str], threshold: float
) -> bool:
    """The text rule: similar words, and no two disjoint sets of numbers."""
    if numbers_a and numbers_b and not numbers_a & numbers_b:
        return False
    if not (words_a and words_b):
        return False
    return fuzz.token_set_ratio(words_a, words_b, score_cutoff=threshold * 100) >= threshold * 100


@dataclass
class Story:
    """Articles (``articles`` rows or snapshot dicts) that report one story; ``lead`` has the card."""

    lead: dict[str, Any]
    others: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Group:
    members: list[dict[str, Any]]
    urls: set[str]
    texts: set[tuple[str, frozenset[str]]]


def group_stories(
    articles: Iterable[dict[str, Any]],
    *,
    threshold: float,
    preferred_sources: Sequence[str] = (),
    max_stories: int | None = None,
) -> list[Story]:
    """Group ``articles`` (given newest first) into stories, in the order of each story's
    first article. An article joins the first story with the same canonical URL or with any
    member at least ``threshold`` similar. Once ``max_stories`` exist, an article that joins
    none is left out (it would have been a card past the cap)."""
    groups: list[_Group] = []
    for article in articles:
        url = canonical_url(article.get("url") or "")
        title, summary = article.get("title") or "", article.get("summary_text") or ""
        text = (story_words(title, summary), story_numbers(title, summary))
        home = next((g for g in groups if _joins(g, url, text, threshold)), None)
        if home is not None:
            home.members.append(article)
            home.urls.add(url)
            home.texts.add(text)
        elif max_stories is None or len(groups) < max_stories:
            groups.append(_Group([article], {url}, {text}))
    return [_story(g.members, preferred_sources) for g in groups]


def _joins(group: _Group, url: str, text: tuple[str, frozenset[str]], threshold: float) -> bool:
    if url in group.urls:
        return True
    return any(same_story(*text, *other, threshold) for other in group.texts)


def _story(members: list[dict[str, Any]], preferred: Sequence[str]) -> Story:
    rank = {name.casefold(): n for n, name in enumerate(preferred)}

    def key(article: dict[str, Any]) -> tuple[int, str, int]:
        source = (article.get("source") or "").casefold()
        return (rank.get(source, len(rank)), article.get("published_at") or "", article.get("id") or 0)

    lead, *others = sorted(members, key=key)
    return Story(lead, others)
