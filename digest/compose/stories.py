"""One card per story: group an issue's articles that report the same story.

Two articles are the same story when they share a canonical URL, or when their titles and
summaries are similar enough: rapidfuzz's token-set ratio over their words, with case,
punctuation, thousands separators, a short list of function words and common suffixes taken
out, at or above ``[compose] merge_threshold``, unless their numbers say otherwise (none in
common; or each headline with a number, month or weekday the other never mentions) or they are of
different categories without strong evidence (:func:`same_story`). The rule and its default
threshold were tuned on the tuning half of ``tests/fixtures/story_pairs.jsonl`` and are
measured on its held-out half (``python bench/stories.py``).

Each story shows one card: the article from the first of ``preferred_sources`` that carries
it, else the earliest; the others are listed as "Also covered by", in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz

from digest.ingest.urls import canonical_url

_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_YEAR = re.compile(r"(?:19|20)\d\d")
_DATE_WORD = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
)
_STOPWORD_TEXT = (
    "a an the of to in on for by at as and or with from after over under is are was were be "
    "been it its this that than into up out new says said say will would could has have had not "
    "no but about before more most also one two three"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES = ("ings", "ing", "ers", "er", "ed", "ions", "ion", "ures", "ure", "es", "s", "e")

CROSS_CATEGORY_OVERLAP = 0.45
"""Two articles of different categories are one story only if, besides the threshold, at
least this share of the longer one's words are in the other: a short Business teaser whose
few words all occur in an unrelated World story is not "Also covered by" under it."""


SHARED_FIGURE_BONUS = 0.06
"""A figure both articles mention (not a year: "2.7%", "95m") is evidence of one story: the
threshold is this much lower for such a pair."""


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A light stemmer: ``closures``/``close``, ``merger``/``merge`` meet (at least 4 letters stay)."""
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def story_words(title: str, summary: str = "") -> str:
    """The words the rule compares: lower case, no punctuation or function words, suffixes
    taken off (``rates`` → ``rate``; ``closures`` and ``closed`` alike), joined by spaces."""
    text = _THOUSANDS.sub("", f"{title} {summary}".lower().replace("’", "'"))
    words = []
    for word in _WORD.findall(text):
        word = word.removesuffix("'s")
        if word not in _STOPWORDS:
            words.append(_stem(word))
    return " ".join(words)


def story_numbers(title: str, summary: str = "") -> frozenset[str]:
    """The numbers an article mentions (``2,000`` and ``2000`` alike; ``$7.5bn`` gives ``7.5``)."""
    return frozenset(_NUMBER.findall(_THOUSANDS.sub("", f"{title} {summary}")))


def _dates_and_numbers(text: str) -> frozenset[str]:
    text = _THOUSANDS.sub("", text.lower())
    return frozenset(_NUMBER.findall(text)) | frozenset(_DATE_WORD.findall(text))


@dataclass(frozen=True)
class StoryText:
    """What the rule compares of one article (see :func:`story_text`)."""

    words: str
    numbers: frozenset[str]
    title_marks: frozenset[str]  # numbers, month and weekday names in the title
    marks: frozenset[str]  # numbers, month and weekday names anywhere
    category: str = ""


def story_text(title: str, summary: str = "", category: str | None = "") -> StoryText:
    """An article's title, summary and category as the rule compares them."""
    return StoryText(
        story_words(title, summary),
        story_numbers(title, summary),
        _dates_and_numbers(title),
        _dates_and_numbers(f"{title} {summary}"),
        (category or "").casefold(),
    )


def same_story(a: StoryText, b: StoryText, threshold: float) -> bool:
    """The text rule. Two articles are one story when their words are at least
    ``threshold`` similar (rapidfuzz's token-set ratio), unless

    - both mention numbers and none in common ("rises to 3.4%" and "falls to 2.1%");
    - each headline has a number, month or weekday the other article never mentions
      (template headlines: "Premier League table after matchweek 12" and "… 13");
    and the threshold is :data:`SHARED_FIGURE_BONUS` lower when they share a figure; and
    unless

    - their categories differ and the longer one's words are mostly not in the other
      (:data:`CROSS_CATEGORY_OVERLAP`).
    """
    if not (a.words and b.words):
        return False
    if a.numbers and b.numbers and not a.numbers & b.numbers:
        return False
    if (a.title_marks - b.marks) and (b.title_marks - a.marks):
        return False
    shared = {n for n in a.numbers & b.numbers if not _YEAR.fullmatch(n)}
    bar = (threshold - (SHARED_FIGURE_BONUS if shared else 0.0)) * 100
    if fuzz.token_set_ratio(a.words, b.words, score_cutoff=bar) < bar:
        return False
    if a.category and b.category and a.category != b.category:
        words_a, words_b = set(a.words.split()), set(b.words.split())
        return len(words_a & words_b) / max(len(words_a), len(words_b)) >= CROSS_CATEGORY_OVERLAP
    return True


@dataclass
class Story:
    """Articles (``articles`` rows or snapshot dicts) that report one story; ``lead`` has the card."""

    lead: dict[str, Any]
    others: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Group:
    members: list[dict[str, Any]]
    urls: set[str]
    texts: set[StoryText]


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
        text = article_text(article)
        home = next((g for g in groups if _joins(g, url, text, threshold)), None)
        if home is not None:
            home.members.append(article)
            home.urls.add(url)
            home.texts.add(text)
        elif max_stories is None or len(groups) < max_stories:
            groups.append(_Group([article], {url}, {text}))
    return [_story(g.members, preferred_sources) for g in groups]


def article_text(article: dict[str, Any]) -> StoryText:
    """:func:`story_text` of an ``articles`` row (or snapshot dict)."""
    title, summary = article.get("title") or "", article.get("summary_text") or ""
    return story_text(title, summary, article.get("category"))


def _joins(group: _Group, url: str, text: StoryText, threshold: float) -> bool:
    if url in group.urls:
        return True
    return any(same_story(text, other, threshold) for other in group.texts)


def _story(members: list[dict[str, Any]], preferred: Sequence[str]) -> Story:
    rank = {name.casefold(): n for n, name in enumerate(preferred)}

    def key(article: dict[str, Any]) -> tuple[int, str, int]:
        source = (article.get("source") or "").casefold()
        return (rank.get(source, len(rank)), article.get("published_at") or "", article.get("id") or 0)

    lead, *others = sorted(members, key=key)
    return Story(lead, others)
