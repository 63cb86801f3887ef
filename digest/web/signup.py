"""``/subscribe``: the sign-up form."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Add the sign-up routes to ``app``."""
