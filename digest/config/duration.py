"""Spans of time written in the config and on the command line: ``30m``, ``6h``, ``1d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

from digest.errors import ConfigError

# A span like 30m, 6h, 1d or 2w; digest.when reads --since spans with it too.
DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Parse ``30m``, ``6h``, ``1d``, ``2w`` into a timedelta."""
    m = DURATION.match(str(text))
    if not m:
        raise ConfigError(f"invalid duration {text!r}; use a number and a unit, like 1d, 12h or 7d")
    try:
        return timedelta(**{_DURATION_UNITS[m.group(2)]: int(m.group(1))})
    except OverflowError:
        raise ConfigError(f"duration {text!r} is too long") from None
