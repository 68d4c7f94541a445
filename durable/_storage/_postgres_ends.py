"""Workflows ending on PostgreSQL: their `done` marks and leases given back, many at a time.

When a workflow ends its runner notes it done, then gives its lease back: two updates of the
journal's row, each a commit of its own (a round trip and a WAL flush). A runtime ending
many workflows at once (a queue's drain) sends what was asked while one statement is in
flight in the next: one UPDATE for every journal of the batch and one NOTIFY for serve()'s
waiters if a lease was given back. Each caller is answered once its own change committed.
Both changes stay what they were: `done` where the fence is still the runner's, the lease
only where this store still holds it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._postgres_sql import CHANNEL

if TYPE_CHECKING:
    from ._postgres import PostgresStore

_END = """
WITH given AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::bool[])
         AS g(name, fence, finished, released)
), changed AS (
  UPDATE durable_journals AS j
     SET done = j.done OR g.finished,
         owner = CASE WHEN g.released AND j.owner = $5 THEN NULL ELSE j.owner END,
         lease_until = CASE WHEN g.released AND j.owner = $5 THEN NULL ELSE j.lease_until END
    FROM given AS g
   WHERE j.name = g.name AND j.fence = g.fence
  RETURNING g.released
)
SELECT pg_notify($6, 'released') WHERE EXISTS (SELECT 1 FROM changed WHERE released)
"""


class EndBatcher:
    """One UPDATE in flight at a time; what comes meanwhile goes in the next (see above)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        # (name, fence) -> [finished, released], and the callers waiting for them
        self._pending: dict[tuple[str, int], list[bool]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self.statements = 0  # (for tests and benchmarks)

    async def end(self, name: str, fence: int, *, finished: bool, released: bool) -> None:
        """Mark journal `name` done and/or give its lease back (committed on return)."""
        change = self._pending.setdefault((name, fence), [False, False])
        change[0] |= finished
        change[1] |= released
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="durable ends")
        await waiter

    async def _run(self) -> None:
        while self._waiters:
            pending, self._pending = self._pending, {}
            waiters, self._waiters = self._waiters, []
            try:
                async with self._store.session("ending workflows") as connection:
                    self.statements += 1
                    await connection.execute(
                        _END,
                        [name for name, _ in pending],
                        [fence for _, fence in pending],
                        [change[0] for change in pending.values()],
                        [change[1] for change in pending.values()],
                        self._store.owner,
                        CHANNEL,
                    )
            except Exception as error:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def close(self) -> None:
        """Wait for the statement under way (its callers are answered)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
