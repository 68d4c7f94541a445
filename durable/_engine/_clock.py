"""Where a runtime gets the time and its timers: the system clock, or durable.testing's.

Everything durable waits for by the calendar (durable timers, retry back-offs, unloaded
sleepers) and every timestamp it journals goes through one Clock, so a test can replace it
with virtual time. Activity timeouts and the inbox poll stay on the host loop's real time:
they measure real work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


class Clock:
    """The system clock: epoch seconds, and timers on the running host loop."""

    # Seconds since the epoch: time.time itself, no Python frame (twice per activity step).
    time: Callable[[], float] = staticmethod(time.time)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        """Call `callback(*args)` on the running loop once time() reaches `when`."""
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.time()), callback, *args)

    async def sleep_until(self, when: float) -> None:
        delay = when - self.time()
        if delay > 0:
            await asyncio.sleep(delay)


SYSTEM_CLOCK = Clock()
