"""Article files → article inputs: a JSON array, JSON Lines or CSV, read row by row.

:func:`read_article_file` splits a file into records, naming the line of each problem;
:func:`article_from_record` validates one record. No database access.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from digest.config import Config
from digest.errors import DigestError
from digest.ingest.articles import ArticleInput, map_category, parse_date
from digest.ingest.sanitize import is_web_url, text_to_html

ARTICLE_FIELDS = ("title", "url", "summary", "category", "source", "author", "published", "body", "guid")

Record = tuple[int, dict[str, Any]]


def read_article_file(
    text: str, kind: str, name: str
) -> tuple[list[Record], list[tuple[int, str]], set[str]]:
    """Split an article file into ``(line, record)`` pairs, ``(line, problem)`` pairs for
    rows that are not records, and the unknown field names seen. A file that cannot be
    read as a whole (broken JSON array, CSV without a url column) raises DigestError
    naming ``name`` and the line."""
    if kind == "json":
        pairs = list(_json_records(text, name))
    elif kind == "jsonl":
        pairs = list(_jsonl_records(text, name))
    elif kind == "csv":
        pairs = list(_csv_records(text, name))
    else:
        raise DigestError(f"{name}: unknown article file kind {kind!r}")
    records: list[Record] = []
    problems: list[tuple[int, str]] = []
    unknown: set[str] = set()
    for line, value in pairs:
        if isinstance(value, str):
            problems.append((line, value))
            continue
        unknown.update(k for k in value if k not in ARTICLE_FIELDS)
        records.append((line, value))
    return records, problems, unknown


def _json_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    line_at = _LineCounter(text)

    def broken(at: int, msg: str) -> DigestError:
        return DigestError(f"{name} line {line_at(at)}: invalid JSON ({msg})")

    if text.startswith("{", pos):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise broken(exc.pos, exc.msg) from None
        if _skip_ws(text, end) != len(text):
            raise broken(_skip_ws(text, end), "extra data after the object")
        yield line_at(pos), value if isinstance(value, dict) else "expected an object"
        return
    if not text.startswith("[", pos):
        raise broken(pos, "expected a JSON array of article objects")
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            start = pos
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise broken(exc.pos, exc.msg) from None
            yield line_at(start), value if isinstance(value, dict) else "expected an object {...}"
            pos = _skip_ws(text, pos)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise broken(pos, "expected ',' or ']'")
    if _skip_ws(text, pos) != len(text):
        raise broken(_skip_ws(text, pos), "extra data after the array")


class _LineCounter:
    """Line numbers for increasing offsets in one pass (not a count from 0 each time)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def __call__(self, offset: int) -> int:
        if offset < self.pos:
            return self.text.count("\n", 0, offset) + 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _jsonl_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON ({exc.msg} at column {exc.colno})"
            continue
        yield number, value if isinstance(value, dict) else "expected an object {...}"


def _csv_records(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=csv_delimiter(first))
    try:
        header = next(reader)
    except StopIteration:
        raise DigestError(f"{name}: empty CSV file") from None
    except csv.Error as exc:
        raise DigestError(f"{name} line 1: invalid CSV ({exc})") from None
    columns = [h.strip().lower().removeprefix("\ufeff") for h in header]
    for required in ("title", "url"):
        if required not in columns:
            raise DigestError(f'{name} line 1: the CSV header has no "{required}" column')
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DigestError(f"{name} line {reader.line_num}: invalid CSV ({exc})") from None
        previous_end = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            yield start, f"{len(cells)} cells but the header has {len(columns)} columns"
            continue
        yield start, {col: cell for col, cell in zip(columns, cells, strict=False) if col}


def csv_delimiter(header: str) -> str:
    """Comma, or semicolon/tab when the header uses those (spreadsheet exports do)."""
    return max((",", ";", "\t"), key=header.count)


def article_from_record(config: Config, record: dict[str, Any]) -> ArticleInput:
    """Validate one article-file record; raises ValueError with the problem (no line)."""
    values: dict[str, str | None] = {}
    for key in ARTICLE_FIELDS:
        value = record.get(key)
        if value is None:
            values[key] = None
        elif isinstance(value, str):
            values[key] = value.strip() or None
        elif key in ("guid", "published") and isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = str(value)
        else:
            raise ValueError(f'"{key}" must be text, not {type(value).__name__}')
    if not values["title"]:
        raise ValueError('missing "title"')
    if not values["url"]:
        raise ValueError('missing "url"')
    if not is_web_url(values["url"]):
        raise ValueError(f'"url" is not an http(s) URL: {_short(values["url"])!r}')
    published = None
    if values["published"]:
        raw = record["published"]
        try:
            published = parse_date(raw)
        except ValueError:
            raise ValueError(
                f'bad date in "published": {_short(str(raw))!r} (use ISO 8601, e.g. 2026-01-05T07:30:00Z)'
            ) from None
    return ArticleInput(
        title=values["title"],
        url=values["url"] or "",
        guid=values["guid"],
        summary_html=values["summary"],
        content_html=_body_html(values["body"]),
        category=map_category(values["category"], config),
        source_category=values["category"] or "",
        source=values["source"],
        author=values["author"],
        published=published,
    )


def _body_html(body: str | None) -> str | None:
    if not body:
        return None
    if "<" in body:
        return body
    return text_to_html(body)


def _short(text: str | None, limit: int = 60) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
