"""durable.Limit: a concurrency and rate limit that activities share, across workflows.

The rate-limited thing is often one API, called by activities of many workflows: declare a
Limit once and give it to each activity (`@durable.activity(limit=card_api)`). An attempt
waits for the limit before it calls the function, inside the attempt (its timeout counts
the wait).

In a runtime with a journal directory the limit holds across every process sharing that
directory: an attempt takes a slot file's flock under `<directory>/limits/<name>/` (the
kernel lets go when its process dies, so a SIGKILL never leaks one) and records its start in
the limit's starts ring, under the limit's lock (`_storage/_limit_files.py`). The runtime
tells its activities the directory through `limit_home` (a ContextVar its workflow tasks
set, which activity tasks and worker threads copy). On a PostgresStore the home is the
database (SharedLimits: session advisory locks and the starts table, `_queue_postgres.py`),
so the limit holds across hosts. Without either (`async with limit` outside a runtime) it
holds across the workflows and runtimes of the process only, on any loop or thread.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, final

import anyio.to_thread

from ._errors import InvalidQueue
from ._queues import Rate, check_name
from ._storage._limit_files import LimitFiles


class SharedLimits(Protocol):
    """A store that holds limits for every process on it (PostgreSQL's)."""

    async def take_limit(self, limit: Limit) -> tuple[int | None, float | None]:
        """(slot, None) once taken (its start counted), else (None, seconds to wait)."""
        ...

    async def give_back_limit(self, limit: Limit, slot: int | None) -> None:
        """Let go of a slot `take_limit` gave."""
        ...


# Where the processes sharing the limits meet: a journal directory, a SharedLimits store, or
# None (this process only); set by the runtime in each workflow's task.
limit_home: ContextVar[Path | SharedLimits | None] = ContextVar("durable_limit_home", default=None)
_HeldShared = tuple[SharedLimits, int | None]
POLL_INTERVAL = 0.02  # how often a waiting call looks for another process's release (seconds)
SHARED_POLL_INTERVAL = 0.1  # the same on a database (each look is a round trip)
_Held = tuple[LimitFiles | None, int | None]  # (the shared files, the slot) of one call


@final
class Limit:
    """At most `concurrency` calls at once and at most `rate` starts per period, shared.

    Args:
        name: its name on the store (1-100 letters, digits and . _ - : @ = +): limits of
            one name share their slots and starts across the processes of a directory.
        concurrency: at most this many calls of its activities run at once (None: no limit).
        rate: at most `rate.limit` calls start per `rate.period` (None: no limit).

    Raises:
        InvalidQueue: a bad name, a concurrency below 1, or neither limit given.
    """

    def __init__(
        self, name: str, *, concurrency: int | None = None, rate: Rate | None = None
    ) -> None:
        check_name(name)
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
        self._files: dict[Path, LimitFiles] = {}  # (kept open: an open costs more than a flock)

    @property
    def running(self) -> int:
        """How many calls of this process hold the limit now."""
        return self._running

    async def acquire(self) -> _Held | _HeldShared:
        """Wait for the limit: across the processes of the runtime's directory or database.

        Returns what `release` gives back.
        """
        directory = limit_home.get()
        if directory is None:
            await self.__aenter__()
            return None, None
        if not isinstance(directory, Path):
            return await self._acquire_shared(directory)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                files = self._files.get(directory)
                if files is None:
                    files = self._files[directory] = LimitFiles(
                        directory, self.name, self.concurrency
                    )
                slot, wait = self._try_shared(files, time.time())
                if wait is None:
                    self._running += 1
                    return files, slot
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            try:  # (woken by a release here; polled for one elsewhere)
                await asyncio.wait_for(future, min(wait, POLL_INTERVAL) or POLL_INTERVAL)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    if (loop, future) in self._waiters:
                        self._waiters.remove((loop, future))

    async def _acquire_shared(self, home: SharedLimits) -> _HeldShared:
        while True:
            slot, wait = await home.take_limit(self)
            if wait is None:
                with self._lock:
                    self._running += 1
                return home, slot
            await asyncio.sleep(min(wait, SHARED_POLL_INTERVAL) or SHARED_POLL_INTERVAL)

    def _try_shared(self, files: LimitFiles, now: float) -> tuple[int | None, float | None]:
        """(slot, None) if taken, else (None, how long until the rate allows it or 0)."""
        with files.locked():
            slot = None
            if files.slots is not None:
                slot = files.slots.take()
                if slot is None:
                    return None, 0.0
            if self.rate is not None:
                allowed_at = files.rate_wait(self.rate.limit, self.rate.period, now)
                if allowed_at is not None:
                    if slot is not None and files.slots is not None:
                        files.slots.give_back(slot)
                    return None, max(allowed_at - now, 0.001)
                files.rate_record(self.rate.limit, now)
            return slot, None

    async def release(self, held: _Held | _HeldShared) -> None:
        """Give back what `acquire` took."""
        files, slot = held
        if files is None:
            await self.__aexit__(None, None, None)
            return
        if not isinstance(files, LimitFiles):
            with self._lock:
                self._running -= 1
            await files.give_back_limit(self, slot)
            return
        with self._lock:
            if slot is not None and files.slots is not None:
                files.slots.give_back(slot)
            self._running -= 1
            waiters = list(self._waiters)
            self._waiters.clear()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future)

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
            held = await limit.acquire()
            try:
                return await fn(*args, **kwargs)
            finally:
                await limit.release(held)

        return functools.wraps(fn)(call_async)

    async def call_sync(*args: Any, **kwargs: Any) -> Any:
        held = await limit.acquire()
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args, **kwargs), abandon_on_cancel=True
            )
        finally:
            await limit.release(held)

    return functools.wraps(fn)(call_sync)
