"""Content must never stop an issue: find the articles that break the HTML and leave them out.

Ingest strips what MJML cannot take and the render cleans again; this is the last line.
When the full issue fails to render, each article is tried on its own; those that fail
alone are left out, named on the ``digest.render`` logger (``digest run`` reports it),
and the issue is rendered without them. A failure that is not any one article's (a
broken template) is raised as it was.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from digest.errors import DigestError

logger = logging.getLogger("digest.render")


def render_skipping_broken(
    render: Callable[[set[int]], str], articles: Sequence[dict[str, Any]]
) -> tuple[str, dict[int, str]]:
    """``render(ids)`` for every article's id; when that raises DigestError, again without
    each article that also fails alone. Returns the output and ``{id: why}`` for the
    articles left out (empty when all rendered)."""
    ids = {a["id"] for a in articles}
    try:
        return render(ids), {}
    except DigestError as exc:
        first = exc
    dropped: dict[int, str] = {}
    for article in articles:
        try:
            render({article["id"]})
        except DigestError as exc:
            title = str(article.get("title") or "")[:60]
            dropped[article["id"]] = f"article {article['id']} ({title!r}) left out: {exc}"
    if not dropped:
        raise first
    for why in dropped.values():
        logger.warning("%s", why)
    return render(ids - set(dropped)), dropped


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def collect_render_warnings(lines: list[str]) -> Iterator[None]:
    """Append every warning of the ``digest.render`` logger (an article left out of an
    issue, and why) to ``lines`` while the block runs."""
    handler = _Collect(lines)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
