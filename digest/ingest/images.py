"""Lead images: pick one from a feed entry at ingest, keep it as JSON on the article.

A feed names its pictures in ``media:content``, ``media:thumbnail`` or an image enclosure.
Only an http(s) picture with a known size is worth keeping: the email gives every image
width and height attributes (no layout jump as it loads), and a picture of tiny size may be
a tracking pixel. A picture the feed states no size for is kept as a *candidate*
(:func:`unsized_image`) that :mod:`digest.ingest.image_sizes` measures from its first bytes.
Shown only with ``render.images = true``.
"""

from __future__ import annotations

import json
from typing import Any

IMAGE_MIN_SIDE = 40
"""Smaller images are never kept: tracking pixels and spacers."""
URL_MAX = 2000


def entry_image(entry: Any) -> dict[str, Any] | None:
    """The best picture feedparser found for ``entry``: ``{url, width, height}`` or None.
    The widest ``media:content`` image first, then ``media:thumbnail``, then an enclosure
    that says its size (rare)."""
    candidates: list[dict[str, Any]] = []
    for item in entry.get("media_content") or []:
        medium, kind = str(item.get("medium") or ""), str(item.get("type") or "")
        if medium == "image" or kind.startswith("image/") or (not medium and not kind):
            candidates.append(item)
    candidates.sort(key=lambda i: _size(i)[0], reverse=True)
    candidates += list(entry.get("media_thumbnail") or [])
    candidates += [
        {**e, "url": e.get("href")}
        for e in entry.get("enclosures") or []
        if str(e.get("type") or "").startswith("image/")
    ]
    for item in candidates:
        image = checked_image(item)
        if image is not None:
            return image
    for item in candidates:
        stand_in = {**item, "width": IMAGE_MIN_SIDE, "height": IMAGE_MIN_SIDE}  # the URL checks only
        if _size(item) == (0, 0) and checked_image(stand_in):
            return unsized_image(str(item.get("url")).strip())
    return None


def unsized_image(url: str) -> dict[str, Any]:
    """A picture whose size the feed does not state: ``{url, width: 0, height: 0}``, to be
    measured at ingest (:func:`digest.ingest.image_sizes.measure_images`) or dropped."""
    return {"url": url, "width": 0, "height": 0}


def is_unsized(image: dict[str, Any] | None) -> bool:
    """True for an :func:`unsized_image` candidate."""
    return bool(image) and _size(image) == (0, 0)


def _size(item: Any) -> tuple[int, int]:
    try:
        return int(item.get("width") or 0), int(item.get("height") or 0)
    except (TypeError, ValueError):
        return 0, 0


def checked_image(item: Any) -> dict[str, Any] | None:
    """``{"url", "width", "height"}`` of an image fit to show (an http(s) URL without quotes or
    spaces, both sides at least :data:`IMAGE_MIN_SIDE`), or None. Ingest stores only these; the
    renderer checks a snapshot's image again with the same rule."""
    url = str(item.get("url") or "").strip()
    if not url.lower().startswith(("https://", "http://")) or len(url) > URL_MAX:
        return None
    if any(c.isspace() or c in "\"'<>" for c in url):
        return None
    width, height = _size(item)
    if width < IMAGE_MIN_SIDE or height < IMAGE_MIN_SIDE:
        return None
    return {"url": url, "width": width, "height": height}


def image_json(image: dict[str, Any] | None) -> str | None:
    """The ``articles.image`` column value."""
    return json.dumps(image, separators=(",", ":")) if image else None


def load_image(value: Any) -> dict[str, Any] | None:
    """An ``articles.image`` column value decoded; None when empty or unreadable."""
    if not value:
        return None
    try:
        image = json.loads(value)
    except (TypeError, ValueError):
        return None
    return image if isinstance(image, dict) else None
