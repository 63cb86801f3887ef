"""Lead images without a stated size: their width and height read from their first bytes.

A feed that names a picture but not its size (most of them) would leave the email without
that picture (an image needs width and height to show without a layout jump). At ingest,
with ``render.images`` on, :func:`measure_images` fetches the first bytes of each such
picture and reads its size with an image-header library (PNG, GIF, JPEG, WebP…): at most
:data:`HEAD_BYTES` bytes each, within what is left of the source's ``ingest.timeout``, for at
most :data:`MAX_MEASURED` pictures per source. A picture that cannot be measured is dropped.
"""

from __future__ import annotations

import io
import time

import imagesize

from digest.ingest.articles import ArticleInput
from digest.ingest.fetch import FetchError, fetch_head
from digest.ingest.images import checked_image, is_unsized

HEAD_BYTES = 64 * 1024
"""Enough for a PNG/GIF/WebP header and a JPEG's frame header after most EXIF blocks."""
MAX_MEASURED = 20
"""Pictures measured per source and ingest: the newest entries are the ones an issue shows."""


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` read from an image's first bytes, or None when they do not say."""
    try:
        width, height = imagesize.get(io.BytesIO(data))
    except (OSError, ValueError, IndexError, TypeError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def measure_images(
    items: list[ArticleInput], *, deadline: float, max_bytes: int, user_agent: str
) -> tuple[int, int]:
    """Give each item's unsized picture its size, or drop it; ``deadline`` is a
    ``time.monotonic()`` value the whole pass ends by. Returns ``(measured, dropped)``."""
    measured = dropped = tried = 0
    limit = min(HEAD_BYTES, max_bytes)
    for item in items:
        if not is_unsized(item.image):
            continue
        assert item.image is not None
        left = deadline - time.monotonic()
        size = None
        if tried < MAX_MEASURED and left > 0.05:
            tried += 1
            try:
                head = fetch_head(item.image["url"], limit=limit, timeout=left, user_agent=user_agent)
                size = image_size(head)
            except FetchError:
                size = None
        image = checked_image({**item.image, "width": size[0], "height": size[1]}) if size else None
        item.image = image
        measured += image is not None
        dropped += image is None
    return measured, dropped
