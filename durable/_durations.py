"""Durations as users write them ("30s", "2 hours", "1h30m", timedelta, seconds) -> seconds.

A leaf: imports nothing from durable but the errors.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from ._errors import InvalidDuration

Duration = float | int | timedelta | str

_UNITS = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?")


def to_seconds(duration: Duration, *, what: str = "duration") -> float:
    """Seconds in `duration`; a bare number is seconds.

    Raises:
        InvalidDuration: negative, not finite, or a string that is not "<number><unit>..."
            with units ms, s, m, h, d, w (or their words: "2 hours", "1 day 6h").
    """
    if isinstance(duration, bool):
        raise InvalidDuration(f"{what} must be seconds, a timedelta or a string, not a bool")
    if isinstance(duration, timedelta):
        seconds = duration.total_seconds()
    elif isinstance(duration, int | float):
        seconds = float(duration)
    elif isinstance(duration, str):
        seconds = _parse(duration, what)
    else:
        raise InvalidDuration(
            f"{what} must be seconds, a timedelta or a string like '30s' or '2 hours', "
            f"not {type(duration).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidDuration(f"{what} must be a finite, non-negative duration, not {duration!r}")
    return seconds


def _parse(text: str, what: str) -> float:
    lowered = text.strip().lower()
    total, position = 0.0, 0
    while position < len(lowered):
        match = _PART.match(lowered, position)
        if match is None or match.group(2) not in _UNITS:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not lowered or position < len(lowered):
        raise InvalidDuration(
            f"{what} {text!r} is not a duration: write a number and a unit, e.g. '500ms', "
            "'30s', '2 hours', '1h30m' or '1 day' (units: ms, s, m, h, d, w)"
        )
    return total
