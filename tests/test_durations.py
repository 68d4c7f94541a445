"""Durations as users write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable import InvalidDuration
from durable._durations import to_seconds


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (30, 30.0),
        (0.25, 0.25),
        (timedelta(hours=2), 7200.0),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("2 hours", 7200.0),
        ("1h30m", 5400.0),
        ("1 day 6h", 108000.0),
        ("2 weeks", 1209600.0),
        (" 3 Minutes ", 180.0),
        ("1.5h", 5400.0),
    ],
)
def test_durations_in_every_form(written: float | timedelta | str, seconds: float) -> None:
    assert to_seconds(written) == seconds


@pytest.mark.parametrize("written", ["", "soon", "5", "5 parsecs", "h", "-1s", "1h 2"])
def test_unreadable_strings_say_how_to_write_one(written: str) -> None:
    with pytest.raises(InvalidDuration, match="number and a unit"):
        to_seconds(written)


@pytest.mark.parametrize("written", [-1, float("inf"), float("nan"), timedelta(seconds=-1)])
def test_negative_or_infinite_durations_are_refused(written: float | timedelta) -> None:
    with pytest.raises(InvalidDuration, match="non-negative"):
        to_seconds(written)


def test_other_types_are_refused_by_name() -> None:
    with pytest.raises(InvalidDuration, match="not list"):
        to_seconds([1])  # type: ignore[arg-type]
    with pytest.raises(InvalidDuration, match="bool"):
        to_seconds(True)
