"""Stories remembered across issues: a story an edition already sent is not news again.

:func:`sent_stories` reads what the edition's issues sent (each card's title, summary,
outlet and "Also covered by" outlets, and the articles merged into it) from the issues
whose sending started in the :data:`LOOKBACK` before a period. :func:`recall` matches an
issue's new stories against them with the story rule of :mod:`digest.compose.stories` and
says, for each repeat, what is new: outlets that did not carry it before, and numbers or
names that what was sent did not mention. ``[compose] repeat_stories`` decides what a
repeat becomes: ``"update"`` (the default) holds back a repeat with nothing new and marks
one with news "Update:"; ``"drop"`` holds back every repeat; ``"allow"`` remembers nothing.

The rule is per edition, over issues sent: every reader of the edition gets the same
choice, so rendering stays once per variant. A held-back story is stored as a dropped
``issue_articles`` row whose ``repeat`` says why; ``digest issues show`` lists it, and an
editor who adds or restores it wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from digest.compose.issues import issue_name, issue_rows, issue_snapshot, sent_issues
from digest.compose.stories import Story, StoryText, article_text, same_story, story_numbers, story_text
from digest.ingest.article_edits import articles_by_id
from digest.store.database import iso

LOOKBACK = timedelta(days=14)
"""How far back the edition's sent issues are remembered (by their period's end)."""

MAX_FACTS = 5
"""At most this many new numbers and names are named on an update's line."""

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W_][\w'’.-]*[^\W_]|[^\W\d_]", re.UNICODE)
_NAME_STOPWORD_TEXT = (
    "a an the i it its this that these those he she they we you his her their our my "
    "in on at of for by with from to and or but as after before over under new update "
    "mr mrs ms dr monday tuesday wednesday thursday friday saturday sunday"
)
_NAME_STOPWORDS = frozenset(_NAME_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class SentStory:
    """One card an earlier issue sent: what matches it and what readers were told."""

    issue: str  # daily/2
    title: str
    texts: tuple[StoryText, ...]  # of the card and of the articles merged into it
    outlets: frozenset[str]  # casefolded: the card's source and its "Also covered by"
    numbers: frozenset[str]  # in the card's title and summary
    words: frozenset[str]  # casefolded words of the card's title and summary


@dataclass
class Repeat:
    """A new story that an earlier issue sent: which issue, and what is new since."""

    of: str
    title: str
    held: bool
    outlets: list[str]
    facts: list[str]
    mode: str

    @property
    def has_news(self) -> bool:
        """A new outlet, or a number or name that was not sent."""
        return bool(self.outlets or self.facts)

    def note(self) -> str:
        """The JSON stored in ``issue_articles.repeat``."""
        return json.dumps(
            {
                "of": self.of,
                "title": self.title,
                "held": self.held,
                "outlets": self.outlets,
                "facts": self.facts,
                "mode": self.mode,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_note(cls, text: str | None) -> Repeat | None:
        """The stored note read back (None for a row that is no repeat, or unreadable)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(
                str(data["of"]),
                str(data.get("title", "")),
                bool(data["held"]),
                [str(o) for o in data.get("outlets", [])],
                [str(f) for f in data.get("facts", [])],
                str(data.get("mode", "update")),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def news(self) -> str:
        """What is new: ``Now also reported by Reuters; new details: 4.6, Jenkins``."""
        parts = []
        if self.outlets:
            parts.append(f"Now also reported by {', '.join(self.outlets)}")
        if self.facts:
            parts.append(f"new details: {', '.join(self.facts)}")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:]

    def reason(self) -> str:
        """Why a held-back story was held back, for ``digest issues show``."""
        sent = f"sent in {self.of} (“{self.title}”)"
        if not self.has_news:
            return f"{sent}; nothing new: no new outlet, number or name"
        return f'{sent}; repeat_stories = "drop" ({self.news()})'


def sent_stories(
    db: sqlite_utils.Database, edition: str, period_start: datetime, period_end: datetime
) -> list[SentStory]:
    """The cards that issues of ``edition`` sent, newest issue first: those whose sending
    started and whose period ended in the :data:`LOOKBACK` before ``period_start`` (and no
    later than ``period_end``)."""
    stories = []
    for issue in sent_issues(db, edition, iso(period_start - LOOKBACK), iso(period_end)):
        merged: dict[int, list[int]] = {}
        for row in issue_rows(db, issue["id"]):
            if row["card_of"] is not None and not row["dropped"]:
                merged.setdefault(row["card_of"], []).append(row["article_id"])
        others = articles_by_id(db, [a for ids in merged.values() for a in ids])
        for section in issue_snapshot(issue).get("categories", []):
            for card in section.get("articles", []):
                merged_in = [others[a] for a in merged.get(card["id"], []) if a in others]
                stories.append(_sent_story(issue_name(issue), card, merged_in))
    return stories


def _sent_story(name: str, card: dict[str, Any], others: list[dict[str, Any]]) -> SentStory:
    title, summary = card.get("title") or "", card.get("summary") or ""
    texts = [story_text(title, summary, card.get("category")), *(article_text(o) for o in others)]
    outlets = {(card.get("source") or "").casefold()}
    outlets |= {(c.get("source") or "").casefold() for c in card.get("also_covered") or []}
    return SentStory(
        issue=name,
        title=title,
        texts=tuple(texts),
        outlets=frozenset(outlets - {""}),
        numbers=story_numbers(title, summary),
        words=frozenset(w.casefold() for w in _WORD.findall(f"{title} {summary}")),
    )


def recall(
    stories: Iterable[Story], sent: list[SentStory], *, threshold: float, mode: str
) -> dict[int, Repeat]:
    """For each story of ``stories`` that ``sent`` already carried, keyed by its lead's id:
    the :class:`Repeat` saying which issue sent it, what is new, and whether it is held back
    (``mode`` ``"drop"``: always; ``"update"``: when nothing is new)."""
    repeats: dict[int, Repeat] = {}
    if mode == "allow" or not sent:
        return repeats
    for story in stories:
        members = [story.lead, *story.others]
        texts = [article_text(a) for a in members]
        matches = [s for s in sent if any(same_story(t, o, threshold) for t in texts for o in s.texts)]
        if not matches:
            continue
        outlets = frozenset().union(*(m.outlets for m in matches))
        numbers = frozenset().union(*(m.numbers for m in matches))
        words = frozenset().union(*(m.words for m in matches))
        names = (outlet(a) for a in members)
        new_outlets = list(dict.fromkeys(o for o in names if o and o.casefold() not in outlets))
        facts = _new_facts(members, numbers, words)
        repeat = Repeat(matches[0].issue, matches[0].title, True, new_outlets, facts, mode)
        repeat.held = mode == "drop" or not repeat.has_news
        repeats[story.lead["id"]] = repeat
    return repeats


def _new_facts(members: list[dict[str, Any]], numbers: frozenset[str], words: frozenset[str]) -> list[str]:
    """Numbers and names the members mention that what was sent did not, in reading order."""
    facts: list[str] = []
    for article in members:
        title, summary = article.get("title") or "", article.get("summary_text") or ""
        facts += sorted(story_numbers(title, summary) - numbers, key=f"{title} {summary}".find)
        facts += [n for n in story_names(title, summary) if n.casefold() not in words]
    return list(dict.fromkeys(facts))[:MAX_FACTS]


def story_names(title: str, summary: str = "") -> list[str]:
    """The proper names an article mentions: capitalised words inside a sentence (never its
    first word), from the title only when it is in sentence case (a Title Case headline
    capitalises every word)."""
    names: list[str] = []
    texts = [summary] if _title_case(title) else [title, summary]
    for text in texts:
        for sentence in _SENTENCE.split(text):
            for word in _WORD.findall(sentence)[1:]:
                word = word.rstrip(".")
                if word[:1].isupper() and len(word) > 1 and word.casefold() not in _NAME_STOPWORDS:
                    names.append(word)
    return list(dict.fromkeys(names))


def _title_case(title: str) -> bool:
    long_words = [w for w in _WORD.findall(title) if len(w) > 3 and not w[0].isdigit()]
    capitalised = sum(1 for w in long_words if w[0].isupper())
    return len(long_words) >= 3 and capitalised / len(long_words) >= 0.6


def outlet(article: dict[str, Any]) -> str:
    """An article's outlet as "Also covered by" names it: its source, else its site's host."""
    if article.get("source"):
        return str(article["source"])
    host = urlsplit(article.get("url") or "").hostname or ""
    return host.removeprefix("www.") or str(article.get("url") or "")


def held_back(row: dict[str, Any]) -> bool:
    """Whether an ``issue_articles`` row is a story held back as already sent."""
    repeat = Repeat.from_note(row.get("repeat"))
    return bool(row["dropped"]) and row["card_of"] is None and repeat is not None and repeat.held


def held_back_stories(db: sqlite_utils.Database, issue_id: int) -> list[dict[str, Any]]:
    """The stories the issue held back as already sent (id, title, url, source, reason)."""
    held = {}
    for row in issue_rows(db, issue_id):
        if held_back(row):
            held[row["article_id"]] = Repeat.from_note(row["repeat"])
    articles = articles_by_id(db, list(held))
    return [
        {
            **{k: articles[i][k] for k in ("id", "title", "url", "source")},
            "sent_in": repeat.of,
            "reason": repeat.reason(),
        }
        for i, repeat in held.items()
        if i in articles
    ]
