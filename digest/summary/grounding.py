"""The grounding check: is every fact a summary states found in the text it was made from?

A model that invents one figure or one name ("a £42m plan" where the article says £24m) must
not reach readers under our label. :func:`ground` lists what in a summary the source does not
support. It checks, after folding case and diacritics on both sides:

- **numbers**, with their scale, currency or percent: "£42m" = "42 million pounds" =
  "£42,000,000"; "5%" = "5 per cent"; thousands separators of any language ("1,500",
  "1.500", "1 500"), decimal commas ("1,5 млн"); Greek and Russian scale, currency and
  percent words ("εκατ.", "ευρώ", "τοις εκατό", "млн", "рублей", "процентов");
- **months** of dates, in English, Greek or Russian words or as numbers (``2026-03-12``);
- **quoted phrases** ("…", “…”, «…», „…“), which must appear word for word;
- **proper names**: capitalised words not at the start of a sentence (and a capitalised
  run that starts one), in any script; a word is found when the source has it, or a form
  of it differing only in an ending of at most two letters ("Москве" for "Москва").

Lenient where the source is concerned (a number word "three" or a bare "3" counts for 3,
"42m" in the source also gives 42), strict for the summary. It is a lexical check: it cannot
tell a true sentence built from the article's words from a false one; ``[summary]
verify_model`` (:mod:`digest.summary.verify`) asks a second model about that.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

# A number: grouped thousands (one separator kind, groups of three) with an optional decimal
# tail, or plain digits with an optional decimal part. Applied to folded text.
_NUMBER = re.compile(
    r"(?<![^\W\d_])(?P<num>\d{1,3}(?P<sep>[ ,.'])\d{3}(?!\d)(?:(?P=sep)\d{3}(?!\d))*(?:[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?)"
)
_SCALES = [
    (re.compile(r"\s?(?:thousand|k|χιλ(?:ιαδεσ|\.)?|тыс(?:яч[аи]?|\.)?)(?!\w)"), Decimal(10) ** 3),
    (
        re.compile(r"\s?(?:millions?|mn|m|εκατ(?:ομμυρι\w*|\.)?|млн\.?|миллион\w*)(?!\w)"),
        Decimal(10) ** 6,
    ),
    (
        re.compile(r"\s?(?:billions?|bn|δισ(?:εκατομμυρι\w*|\.)?|млрд\.?|миллиард\w*)(?!\w)"),
        Decimal(10) ** 9,
    ),
    (
        re.compile(r"\s?(?:trillions?|tn|τρισ(?:εκατομμυρι\w*|\.)?|трлн\.?|триллион\w*)(?!\w)"),
        Decimal(10) ** 12,
    ),
]
_CURRENCY_BEFORE = {"£": "GBP", "$": "USD", "€": "EUR", "₽": "RUB", "¥": "JPY"}
_CURRENCY_WORDS = [
    (re.compile(r"\s?(?:pounds?|sterling|gbp|λιρ(?:εσ|α)|фунт(?:ов|а)?)(?!\w)"), "GBP"),
    (re.compile(r"\s?(?:dollars?|usd|δολαρι(?:α|ο)|доллар(?:ов|а)?)(?!\w)"), "USD"),
    (re.compile(r"\s?(?:euros?|eur|ευρω|евро)(?!\w)"), "EUR"),
    (re.compile(r"\s?(?:roubles?|rubles?|rub|руб(?:л(?:ей|я|ь))?\.?)(?!\w)"), "RUB"),
]
_CURRENCY_ANYWHERE = re.compile(
    r"[£$€₽¥]|\b(?:pounds?|sterling|gbp|dollars?|usd|euros?|eur|roubles?|rubles?|rub|ευρω|λιρ\w*|δολαρι\w*"
    r"|евро|фунт\w*|доллар\w*|рубл\w*)\b"
)
_PERCENT = re.compile(r"\s?(?:%|per ?cent|pc|τοισ εκατο|процент(?:а|ов)?|проц\.)(?!\w)")
_NUMBER_WORDS = {
    word: n
    for n, words in enumerate(
        [
            "zero μηδεν ноль",
            "one ενα μια один одна",
            "two δυο два две",
            "three τρια τρεισ три",
            "four τεσσερα τεσσερισ четыре",
            "five πεντε пять",
            "six εξι шесть",
            "seven επτα εφτα семь",
            "eight οκτω οχτω восемь",
            "nine εννεα εννια девять",
            "ten δεκα десять",
            "eleven εντεκα одиннадцать",
            "twelve δωδεκα двенадцать",
        ]
    )
    for word in words.split()
}
# Patterns match folded text (a Greek final sigma folds to σ). Month words, by month number.
_MONTHS = [
    r"january|jan|ιανουαρι(?:οσ|ου)|январ[ьяе]",
    r"february|feb|φεβρουαρι(?:οσ|ου)|феврал[ьяе]",
    r"march|μαρτι(?:οσ|ου)|март[ае]?",
    r"april|apr|απριλι(?:οσ|ου)|апрел[ьяе]",
    r"may|μαι(?:οσ|ου)|ма[йяе]",
    r"june|jun|ιουνι(?:οσ|ου)|июн[ьяе]",
    r"july|jul|ιουλι(?:οσ|ου)|июл[ьяе]",
    r"august|aug|αυγουστ(?:οσ|ου)|август[ае]?",
    r"september|sept?|σεπτεμβρι(?:οσ|ου)|сентябр[ьяе]",
    r"october|oct|οκτωβρι(?:οσ|ου)|октябр[ьяе]",
    r"november|nov|νοεμβρι(?:οσ|ου)|ноябр[ьяе]",
    r"december|dec|δεκεμβρι(?:οσ|ου)|декабр[ьяе]",
]
_MONTH = [re.compile(rf"^(?:{pattern})$") for pattern in _MONTHS]
_NUMERIC_DATE = re.compile(r"\b\d{4}-(\d{1,2})-\d{1,2}\b|\b\d{1,2}[./](\d{1,2})[./]\d{2,4}\b")
_QUOTED = re.compile(
    r'"([^"\n]{2,}?)"|“([^”\n]{2,}?)”|«([^»\n]{2,}?)»|„([^“”\n]{2,}?)[“”]|‘([^’\n]{2,}?)’(?!\w)'
)
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?…;:\u037e]\s+|\n+")
_POSSESSIVE = re.compile(r"['’]s$")
# Capitalised words that name nobody: a pronoun and titles put before names.
_NOT_NAMES = {"i", "mr", "mrs", "ms", "dr", "st", "prof", "sir"}
ENDING_SLACK = 2
"""Letters a name may differ by at its end (case endings: Москва / Москве / Москвы)."""


def fold(text: str) -> str:
    """``text`` compared without case or diacritics, with compatibility forms unified
    (a no-break space is a space, "ﬁ" is "fi"): "Αθήνα" and "ΑΘΗΝΑ" fold alike."""
    return _fold_mapped(text)[0]


def _fold_mapped(text: str) -> tuple[str, list[int]]:
    """:func:`fold`, and for each folded character the index of the character it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for n, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char):
            if not unicodedata.combining(part):
                for small in part.casefold():
                    folded.append(small)
                    origin.append(n)
    return "".join(folded), origin


@dataclass(frozen=True)
class _Number:
    span: tuple[int, int]  # in the folded text, currency sign included
    values: frozenset[Decimal]
    unit: str | None  # "%", a currency code, or None
    parts: tuple[Decimal, ...] = ()  # "12 300" read as two numbers too


@dataclass
class _Source:
    """What the source text offers, indexed for the checks."""

    folded: str
    phrases: str
    words: set[str] = field(default_factory=set)
    by_prefix: dict[str, set[str]] = field(default_factory=dict)
    values: set[Decimal] = field(default_factory=set)
    with_unit: set[tuple[Decimal, str]] = field(default_factory=set)
    currencies: set[str] = field(default_factory=set)
    months: set[int] = field(default_factory=set)


@dataclass
class Grounding:
    """The outcome of :func:`ground`: ``unsupported`` lists the summary's words (as written)
    that the source does not support; ``checked`` counts the facts looked for."""

    unsupported: list[str]
    checked: int

    @property
    def supported(self) -> bool:
        """True when every fact checked was found in the source."""
        return not self.unsupported


def ground(summary: str, source: str) -> Grounding:
    """Check every number, amount, percentage, month, quoted phrase and proper name in
    ``summary`` against ``source`` (the text the summary was made from, title included)."""
    index = _index(source)
    unsupported: list[str] = []
    checked = 0
    folded, origin = _fold_mapped(summary)
    for number in _numbers(folded):
        checked += 1
        if not _number_found(number, index):
            start, end = number.span
            unsupported.append(summary[origin[start] : origin[end - 1] + 1].strip())
    for word in _WORD.findall(summary):
        month = _month(fold(word))
        # An English month is capitalised ("march" and "may" are verbs); others need not be.
        if month is not None and (word[0].isupper() or not word.isascii()):
            checked += 1
            if month not in index.months:
                unsupported.append(word)
    for phrase in _quotes(summary):
        checked += 1
        if f" {_phrase_key(phrase)} " not in index.phrases:
            unsupported.append(f"“{phrase}”")
    for name in _names(summary):
        checked += 1
        if not _name_found(name, index):
            unsupported.append(name)
    return Grounding(list(dict.fromkeys(unsupported)), checked)


def _index(source: str) -> _Source:
    folded = fold(source)
    index = _Source(folded=folded, phrases=f" {_phrase_key(source)} ")
    for word in _WORD.findall(folded):
        for form in _forms(word):
            index.words.add(form)
            index.by_prefix.setdefault(form[:3], set()).add(form)
        if word in _NUMBER_WORDS:
            index.values.add(Decimal(_NUMBER_WORDS[word]))
        if (month := _month(word)) is not None:
            index.months.add(month)
            index.values.add(Decimal(month))
    for match in _NUMERIC_DATE.finditer(folded):
        month = int(match.group(1) or match.group(2))
        if 1 <= month <= 12:
            index.months.add(month)
    index.currencies = {_currency_code(m.group(0)) for m in _CURRENCY_ANYWHERE.finditer(folded)}
    for number in _numbers(folded, source_side=True):
        index.values |= number.values | set(number.parts)
        if number.unit:
            index.with_unit |= {(v, number.unit) for v in number.values}
    return index


def _numbers(folded: str, *, source_side: bool = False) -> list[_Number]:
    """Every number in ``folded`` text with its values (several when the separators are
    ambiguous: "1.500" is 1500 or 1.5), scaled, and its unit."""
    found: list[_Number] = []
    for match in _NUMBER.finditer(folded):
        start, end = match.span()
        base, parts = _values(match.group("num"), match.group("sep"))
        rest = folded[end:]
        scale = Decimal(1)
        for pattern, factor in _SCALES:
            if scaled := pattern.match(rest):
                scale, end, rest = factor, end + scaled.end(), rest[scaled.end() :]
                break
        unit = _CURRENCY_BEFORE.get(_before(folded, start))
        if percent := _PERCENT.match(rest):
            unit, end = "%", end + percent.end()
        else:
            for pattern, code in _CURRENCY_WORDS:
                if word := pattern.match(rest):
                    unit, end = code, end + word.end()
                    break
        values = {_normal(v * scale) for v in base}
        if source_side and scale != 1:
            values |= {_normal(v) for v in base}  # "£42m" in the source also offers 42
        if unit and unit != "%" and _before(folded, start) in _CURRENCY_BEFORE:
            start = folded.rindex(_before(folded, start), 0, start)
        found.append(_Number((start, end), frozenset(values), unit, tuple(parts)))
    return found


def _before(text: str, start: int) -> str:
    """The character before a number, past one space: the "£" of "£42m" or "£ 42m"."""
    before = text[max(0, start - 2) : start]
    return before[-1:] if before[-1:] != " " else before[:1]


def _values(text: str, sep: str | None) -> tuple[set[Decimal], list[Decimal]]:
    if sep is None:
        return {_decimal(text.replace(",", "."))}, []
    head, _, tail = text.partition(sep)
    groups = text.split(sep)
    last = groups[-1]
    decimals = ""
    if len(last) > 3:  # "1 234,5": the last group carries a decimal tail
        groups[-1], decimals = last[:3], last[4:]
    whole = _decimal("".join(groups) + ("." + decimals if decimals else ""))
    values = {whole}
    parts: list[Decimal] = []
    if len(groups) == 2 and not decimals and sep in ",.":
        values.add(_decimal(f"{head}.{tail}"))  # "1.500": a decimal point after all
    if sep in " '":
        parts = [_decimal(g) for g in groups]
    return values, parts


def _decimal(text: str) -> Decimal:
    try:
        return _normal(Decimal(text))
    except InvalidOperation:
        return Decimal(-1)


def _normal(value: Decimal) -> Decimal:
    return value.normalize() if value else Decimal(0)


def _currency_code(text: str) -> str:
    if text in _CURRENCY_BEFORE:
        return _CURRENCY_BEFORE[text]
    return next((code for pattern, code in _CURRENCY_WORDS if pattern.fullmatch(text)), "")


def _number_found(number: _Number, index: _Source) -> bool:
    for value in number.values:
        if number.unit is None and value in index.values:
            return True
        if number.unit and (value, number.unit) in index.with_unit:
            return True
        if number.unit not in (None, "%") and value in index.values and number.unit in index.currencies:
            return True
    return bool(number.parts) and number.unit is None and all(p in index.values for p in number.parts)


def _month(word: str) -> int | None:
    return next((n for n, pattern in enumerate(_MONTH, 1) if pattern.match(word)), None)


def _quotes(summary: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _QUOTED.finditer(summary)]


def _phrase_key(text: str) -> str:
    return " ".join(m.group(0) for m in re.finditer(r"\w+", fold(text)))


def _names(summary: str) -> list[str]:
    """Capitalised words (as written) that are not there only because a sentence starts:
    every one after a sentence's first word, and its first word when a capitalised word
    follows it ("Maria Ivanova said")."""
    names: list[str] = []
    for sentence in _SENTENCE_END.split(summary):
        words = [m.group(0) for m in _WORD.finditer(sentence)]
        for n, word in enumerate(words):
            if (
                len(word) < 2
                or not word[0].isupper()
                or fold(word) in _NOT_NAMES
                or _month(fold(word)) is not None
            ):
                continue
            if n == 0 and not (len(words) > 1 and words[1][0].isupper()):
                continue
            names.append(word)
    return names


def _forms(word: str) -> list[str]:
    """A folded word and its parts: "jean-luc" → jean-luc, jean, luc; "smith's" → smith."""
    word = _POSSESSIVE.sub("", word)
    parts = re.split(r"['’-]", word)
    return [word, *parts] if len(parts) > 1 else [word]


def _name_found(name: str, index: _Source) -> bool:
    whole, *parts = _forms(fold(name))
    return _word_found(whole, index) or (bool(parts) and all(_word_found(p, index) for p in parts))


def _word_found(word: str, index: _Source) -> bool:
    if word in index.words:
        return True
    if len(word) < 4:
        return False
    for other in index.by_prefix.get(word[:3], ()):
        if abs(len(other) - len(word)) > ENDING_SLACK or min(len(other), len(word)) < 4:
            continue
        common = len(_common_prefix(word, other))
        if common >= max(4, min(len(word), len(other)) - ENDING_SLACK):
            return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
