"""Virtual time: a Clock whose time moves only when a test runtime moves it.

Durable timers, retry back-offs and unloaded sleepers wait on the runtime's Clock; here they
are kept in a heap instead of on the host loop, and fire when the test runtime jumps the time
to them. Journaled timestamps, and durable.now() in workflows and activities, follow it.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

from .._asyncio_private import run_handle
from .._engine._clock import Clock


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class VirtualClock(Clock):
    """Epoch seconds that stand still until advanced; timers fire as time reaches them."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._timers: list[asyncio.TimerHandle] = []  # a heap, earliest first

    def time(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        loop = asyncio.get_running_loop()
        if when <= self._now:  # due already: as the system clock would, on the next iteration
            return loop.call_soon(callback, *args)
        handle = asyncio.TimerHandle(when, callback, args, loop)
        heapq.heappush(self._timers, handle)
        return handle

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handle = self.call_at(when, _settle, future)
        try:
            await future
        finally:
            handle.cancel()

    def next_due(self) -> float | None:
        """When the earliest pending timer fires; None if none is pending."""
        timers = self._timers
        while timers and timers[0].cancelled():
            heapq.heappop(timers)
        return timers[0].when() if timers else None

    def fire_next(self, limit: float = float("inf")) -> bool:
        """Jump to the earliest timer (if due by `limit`) and fire every timer due then.

        Returns whether time moved to a timer. Callbacks run now, on the host loop's task
        that calls this, as the loop would run them (each in the context it was armed in).
        """
        when = self.next_due()
        if when is None or when > limit:
            return False
        self._now = max(self._now, when)
        timers = self._timers
        while timers and timers[0].when() <= self._now:
            handle = heapq.heappop(timers)
            if not handle.cancelled():
                run_handle(handle)  # (as the loop would: its context, its error reporting)
        return True

    def move_to(self, when: float) -> None:
        """Set the time forward (never back) without firing anything."""
        self._now = max(self._now, when)
