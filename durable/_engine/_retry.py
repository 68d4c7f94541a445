"""RetryPolicy and the back-off arithmetic (pure: no clock, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .._durations import Duration, to_seconds


def error_names(error_type: type[BaseException]) -> set[str]:
    """Names an error matches in non_retryable_errors: each class of its MRO, short and dotted."""
    names = set()
    for klass in error_type.__mro__:
        names.add(klass.__qualname__)
        names.add(f"{klass.__module__}.{klass.__qualname__}")
    return names


@dataclass(frozen=True)
class RetryPolicy:
    """How an activity is retried after a failed attempt.

    The delay before attempt n+1 is `initial_interval * backoff_coefficient ** (n - 1)`, capped
    at `maximum_interval`. Attempts and back-off waits are journaled, so a crash neither resets
    the count nor shortens a wait.

    Attributes:
        initial_interval: delay before the first retry (default 1 s).
        backoff_coefficient: growth of the delay per attempt (default 2.0).
        maximum_interval: cap on the delay (default 100 x initial_interval).
        maximum_attempts: attempts in all, the first included (default 3; 0 = unlimited).
        non_retryable_errors: exception classes, or their names ("ValueError",
            "myapp.CardDeclined"), that fail the activity at once (subclasses match too).
    """

    initial_interval: Duration = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: Duration | None = None
    maximum_attempts: int = 3
    non_retryable_errors: Sequence[type[BaseException] | str] = field(default=())

    def __post_init__(self) -> None:
        to_seconds(self.initial_interval, what="initial_interval")
        if self.maximum_interval is not None:
            to_seconds(self.maximum_interval, what="maximum_interval")
        if self.backoff_coefficient < 1:
            raise ValueError("backoff_coefficient must be >= 1")
        if self.maximum_attempts < 0:
            raise ValueError("maximum_attempts must be >= 0 (0 means unlimited)")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based) before the next one."""
        initial = to_seconds(self.initial_interval)
        cap = (
            to_seconds(self.maximum_interval)
            if self.maximum_interval is not None
            else initial * 100
        )
        exponent = min(attempt - 1, 1000)
        try:
            delay = initial * self.backoff_coefficient**exponent
        except OverflowError:
            delay = cap
        return min(delay, cap)

    def retries_after(self, attempt: int, error_type: type[BaseException]) -> bool:
        """Whether an attempt that raised `error_type` is followed by another."""
        if self.maximum_attempts and attempt >= self.maximum_attempts:
            return False
        names = error_names(error_type)
        for entry in self.non_retryable_errors:
            if isinstance(entry, str):
                if entry in names:
                    return False
            elif issubclass(error_type, entry):
                return False
        return True


NO_RETRY = RetryPolicy(maximum_attempts=1)
