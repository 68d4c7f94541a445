"""Loops that talk to a shared store (serve, the inbox poller) riding out its outages.

A database restart or a terminated connection is a pause, not the end of the process: the
loop logs once that the store is away, backs off, and logs again when it answers.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger("durable")

MAX_BACKOFF = 5.0  # seconds: the longest wait between two tries while the store is away


class Outage:
    """A loop's view of its store being away: log once, back off, say when it is back.

    The waits grow from `first` (doubling) to at most MAX_BACKOFF seconds.
    """

    def __init__(self, who: str, first: float) -> None:
        self._who = who
        self._first = max(first, 0.05)
        self._delay = 0.0
        self._since: float | None = None

    async def wait(self, error: BaseException) -> None:
        loop = asyncio.get_running_loop()
        if self._since is None:
            self._since = loop.time()
            self._delay = self._first
            logger.warning(
                "%s: the journal store is unavailable (%s: %s); retrying, at most every %.0f s",
                self._who,
                type(error).__name__,
                error,
                MAX_BACKOFF,
            )
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, MAX_BACKOFF)

    def over(self) -> None:
        if self._since is not None:
            away = asyncio.get_running_loop().time() - self._since
            logger.warning("%s: the journal store answers again (after %.1f s)", self._who, away)
            self._since = None
