"""Group commit of enqueues on PostgreSQL: the requests of many callers in one statement.

Each `enqueue` is a commit, and a commit's cost is the server's (a round trip, a WAL flush),
not the row's. So the requests handed in while one insert is in flight wait for it to end,
then go together in the next: one `INSERT ... SELECT FROM unnest(...)` and one NOTIFY per
queue, committed as one transaction (a single statement). A caller is answered once its own
request is committed: inserted, or not inserted because its id or its dedup_id is taken (the
caller then finds out by whom, on its own). Requests alone (one caller at a time) go at once,
as before: no wait is added.

A batch the server refuses for some other reason (a value out of range in one request) is
retried one request per statement, so one request's error is that request's alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._postgres_commit import database_away

if TYPE_CHECKING:
    from ._postgres import PostgresStore

BATCH = 500  # requests per statement at most

# One statement, one round trip: the request (unless its id has a journal already: started
# by id, or admitted and ended) and the news to every dispatcher, committed together.
INSERT_ONE = """
WITH inserted AS (
  INSERT INTO durable_queue_requests (id, queue, priority, not_before, key, dedup_id,
                                      workflow, payload)
  SELECT $1, $2, $3, now() + make_interval(secs => $4), $5, $6, $7, $8
   WHERE NOT EXISTS (SELECT 1 FROM durable_journals WHERE name = $1)
  ON CONFLICT DO NOTHING RETURNING seq
)
SELECT seq, pg_notify($9, $2) FROM inserted
"""
# The requests (unless their id has a journal already: started by id, or admitted and ended),
# in the order they were handed in (their seq, FIFO within a priority), and the news to every
# dispatcher of their queues, committed together. Returns the ids inserted.
_INSERT_MANY = """
WITH given AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::float8[], $5::text[],
                       $6::text[], $7::text[], $8::bytea[])
         WITH ORDINALITY AS g(id, queue, priority, delay, key, dedup_id, workflow, payload, n)
), inserted AS (
  INSERT INTO durable_queue_requests (id, queue, priority, not_before, key, dedup_id,
                                      workflow, payload)
  SELECT id, queue, priority, now() + make_interval(secs => delay), key, dedup_id, workflow,
         payload
    FROM given WHERE NOT EXISTS (SELECT 1 FROM durable_journals AS j WHERE j.name = given.id)
   ORDER BY n
  ON CONFLICT DO NOTHING RETURNING id, queue
), told AS (
  SELECT pg_notify($9, queue) FROM (SELECT DISTINCT queue FROM inserted) AS queues
)
SELECT id FROM inserted WHERE (SELECT count(*) FROM told) >= 0
"""


@dataclass(frozen=True)
class NewRequest:
    """One request to insert (key and dedup_id None when not given)."""

    workflow_id: str
    queue: str
    priority: int
    delay: float
    key: str | None
    dedup_id: str | None
    workflow: str
    payload: bytes


def columns_of(request: NewRequest) -> tuple[Any, ...]:
    """A request's values, in the statements' order ($1 to $8)."""
    return (
        request.workflow_id,
        request.queue,
        request.priority,
        request.delay,
        request.key,
        request.dedup_id,
        request.workflow,
        request.payload,
    )


class EnqueueBatcher:
    """One insert in flight at a time; what comes meanwhile goes in the next (see above)."""

    def __init__(self, store: PostgresStore, channel: str) -> None:
        self._store = store
        self._channel = channel
        self._pending: list[tuple[NewRequest, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        self.statements = 0  # inserts sent (for tests and benchmarks)

    async def insert(self, request: NewRequest) -> bool:
        """Insert `request`, committed on return: True, or False if its id or dedup_id is taken."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((request, waiter))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="durable enqueue")
        return await waiter

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                inserted = await self._send([request for request, _ in batch])
            except Exception as error:
                if len(batch) == 1 or database_away(error):
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(error)
                    continue
                await self._one_by_one(batch)
                continue
            for request, waiter in batch:
                if not waiter.done():
                    waiter.set_result(request.workflow_id in inserted)

    async def _one_by_one(self, batch: list[tuple[NewRequest, asyncio.Future[bool]]]) -> None:
        """The requests of a refused batch, each in its own statement (errors kept apart)."""
        for request, waiter in batch:
            try:
                inserted = await self._send([request])
            except Exception as error:
                if not waiter.done():
                    waiter.set_exception(error)
                continue
            if not waiter.done():
                waiter.set_result(request.workflow_id in inserted)

    async def _send(self, requests: list[NewRequest]) -> set[str]:
        columns: list[list[Any]] = [[] for _ in range(8)]
        for request in requests:
            for column, value in zip(columns, columns_of(request), strict=True):
                column.append(value)
        doing = f"enqueueing {requests[0].workflow_id!r}" + (
            f" and {len(requests) - 1} more" if len(requests) > 1 else ""
        )
        async with self._store.session(doing) as connection:
            self.statements += 1
            if len(requests) == 1:  # (alone: the simpler statement, less for the server)
                seq = await connection.fetchval(INSERT_ONE, *columns_of(requests[0]), self._channel)
                return set() if seq is None else {requests[0].workflow_id}
            rows = await connection.fetch(_INSERT_MANY, *columns, self._channel)
        return {row["id"] for row in rows}

    async def close(self) -> None:
        """Wait for the inserts under way (their callers are answered)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
