"""durable.Limit: a concurrency and rate limit that activities share, across workflows.

The rate-limited thing is often one API, called by activities of many workflows: declare a
Limit once and give it to each activity (`@durable.activity(limit=card_api)`). An attempt
waits for the limit before it calls the function, inside the attempt (its timeout counts
the wait). It holds across every workflow and runtime of the process, on any loop or thread;
not across processes (see the README).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, final

import anyio.to_thread

from ._errors import InvalidQueue
from ._queues import Rate


@final
class Limit:
    """At most `concurrency` calls at once and at most `rate` starts per period, shared.

    Args:
        name: for messages.
        concurrency: at most this many calls of its activities run at once (None: no limit).
        rate: at most `rate.limit` calls start per `rate.period` (None: no limit).

    Raises:
        InvalidQueue: a concurrency below 1, or neither limit given.
    """

    def __init__(
        self, name: str, *, concurrency: int | None = None, rate: Rate | None = None
    ) -> None:
        if concurrency is not None and (
            not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
        ):
            raise InvalidQueue(
                queue=name, option="concurrency", value=concurrency, expected="an int >= 1"
            )
        if rate is not None and not isinstance(rate, Rate):
            raise InvalidQueue(
                queue=name, option="rate", value=rate, expected='durable.Rate(n, per="1 s")'
            )
        if concurrency is None and rate is None:
            raise InvalidQueue(
                queue=name,
                option="concurrency",
                value=None,
                expected="given (or rate=durable.Rate(...)): a Limit with no limit limits nothing",
            )
        self.name = name
        self.concurrency = concurrency
        self.rate = rate
        self._lock = threading.Lock()
        self._running = 0
        self._starts: collections.deque[float] = collections.deque()
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = (
            collections.deque()
        )

    @property
    def running(self) -> int:
        """How many calls hold the limit now."""
        return self._running

    def _try(self, now: float) -> float | None:
        """Take the limit (None), or how long until the rate allows it (0: a slot must free)."""
        if self.concurrency is not None and self._running >= self.concurrency:
            return 0.0
        if self.rate is not None:
            starts = self._starts
            while starts and now - starts[0] >= self.rate.period:
                starts.popleft()
            if len(starts) >= self.rate.limit:
                return starts[0] + self.rate.period - now
            starts.append(now)
        self._running += 1
        return None

    async def __aenter__(self) -> Limit:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                wait = self._try(time.monotonic())
                if wait is None:
                    return self
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, wait if wait > 0 else None)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    if (loop, future) in self._waiters:
                        self._waiters.remove((loop, future))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            self._running -= 1
            waiters = list(self._waiters)
            self._waiters.clear()
        for loop, future in waiters:  # (each tries again; those that lose wait again)
            loop.call_soon_threadsafe(_settle, future)

    def __repr__(self) -> str:
        return f"Limit({self.name!r}, concurrency={self.concurrency!r}, rate={self.rate!r})"


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def limited(fn: Callable[..., Any], is_async: bool, limit: Limit) -> Callable[..., Any]:
    """An async function that calls `fn` (a sync one in a worker thread) holding `limit`."""
    if is_async:

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            async with limit:
                return await fn(*args, **kwargs)

        return functools.wraps(fn)(call_async)

    async def call_sync(*args: Any, **kwargs: Any) -> Any:
        async with limit:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args, **kwargs), abandon_on_cancel=True
            )

    return functools.wraps(fn)(call_sync)
