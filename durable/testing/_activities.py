"""Activity doubles for tests: fakes that fail on cue, and counters of real calls.

A test runtime runs a mock in place of an activity by name, with the activity's own retry
policy and timeout, so a fake that fails twice exercises the real policy. Counters see every
attempt, of the real function or of a mock, with its idempotency key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from .._engine._context import current_activity
from .._engine._specs import ActivitySpec


class Failing:
    """An async fake that raises `error` on its first `times` calls, then succeeds.

    Built by failing(); `calls` counts every call.
    """

    def __init__(self, times: int, error: BaseException | type[BaseException], then: Any) -> None:
        if times < 0:
            raise ValueError(f"times is how many calls fail, not {times}")
        self.times = times
        self.error = error
        self.then = then
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error() if isinstance(self.error, type) else self.error
        if callable(self.then):
            result = self.then(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return self.then

    def __repr__(self) -> str:
        return f"<failing {self.times} times with {self.error!r}, then {self.then!r}>"


def failing(
    times: int, error: BaseException | type[BaseException] = ConnectionError, *, then: Any = None
) -> Failing:
    """A fake activity that fails `times` times, then returns `then` (or calls it).

    Args:
        times: how many calls raise (each attempt of a retry policy is a call).
        error: the exception (or exception type) raised.
        then: what later calls return; a callable (sync or async) is called with the
            activity's arguments instead.
    """
    return Failing(times, error, then)


@dataclasses.dataclass
class ActivityCall:
    """One attempt of a counted activity.

    Attributes:
        idempotency_key: the call's key (`<workflow id>/<step>`): the same for its retries
            and for a run again after a crash.
        attempt: 1, 2, ... within the call.
        args: the positional arguments it got.
        kwargs: the keyword arguments it got.
        error: what it raised, if it did.
        returned: whether it returned (False while it runs, or if it raised).
    """

    idempotency_key: str
    attempt: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    error: BaseException | None = None
    returned: bool = False


class CallCounter:
    """Every attempt of one activity in a test runtime, while it counts (see count_calls)."""

    def __init__(self, name: str, stop: Callable[[CallCounter], None]) -> None:
        self.name = name
        self.calls: list[ActivityCall] = []
        self._stop = stop
        self._lock = threading.Lock()  # (sync activities run in worker threads)

    @property
    def count(self) -> int:
        """How many attempts started."""
        return len(self.calls)

    @property
    def completed(self) -> int:
        """How many attempts returned."""
        return sum(call.returned for call in self.calls)

    def by_key(self, *, returned_only: bool = False) -> Counter[str]:
        """Attempts per idempotency key (only those that returned, if asked).

        A side effect keyed by its idempotency key happened once per key however often it
        ran: `all(n == 1 for n in counter.by_key(returned_only=True).values())` is the
        strict form of "charged once"; the keys are what a real payment API deduplicates.
        """
        return Counter(
            call.idempotency_key for call in self.calls if call.returned or not returned_only
        )

    def stop(self) -> None:
        """Stop counting (the calls so far stay)."""
        self._stop(self)

    def __enter__(self) -> CallCounter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ActivityCall:
        info = current_activity.get()
        workflow_id, _, step, attempt, generation, _ = info or ("?", "", -1, 0, 0, None)
        key = f"{workflow_id}/g{generation}/{step}" if generation else f"{workflow_id}/{step}"
        call = ActivityCall(key, attempt, args, kwargs)
        with self._lock:
            self.calls.append(call)
        return call

    def __repr__(self) -> str:
        return f"<CallCounter {self.name!r}: {self.count} attempts, {self.completed} returned>"


@contextlib.contextmanager
def _recording(
    counters: list[CallCounter], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[None]:
    calls = [counter._begin(args, kwargs) for counter in counters]
    try:
        yield
    except BaseException as error:
        for call in calls:
            call.error = error
        raise
    for call in calls:
        call.returned = True


def counted(
    fn: Callable[..., Any], is_async: bool, counters: list[CallCounter]
) -> Callable[..., Any]:
    """`fn`, reporting each call to `counters`."""
    if is_async:

        async def counted_async(*args: Any, **kwargs: Any) -> Any:
            with _recording(counters, args, kwargs):
                return await fn(*args, **kwargs)

        return counted_async

    def counted_sync(*args: Any, **kwargs: Any) -> Any:
        with _recording(counters, args, kwargs):
            return fn(*args, **kwargs)

    return counted_sync


class ActivityDoubles:
    """A test runtime's mocks and counters, and the spec substitution that applies them."""

    def __init__(self) -> None:
        self.mocks: dict[str, list[Callable[..., Any]]] = {}  # a stack per name
        self.counters: dict[str, list[CallCounter]] = {}
        # What runs instead of every activity without a mock (the fork check's recorded
        # results: nothing real may run there); None: the real one.
        self.fallback: Callable[[ActivitySpec], ActivitySpec] | None = None

    def substitute(self, spec: ActivitySpec) -> ActivitySpec:
        """What runs for `spec` now: its mock, counted, or the real function, counted."""
        stack = self.mocks.get(spec.name)
        counters = self.counters.get(spec.name)
        if not stack and self.fallback is not None:
            return self.fallback(spec)
        if not stack and not counters:
            return spec
        fn, is_async = spec.fn, spec.is_async
        if stack:
            fn = stack[-1]
            is_async = _is_async(fn)
        if counters:
            fn = counted(fn, is_async, list(counters))
        return dataclasses.replace(spec, fn=fn, is_async=is_async)

    def push_mock(self, name: str, fake: Callable[..., Any]) -> None:
        self.mocks.setdefault(name, []).append(fake)

    def pop_mock(self, name: str, fake: Callable[..., Any]) -> None:
        stack = self.mocks.get(name, [])
        if fake in stack:
            stack.remove(fake)

    def count(self, name: str) -> CallCounter:
        counter = CallCounter(name, self._uncount)
        self.counters.setdefault(name, []).append(counter)
        return counter

    def _uncount(self, counter: CallCounter) -> None:
        counters = self.counters.get(counter.name, [])
        if counter in counters:
            counters.remove(counter)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 (an object with an async __call__)
    return call is not None and inspect.iscoroutinefunction(call)
