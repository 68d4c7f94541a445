"""Events from outside, as workflow code sees them: buffered by name until awaited.

An event is delivered when its journal record is (in journal order, on replay as live); the
code takes it with `wait_for_event(name)`. One that arrives before anyone waits is kept, in
order, for the next wait on its name; waiters on one name are served first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any


class EventWaiters:
    """What was delivered and not taken yet, and who waits, by event name."""

    def __init__(self) -> None:
        self._kept: dict[str, collections.deque[Any]] = {}
        self._waiting: dict[str, collections.deque[tuple[int, asyncio.Future[Any]]]] = {}

    def deliver(self, name: str, payload: Any) -> int | None:
        """Hand the event to the first live waiter (its step), else keep it (None)."""
        waiters = self._waiting.get(name)
        while waiters:
            step, future = waiters.popleft()
            if not future.done():
                future.set_result(payload)
                return step
        self._kept.setdefault(name, collections.deque()).append(payload)
        return None

    def take(self, name: str) -> tuple[bool, Any]:
        """The oldest kept event of this name, if there is one."""
        kept = self._kept.get(name)
        if not kept:
            return False, None
        return True, kept.popleft()

    def wait(self, name: str, step: int, future: asyncio.Future[Any]) -> None:
        self._waiting.setdefault(name, collections.deque()).append((step, future))

    def forget(self, name: str, step: int) -> None:
        """A wait was cancelled (its timeout fired, or the workflow was cancelled)."""
        waiters = self._waiting.get(name)
        if waiters:
            self._waiting[name] = collections.deque(
                (waiting, future) for waiting, future in waiters if waiting != step
            )

    def kept(self) -> list[list[Any]]:
        """The events delivered and not taken, as [name, payload] (continue_as_new carries them)."""
        return [[name, payload] for name, kept in self._kept.items() for payload in kept]

    def preload(self, carried: list[list[Any]]) -> None:
        for name, payload in carried:
            self._kept.setdefault(name, collections.deque()).append(payload)
