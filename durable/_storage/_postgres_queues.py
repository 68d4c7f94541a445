"""Durable queues on PostgreSQL: requests, slots and starts; rows and locks only.

What the file store keeps under `<directory>/queues/<name>/` lives here in two tables and
in advisory locks, so a queue's limits hold for runtimes on every host:

    durable_queue_requests  one row per queued workflow: its queue, priority, seq (FIFO
                            within a priority), not_before, key, dedup_id, workflow name and
                            encoded arguments (opaque), `admitted` once a runtime claimed it;
                            deleted when its workflow ends. A unique index on (queue,
                            dedup_id) is the de-duplication.
    durable_queue_starts    (queue, at): the starts within a rate period, read and written
                            under a transaction-level advisory lock of the queue.
    slots                   session advisory locks (pg_try_advisory_lock) on one connection
                            of the runtime, kept from the pool for its life: the server lets
                            go of them when that connection ends (its process died), as the
                            kernel lets go of a dead process's flock.

Claims take the waiting requests in (priority, seq) order `FOR UPDATE SKIP LOCKED`, so
runtimes claiming at once get different requests. Times are the database's clock.
Knows nothing of msgpack nor of workflows: the payload is the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import StoreUnavailable
from ._postgres_commit import connection_gone
from ._postgres_enqueue import INSERT_ONE, EnqueueBatcher, NewRequest
from ._postgres_sql import SCHEMA_VERSION
from ._queue_files import Request

if TYPE_CHECKING:
    from ._postgres import PostgresStore

CHANNEL = "durable_queue"
# Inserts of one enqueue whose id or dedup_id a racing holder took then gave up each time.
_ENQUEUE_ATTEMPTS = 10
_DECLARE = "INSERT INTO durable_queue_config VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING"
_DECLARE_REPLACING = (
    "INSERT INTO durable_queue_config VALUES ($1, $2) "
    "ON CONFLICT (queue) DO UPDATE SET config = EXCLUDED.config"
)
_TAKE = """
SELECT i FROM generate_series(0, $2 - 1) AS i
 WHERE NOT (i = ANY($3::int[])) AND pg_try_advisory_lock(hashtextextended($1 || i, 0))
 LIMIT 1
"""
_ROW = """
SELECT id, queue, priority, seq, extract(epoch FROM enqueued) AS enqueued,
       extract(epoch FROM not_before) AS not_before, key, dedup_id, workflow, payload, admitted
  FROM durable_queue_requests
"""
_CANDIDATES = (
    _ROW
    + """
 WHERE queue = $1 AND NOT admitted AND not_before <= now() AND workflow = ANY($2::text[])
 ORDER BY priority, seq LIMIT 32
   FOR UPDATE SKIP LOCKED
"""
)
# A queue with neither a per-key limit nor a rate claims its first request in one statement
# (one round trip, no BEGIN/COMMIT): the row FOR UPDATE SKIP LOCKED, `admitted`, and its
# journal's row created and claimed for this store (fence 1, as open() would make it), all
# committed together. `fresh`: the row is new, with no records, so the workflow's start
# opens it without a round trip (PostgresStore.claimed); else open() claims it as usual.
_CLAIM_FIRST = """
WITH first AS (
  SELECT id FROM durable_queue_requests
   WHERE queue = $1 AND NOT admitted AND not_before <= now() AND workflow = ANY($2::text[])
   ORDER BY priority, seq LIMIT 1
     FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE durable_queue_requests AS r SET admitted = true FROM first WHERE r.id = first.id
  RETURNING r.*
), leased AS (
  INSERT INTO durable_journals (name, owner, fence, lease_until)
  SELECT id, $3, 1, now() + make_interval(secs => $4) FROM claimed
  ON CONFLICT (name) DO NOTHING RETURNING name, fence, generation
)
SELECT c.id, c.queue, c.priority, c.seq, extract(epoch FROM c.enqueued) AS enqueued,
       extract(epoch FROM c.not_before) AS not_before, c.key, c.dedup_id, c.workflow,
       c.payload, false AS admitted, l.fence, l.generation,
       l.name IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM durable_records AS d WHERE d.name = c.id) AS fresh,
       EXISTS (SELECT 1 FROM durable_inbox AS i WHERE i.name = c.id) AS mail,
       (SELECT value FROM durable_meta WHERE key = 'schema_version') AS schema
  FROM claimed AS c LEFT JOIN leased AS l ON l.name = c.id
"""
# The first `$5` waiting requests (a queue with neither a per-key limit nor a rate, and
# that many free slots), claimed as _CLAIM_FIRST claims one: one statement for all of them.
_CLAIM_MANY = _CLAIM_FIRST.replace("LIMIT 1", "LIMIT $5") + " ORDER BY priority, seq"
_TAKE_MANY = _TAKE.replace("LIMIT 1", "LIMIT $4")
# Workflows that ended, in one statement on the slots' connection: their requests deleted
# (their dedup ids free again) and their slots unlocked, and the news to every dispatcher.
_END = """
WITH ended AS (
  DELETE FROM durable_queue_requests WHERE id = ANY($1::text[]) RETURNING id
), unlocked AS (
  SELECT pg_advisory_unlock(hashtextextended(p || s, 0))
    FROM unnest($2::text[], $3::int[]) AS given(p, s)
)
SELECT (SELECT count(*) FROM ended) + (SELECT count(*) FROM unlocked), pg_notify($4, 'ended')
"""
_LATER = """
SELECT extract(epoch FROM min(not_before) - now())
  FROM durable_queue_requests WHERE queue = $1 AND NOT admitted AND not_before > now()
"""


@dataclass(frozen=True)
class QueuedRow:
    """One queued request as stored (key and dedup_id None when not given)."""

    workflow_id: str
    queue: str
    priority: int
    seq: int
    enqueued: float
    not_before: float
    key: str | None
    dedup_id: str | None
    workflow: str
    payload: bytes
    admitted: bool

    def as_request(self) -> Request:
        """The request as the file store's readers take it (describe, listings)."""
        return Request(
            self.workflow_id,
            self.priority,
            self.seq,
            self.enqueued,
            self.not_before,
            self.key,
            self.dedup_id,
            self.payload,
        )


def _row(record: Any) -> QueuedRow:
    return QueuedRow(
        record["id"],
        record["queue"],
        record["priority"],
        record["seq"],
        float(record["enqueued"]),
        float(record["not_before"]),
        record["key"],
        record["dedup_id"],
        record["workflow"],
        bytes(record["payload"]),
        record["admitted"],
    )


def limit_name(limit: str) -> str:
    """An activity limit's name among the queues' (its slots' prefix and its starts' key)."""
    return f"durable limit {limit} "


def slot_prefix(queue: str, key: str | None = None) -> str:
    """The advisory lock names of a queue's slots (or of one key's): prefix + slot number."""
    return f"durable queue {queue} slot " if key is None else f"durable queue {queue} key {key} "


class PostgresQueues:
    """One runtime's queue storage on a PostgresStore (see the module docstring).

    Slots and claims go through one connection of its own (a lock serialises them); the
    rest through the store's pool.
    """

    def __init__(self, store: PostgresStore, on_notify: Callable[[], None]) -> None:
        self._store = store
        self._connection: Any = None
        self._lock = asyncio.Lock()
        self._on_notify = on_notify
        self._inserts = EnqueueBatcher(store, CHANNEL)
        self.held: dict[str, set[int]] = {}  # slot prefix -> the slots this runtime holds

    async def _own(self) -> Any:
        """The connection that holds this runtime's slots (and listens for queue news)."""
        if self._connection is not None and connection_gone(self._connection):
            # (the server let go of its slots: what this runtime believes it holds is gone)
            with contextlib.suppress(Exception):
                await self._store.pool.release(self._connection)
            self._connection = None
            self.held.clear()
        if self._connection is None:
            await self._store.connect()
            connection = await self._store.pool.acquire()
            await connection.add_listener(CHANNEL, self._notified)
            self._connection = connection
        return self._connection

    def _notified(self, *args: object) -> None:
        self._on_notify()

    # -- slots ---------------------------------------------------------------------------

    async def take(self, prefix: str, capacity: int) -> int | None:
        """A free slot of `prefix`, locked for this runtime (None: all are held somewhere)."""
        async with self._lock:
            return await self._take(await self._own(), prefix, capacity)

    async def _take(self, connection: Any, prefix: str, capacity: int) -> int | None:
        held = self.held.setdefault(prefix, set())
        slot = await connection.fetchval(_TAKE, prefix, capacity, sorted(held))
        if slot is None:
            if not held:
                del self.held[prefix]
            return None
        held.add(int(slot))
        return int(slot)

    async def take_many(self, prefix: str, capacity: int, wanted: int) -> list[int]:
        """Up to `wanted` free slots of `prefix`, locked for this runtime, in one statement."""
        async with self._lock:
            connection = await self._own()
            held = self.held.setdefault(prefix, set())
            rows = await connection.fetch(_TAKE_MANY, prefix, capacity, sorted(held), wanted)
            taken = [int(row["i"]) for row in rows]
            held.update(taken)
            if not held:
                del self.held[prefix]
            return taken

    async def end(self, finished: list[str], slots: list[tuple[str, int]]) -> None:
        """Delete the requests of workflows that ended and unlock `slots` (prefix, slot).

        Only the slots this runtime holds; together, in one statement on the slots'
        connection, whatever their number.
        """
        async with self._lock:
            mine = []
            for prefix, slot in slots:
                held = self.held.get(prefix)
                if held is None or slot not in held:
                    continue
                held.discard(slot)
                if not held:
                    del self.held[prefix]
                mine.append((prefix, slot))
            if not finished and not mine:
                return
            connection = await self._own()
            await connection.fetchval(
                _END, finished, [p for p, _ in mine], [s for _, s in mine], CHANNEL
            )

    async def give_back(self, prefix: str, slot: int) -> None:
        """Unlock a slot this runtime holds, and tell the other runtimes."""
        async with self._lock:
            held = self.held.get(prefix)
            if held is None or slot not in held:
                return
            held.discard(slot)
            if not held:
                del self.held[prefix]
            connection = await self._own()
            await connection.execute(
                "SELECT pg_advisory_unlock(hashtextextended($1 || $2::int, 0)), pg_notify($3, $1)",
                prefix,
                slot,
                CHANNEL,
            )

    # -- requests ------------------------------------------------------------------------

    async def enqueue(
        self,
        workflow_id: str,
        queue: str,
        *,
        priority: int,
        delay: float,
        key: str | None,
        dedup_id: str | None,
        workflow: str,
        payload: bytes,
    ) -> str | None:
        """Insert a waiting request (committed on return): None, or the id already there.

        The id already there: `workflow_id` itself (a request or a journal with that id
        exists: queued, started by id, or ended), or the
        request holding `dedup_id` in `queue`. A dedup holder whose journal ended (its
        process died before it deleted the row) is deleted and the insert tried again;
        StoreUnavailable if it loses that race every time (never its own id then: a handle
        with no request).
        """
        request = NewRequest(workflow_id, queue, priority, delay, key, dedup_id, workflow, payload)
        if await self._inserts.insert(request):  # (with the requests of other callers)
            return None
        async with self._store.session(f"enqueueing {workflow_id!r}") as connection:
            for attempt in range(_ENQUEUE_ATTEMPTS):
                if attempt:
                    seq = await connection.fetchval(
                        INSERT_ONE, workflow_id, queue, priority, delay, key, dedup_id,
                        workflow, payload, CHANNEL,
                    )  # fmt: skip
                    if seq is not None:
                        return None
                if await connection.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM durable_queue_requests WHERE id = $1) "
                    "OR EXISTS (SELECT 1 FROM durable_journals WHERE name = $1)",
                    workflow_id,
                ):
                    return workflow_id
                holder = await connection.fetchrow(
                    "SELECT r.id, j.done FROM durable_queue_requests AS r "
                    "LEFT JOIN durable_journals AS j ON j.name = r.id "
                    "WHERE r.queue = $1 AND r.dedup_id = $2",
                    queue,
                    dedup_id,
                )
                if holder is None:
                    continue  # (it ended meanwhile: try again)
                if not holder["done"]:
                    return str(holder["id"])
                await connection.execute(
                    "DELETE FROM durable_queue_requests WHERE id = $1", holder["id"]
                )
        # (Never its own id here: that would be a handle with no request behind it.)
        raise StoreUnavailable(
            path=self._store._shown,
            detail=f"enqueueing {workflow_id!r} lost {_ENQUEUE_ATTEMPTS} races in a row "
            f"for its id or its dedup_id {dedup_id!r} in queue {queue!r}",
            hint="Nothing was queued under this id; enqueue it again",
        )

    async def claim(
        self,
        queue: str,
        workflows: list[str],
        key_capacity: int | None,
        rate: tuple[int, float] | None,
    ) -> tuple[QueuedRow | None, int | None, float | None]:
        """Claim the first waiting request the limits allow now: (row, key slot, None).

        Or (None, None, seconds until one may be allowed: a delay or the rate; None: no
        request now). Only requests of `workflows`; a request whose key has no free slot is
        passed over. The concurrency slot is the caller's, taken before.
        """
        async with self._lock:
            connection = await self._own()
            if key_capacity is None and rate is None:
                sent = time.monotonic()
                record = await connection.fetchrow(
                    _CLAIM_FIRST, queue, workflows, self._store.owner, self._store.lease
                )
                if record is not None:
                    self._preclaimed(record, sent)
                    return _row(record), None, None
                later = await connection.fetchval(_LATER, queue)
                return None, None, None if later is None else max(0.0, float(later))
            async with connection.transaction():
                if rate is not None:
                    wait = await self._rate_wait(connection, queue, rate)
                    if wait is not None:
                        return None, None, wait
                full: set[str] = set()
                for record in await connection.fetch(_CANDIDATES, queue, workflows):
                    row = _row(record)
                    key_slot = None
                    if row.key is not None and key_capacity is not None:
                        if row.key in full:
                            continue
                        key_slot = await self._take(
                            connection, slot_prefix(queue, row.key), key_capacity
                        )
                        if key_slot is None:
                            full.add(row.key)
                            continue
                    await connection.execute(
                        "UPDATE durable_queue_requests SET admitted = true WHERE id = $1",
                        row.workflow_id,
                    )
                    # Its journal's row, leased to this store, in the admission's commit: if
                    # this process dies before the workflow's start record is committed, the
                    # lease lapses and serve() anywhere finds the row and starts it from the
                    # request (no admitted request is left without a journal to find).
                    await connection.execute(
                        "INSERT INTO durable_journals (name, owner, lease_until) "
                        "VALUES ($1, $2, now() + make_interval(secs => $3)) "
                        "ON CONFLICT (name) DO NOTHING",
                        row.workflow_id,
                        self._store.owner,
                        self._store.lease,
                    )
                    if rate is not None:
                        await connection.execute(
                            "INSERT INTO durable_queue_starts VALUES ($1, now())", queue
                        )
                    return row, key_slot, None
                later = await connection.fetchval(_LATER, queue)
                return None, None, None if later is None else max(0.0, float(later))

    async def claim_many(self, queue: str, workflows: list[str], wanted: int) -> list[QueuedRow]:
        """Claim the first `wanted` waiting requests, in (priority, seq) order.

        Of a queue with neither a per-key limit nor a rate (the caller holds a concurrency
        slot for each): each marked admitted with its journal's row leased to this store,
        in one statement.
        """
        async with self._lock:
            connection = await self._own()
            sent = time.monotonic()
            records = await connection.fetch(
                _CLAIM_MANY, queue, workflows, self._store.owner, self._store.lease, wanted
            )
        for record in records:
            self._preclaimed(record, sent)
        return [_row(record) for record in records]

    def _preclaimed(self, record: Any, sent: float) -> None:
        """Tell the store of a journal row an admission created and claimed (see above)."""
        if record["fresh"] and record["schema"] == str(SCHEMA_VERSION):
            self._store.claimed(
                record["id"], record["fence"], record["generation"], record["mail"], sent
            )

    async def later(self, queue: str) -> float | None:
        """Seconds until a delayed request of `queue` is due (None: none is delayed)."""
        async with self._store.session(f"reading queue {queue!r}") as connection:
            later = await connection.fetchval(_LATER, queue)
        return None if later is None else max(0.0, float(later))

    async def start_within(self, name: str, rate: tuple[int, float]) -> float | None:
        """Count a start of `name` if its rate allows one now (None), else seconds to wait."""
        async with self._lock:
            connection = await self._own()
            async with connection.transaction():
                wait = await self._rate_wait(connection, name, rate)
                if wait is None:
                    await connection.execute(
                        "INSERT INTO durable_queue_starts VALUES ($1, now())", name
                    )
                return wait

    async def _rate_wait(
        self, connection: Any, queue: str, rate: tuple[int, float]
    ) -> float | None:
        """Seconds until the rate allows a start (None: now), under the queue's xact lock."""
        limit, period = rate
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('durable queue rate ' || $1, 0))",
            queue,
        )
        await connection.execute(
            "DELETE FROM durable_queue_starts "
            "WHERE queue = $1 AND at <= now() - make_interval(secs => $2)",
            queue,
            period,
        )
        row = await connection.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM min(at) + make_interval(secs => $2) "
            "- now()) AS wait FROM (SELECT at FROM durable_queue_starts WHERE queue = $1 "
            "ORDER BY at DESC LIMIT $3) AS recent",
            queue,
            period,
            limit,
        )
        if row["n"] < limit:
            return None
        return max(0.0, float(row["wait"]))

    async def read(self, workflow_id: str) -> QueuedRow | None:
        """The request `workflow_id`, waiting or admitted (None: no request)."""
        async with self._store.session(f"reading queued {workflow_id!r}") as connection:
            record = await connection.fetchrow(_ROW + " WHERE id = $1", workflow_id)
        return None if record is None else _row(record)

    async def admit(self, workflow_id: str) -> None:
        """Mark a request admitted (its workflow was started by id before its turn)."""
        async with self._store.session(f"admitting {workflow_id!r}") as connection:
            await connection.execute(
                "UPDATE durable_queue_requests SET admitted = true WHERE id = $1", workflow_id
            )

    async def finish(self, workflow_id: str) -> None:
        """The workflow ended: delete its request (its dedup id is free again)."""
        async with self._store.session(f"ending queued {workflow_id!r}") as connection:
            await connection.execute(
                "WITH ended AS (DELETE FROM durable_queue_requests WHERE id = $1 "
                "RETURNING queue) SELECT pg_notify($2, queue) FROM ended",
                workflow_id,
                CHANNEL,
            )

    async def waiting(self, queue: str) -> list[QueuedRow]:
        """A queue's waiting requests, in (priority, seq) order."""
        async with self._store.session(f"listing queue {queue!r}") as connection:
            records = await connection.fetch(
                _ROW + " WHERE queue = $1 AND NOT admitted ORDER BY priority, seq", queue
            )
        return [_row(record) for record in records]

    async def declare(self, queue: str, config: bytes, *, replace: bool) -> None:
        """Note a queue's limits for readers (`replace`: a runtime that declares it)."""
        statement = _DECLARE_REPLACING if replace else _DECLARE
        async with self._store.session(f"declaring queue {queue!r}") as connection:
            await connection.execute(statement, queue, config)

    async def configs(self) -> dict[str, bytes]:
        """Every queue that has requests or was declared: its limits as last declared (or b"")."""
        async with self._store.session("reading the queues") as connection:
            rows = await connection.fetch(
                "SELECT q.queue, c.config FROM (SELECT DISTINCT queue FROM durable_queue_requests "
                "UNION SELECT queue FROM durable_queue_config) AS q "
                "LEFT JOIN durable_queue_config AS c ON c.queue = q.queue ORDER BY q.queue"
            )
        return {row["queue"]: bytes(row["config"] or b"") for row in rows}

    async def counts(self, queue: str, period: float | None) -> tuple[int, int]:
        """(admitted requests, starts within the last `period` seconds) of a queue."""
        async with self._store.session(f"reading queue {queue!r}") as connection:
            row = await connection.fetchrow(
                "SELECT (SELECT count(*) FROM durable_queue_requests WHERE queue = $1 "
                "AND admitted) AS admitted, (SELECT count(*) FROM durable_queue_starts "
                "WHERE queue = $1 AND at > now() - make_interval(secs => $2)) AS recent",
                queue,
                period or 0.0,
            )
        return int(row["admitted"]), int(row["recent"]) if period else 0

    async def running(self, prefix: str, capacity: int) -> int:
        """How many of `prefix`'s slots are held now, by every session on the database.

        (An advisory lock on a bigint key shows in pg_locks as classid = its high 32 bits,
        objid = its low 32 bits, objsubid = 1.)
        """
        async with self._store.session("reading queue slots") as connection:
            held = await connection.fetchval(
                "SELECT count(*) FROM generate_series(0, $2 - 1) AS i "
                "CROSS JOIN LATERAL (SELECT hashtextextended($1 || i, 0) AS k) AS key "
                "JOIN pg_locks AS l ON l.locktype = 'advisory' AND l.granted "
                "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()) "
                "AND l.classid::bigint = ((key.k >> 32) & 4294967295) "
                "AND l.objid::bigint = (key.k & 4294967295)",
                prefix,
                capacity,
            )
        return int(held)

    async def close(self) -> None:
        """Give the connection back to the pool (letting go of every slot still held)."""
        await self._inserts.close()
        async with self._lock:
            connection, self._connection = self._connection, None
            self.held.clear()
            if connection is None:
                return
            with contextlib.suppress(Exception):
                await connection.remove_listener(CHANNEL, self._notified)
                await connection.reset()  # (the pool's reset does not: unlock all, UNLISTEN)
            with contextlib.suppress(Exception):
                await self._store.pool.release(connection)
