"""RetryPolicy: back-off arithmetic and which errors are retried."""

from __future__ import annotations

import pytest

from durable import InvalidDuration, RetryPolicy


def test_back_off_grows_by_the_coefficient_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(initial_interval="1s", backoff_coefficient=2, maximum_interval="5s")
    assert [policy.delay_after(attempt) for attempt in range(1, 6)] == [1, 2, 4, 5, 5]


def test_the_default_cap_is_a_hundred_initial_intervals() -> None:
    assert RetryPolicy(initial_interval=0.5).delay_after(50) == 50.0


def test_maximum_attempts_counts_the_first_and_zero_is_unlimited() -> None:
    three = RetryPolicy(maximum_attempts=3)
    assert [three.retries_after(attempt, ValueError) for attempt in (1, 2, 3)] == [
        True,
        True,
        False,
    ]
    assert RetryPolicy(maximum_attempts=0).retries_after(10_000, ValueError)


class CardDeclined(ValueError):
    pass


@pytest.mark.parametrize(
    "entry",
    [CardDeclined, ValueError, "CardDeclined", f"{__name__}.CardDeclined", "ValueError"],
)
def test_non_retryable_errors_match_classes_subclasses_and_names(
    entry: type[BaseException] | str,
) -> None:
    policy = RetryPolicy(maximum_attempts=0, non_retryable_errors=[entry])
    assert not policy.retries_after(1, CardDeclined)
    assert policy.retries_after(1, ConnectionError)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(InvalidDuration):
        RetryPolicy(initial_interval="soon")
    with pytest.raises(ValueError, match="backoff_coefficient"):
        RetryPolicy(backoff_coefficient=0.5)
    with pytest.raises(ValueError, match="maximum_attempts"):
        RetryPolicy(maximum_attempts=-1)
