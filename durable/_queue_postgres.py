"""A runtime's queues on PostgreSQL: the QueueService's job over `_storage/_postgres_queues.py`.

The same contract as the file store's parts (enqueue, dispatch in order within the limits,
the gate for resumed runs), for runtimes on many hosts: a dispatcher per declared queue takes
a concurrency slot (a session advisory lock), then claims the first request the rate and its
key allow (FOR UPDATE SKIP LOCKED), and starts its workflow holding those slots until its
task ends. NOTIFY on the `durable_queue` channel wakes the dispatchers of every host; a slot
let go by a dead process (no notice) is seen at the next poll. A queue with neither a per-key
limit nor a rate takes all its free slots and claims as many requests at once (a statement
each), and the grants given back meanwhile go together: statements per batch, not per start.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from ._definitions import Workflow
from ._engine._clock import Clock
from ._engine._describe import WorkflowDescription
from ._engine._log_fields import durable_logger
from ._errors import (
    AlreadyQueued,
    QueueNotDeclared,
    WorkflowAlreadyRunning,
    WorkflowStopped,
)
from ._limits import Limit
from ._queue_dispatch import QueueHost
from ._queue_reading import QueueLoad, describe_admitted, describe_request
from ._queue_requests import launch_arguments, new_request
from ._queue_state import journal_exists
from ._queues import Queue
from ._storage._postgres import PostgresStore
from ._storage._postgres_queues import PostgresQueues, QueuedRow, limit_name, slot_prefix

logger = durable_logger()

POLL_INTERVAL = 0.25  # how often a dispatcher looks for slots freed without a NOTIFY (s)
ADMIT_BATCH = 100  # requests a dispatcher claims in one statement at most


@dataclass
class PostgresGrant:
    """The slots one queued workflow's task holds, given back when the task ends."""

    queue: Queue
    workflow_id: str
    slot: int | None
    key: str | None
    key_slot: int | None
    finished: bool = False  # (its workflow ended: delete its request too)


class PostgresQueueService:
    """Enqueue, dispatch and gate for one runtime on a PostgresStore (see the module)."""

    def __init__(
        self, host: QueueHost, store: PostgresStore, queues: dict[str, Queue], clock: Clock
    ) -> None:
        self._host = host
        self._store = store
        self._declared = queues
        self._clock = clock
        self._news = asyncio.Event()
        self._tables = PostgresQueues(store, self._news.set)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._launches: set[asyncio.Task[None]] = set()
        self._releases: set[asyncio.Task[None]] = set()
        self._ending: list[PostgresGrant] = []  # grants to give back in the next statement
        self._ender: asyncio.Task[None] | None = None  # (giving them back)
        self._granted: dict[str, PostgresGrant] = {}
        self._gated: dict[str, int] = {}  # queue -> tasks waiting at its gate
        self._parked: set[str] = set()
        self._closed = False
        self._configured: set[str] = set()  # queues whose limits this runtime noted

    @property
    def declared(self) -> list[str]:
        return sorted(self._declared)

    async def enqueue(
        self,
        queue: Queue,
        definition: Workflow[..., Any],
        arguments: list[Any],
        *,
        workflow_id: str | None,
        key: str | None,
        priority: int,
        dedup_id: str | None,
        delay: float,
        on_duplicate: str,
        trace: dict[str, str] | None = None,
    ) -> str:
        """Insert a request (committed on return); the workflow id (see Enqueuer.enqueue)."""
        workflow_id, payload = new_request(
            queue,
            self._declared.get(queue.name),
            definition,
            arguments,
            workflow_id=workflow_id,
            on_duplicate=on_duplicate,
            trace=trace,
        )
        self._store.check_name(workflow_id)
        if queue.name not in self._configured:  # (for readers, before any runtime serves it)
            self._configured.add(queue.name)
            await self._tables.declare(queue.name, queue.config(), replace=False)
        # (None, or the id already there: a request, a journal of that id, the dedup holder)
        holder = await self._tables.enqueue(
            workflow_id,
            queue.name,
            priority=priority,
            delay=delay,
            key=key,
            dedup_id=dedup_id,
            workflow=definition.name,
            payload=payload,
        )
        if holder is not None:
            if on_duplicate == "raise":
                raise AlreadyQueued(
                    queue=queue.name,
                    workflow_id=holder,
                    dedup_id=None if holder == workflow_id else dedup_id,
                )
            return holder
        self._news.set()
        return workflow_id

    def waiting(self) -> dict[str, int]:
        """Requests waiting per queue: not counted here (they are rows of the database)."""
        return {}

    def wake(self) -> None:
        """Start the dispatchers of the declared queues, once a loop runs this runtime."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        for name, queue in self._declared.items():
            task = self._tasks.get(name)
            if task is None or task.done():
                self._tasks[name] = loop.create_task(
                    self._dispatch(queue), name=f"durable queue {name}"
                )

    async def _wait(self, longest: float | None) -> None:
        timeout = POLL_INTERVAL if longest is None else min(POLL_INTERVAL, longest)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._news.wait()
        self._news.clear()

    async def _dispatch(self, queue: Queue) -> None:
        if queue.name not in self._configured:  # (its limits as this runtime declares them)
            try:
                await self._tables.declare(queue.name, queue.config(), replace=True)
                self._configured.add(queue.name)
            except Exception as error:  # (a hint for readers: the dispatching goes on)
                logger.warning("queue %r: cannot note its limits now: %s", queue.name, error)
        while not self._closed:
            try:
                until = await self._admit_one(queue)
            except Exception as error:  # (the database away: look again later)
                logger.warning("queue %r: cannot dispatch now: %s", queue.name, error)
                until = POLL_INTERVAL
            if until == 0.0:
                continue
            await self._wait(until)

    async def _admit_one(self, queue: Queue) -> float | None:
        """Claim and launch the next request; 0.0 to look again at once, else a wait."""
        if self._gated.get(queue.name):
            return None  # (resumed runs waiting at the gate go first)
        if queue.concurrency_per_key is None and queue.rate is None:
            return await self._admit_many(queue)
        slot = None
        if queue.concurrency is not None:
            slot = await self._tables.take(slot_prefix(queue.name), queue.concurrency)
            if slot is None:
                return None
        rate = (queue.rate.limit, queue.rate.period) if queue.rate is not None else None
        try:
            row, key_slot, until = await self._tables.claim(
                queue.name, sorted(self._host._workflows), queue.concurrency_per_key, rate
            )
        except BaseException:
            if slot is not None:
                await self._tables.give_back(slot_prefix(queue.name), slot)
            raise
        if row is None:
            if slot is not None:
                await self._tables.give_back(slot_prefix(queue.name), slot)
            return until
        grant = PostgresGrant(queue, row.workflow_id, slot, row.key, key_slot)
        launch = asyncio.get_running_loop().create_task(self._launch(grant, row))
        self._launches.add(launch)
        launch.add_done_callback(self._launches.discard)
        return 0.0

    async def _admit_many(self, queue: Queue) -> float | None:
        """Claim and launch as many requests as there are free slots.

        For a queue with neither a per-key limit nor a rate: a statement for the slots, one
        for the claims, whatever their number.
        """
        prefix = slot_prefix(queue.name)
        slots: list[int | None]
        if queue.concurrency is None:
            slots = [None] * ADMIT_BATCH
        else:
            free = queue.concurrency - len(self._tables.held.get(prefix, ()))
            if free <= 0:
                return None  # (one of them freed: woken)
            wanted = min(free, ADMIT_BATCH)
            slots = [*await self._tables.take_many(prefix, queue.concurrency, wanted)]
            if not slots:
                return None  # (held by other runtimes: woken by their NOTIFY, else polled)
        try:
            rows = await self._tables.claim_many(
                queue.name, sorted(self._host._workflows), len(slots)
            )
        except BaseException:
            await self._tables.end([], [(prefix, slot) for slot in slots if slot is not None])
            raise
        unused = [(prefix, slot) for slot in slots[len(rows) :] if slot is not None]
        if unused:
            await self._tables.end([], unused)
        if not rows:
            return await self._tables.later(queue.name)
        loop = asyncio.get_running_loop()
        for row, slot in zip(rows, slots, strict=False):
            grant = PostgresGrant(queue, row.workflow_id, slot, None, None)
            launch = loop.create_task(self._launch(grant, row))
            self._launches.add(launch)
            launch.add_done_callback(self._launches.discard)
        return 0.0

    async def _launch(self, grant: PostgresGrant, row: QueuedRow) -> None:
        """Start an admitted request's workflow here, holding its grant."""
        workflow_id = grant.workflow_id
        try:
            definition, arguments, trace = launch_arguments(
                self._host._workflows, row.payload, workflow_id
            )
        except Exception as error:
            logger.error("queue %r: cannot start %s: %s", grant.queue.name, workflow_id, error)
            self.release(grant)
            return
        self._granted[workflow_id] = grant
        try:
            await self._host._start(
                definition,
                workflow_id,
                arguments,
                follow=False,
                trace=trace,
                queued=(grant.queue.name, row.enqueued),
            )
        except (WorkflowAlreadyRunning, WorkflowStopped):
            if self._granted.pop(workflow_id, None) is grant:
                self.release(grant)
        except Exception as error:
            logger.error("queue %r: cannot start %s: %s", grant.queue.name, workflow_id, error)
            if self._granted.pop(workflow_id, None) is grant:
                self.release(grant)

    async def gate(self, workflow_id: str) -> PostgresGrant | None:
        """The slots a queued workflow must hold to run here (None: not a queued workflow).

        Raises:
            QueueNotDeclared: it is queued in a queue this runtime does not declare.
        """
        grant = self._granted.pop(workflow_id, None)
        if grant is not None:
            return grant
        row = await self._tables.read(workflow_id)
        if row is None:
            return None
        queue = self._declared.get(row.queue)
        if queue is None:
            raise QueueNotDeclared(queue=row.queue, workflow_id=workflow_id, declared=self.declared)
        if not row.admitted:  # (started by id before its turn)
            await self._tables.admit(workflow_id)
        self._gated[queue.name] = self._gated.get(queue.name, 0) + 1
        self._parked.add(workflow_id)
        try:
            while True:
                grant = await self._take_slots(queue, workflow_id, row.key)
                if grant is not None:
                    return grant
                await self._wait(None)
        finally:
            self._gated[queue.name] -= 1
            self._parked.discard(workflow_id)
            self._news.set()

    async def _take_slots(
        self, queue: Queue, workflow_id: str, key: str | None
    ) -> PostgresGrant | None:
        slot = key_slot = None
        if queue.concurrency is not None:
            slot = await self._tables.take(slot_prefix(queue.name), queue.concurrency)
            if slot is None:
                return None
        if key is not None and queue.concurrency_per_key is not None:
            key_slot = await self._tables.take(
                slot_prefix(queue.name, key), queue.concurrency_per_key
            )
            if key_slot is None:
                if slot is not None:
                    await self._tables.give_back(slot_prefix(queue.name), slot)
                return None
        return PostgresGrant(queue, workflow_id, slot, key, key_slot)

    def release(self, grant: Any) -> None:
        """Give a grant's slots back (a task: the runtime's call is synchronous).

        The grants let go of while a statement gives others back go together in the next
        one: their requests deleted (if their workflow ended) and their slots unlocked.
        """
        self._ending.append(grant)
        if self._ender is None or self._ender.done():
            self._ender = asyncio.get_running_loop().create_task(self._release())
            self._releases.add(self._ender)
            self._ender.add_done_callback(self._releases.discard)

    async def _release(self) -> None:
        while self._ending:
            grants, self._ending = self._ending, []
            finished = [grant.workflow_id for grant in grants if grant.finished]
            for grant in grants:  # (one not started here: its row is claimed on open)
                self._store.unclaimed(grant.workflow_id)
            slots = []
            for grant in grants:
                if grant.slot is not None:
                    slots.append((slot_prefix(grant.queue.name), grant.slot))
                if grant.key is not None and grant.key_slot is not None:
                    slots.append((slot_prefix(grant.queue.name, grant.key), grant.key_slot))
            try:
                await self._tables.end(finished, slots)
            except Exception as error:  # (the connection ended: the server let go of the slots)
                logger.warning(
                    "queue %r: giving back the slots of %s: %s",
                    grants[0].queue.name,
                    ", ".join(grant.workflow_id for grant in grants),
                    error,
                )
            self._news.set()

    async def wait_admitted(self, workflow_id: str) -> bool:
        """Wait until a queued request's journal exists (False: `workflow_id` is no request)."""
        found = False
        while True:
            row = await self._tables.read(workflow_id)
            if row is None:
                return found
            found = True
            if row.admitted and await journal_exists(self._store, workflow_id):
                return True
            await asyncio.sleep(POLL_INTERVAL / 5)

    async def orphans(self) -> list[str]:
        """None to look for: each admission commits its journal's row (see `orphaned`)."""
        return []

    async def orphaned(self, workflow_id: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        """What to start an admitted request with whose journal has no record yet.

        Its admitter died before the workflow's start record was committed; once that
        runtime's lease on the journal's row lapsed, serve() or recover() finds the row
        empty and starts the workflow from its request (the gate then takes a slot). None:
        no admitted request of a declared queue has this id.

        Raises:
            KeyError, JournalCorrupted, SerializationError: the request cannot be started.
        """
        row = await self._tables.read(workflow_id)
        if row is None or not row.admitted or row.queue not in self._declared:
            return None
        definition, arguments, _ = launch_arguments(self._host._workflows, row.payload, workflow_id)
        return definition, arguments  # (its trace context: the admitter's span, gone with it)

    async def is_queued(self, workflow_id: str) -> bool:
        """Whether `workflow_id` is a request of some queue, waiting or admitted."""
        return await self._tables.read(workflow_id) is not None

    async def describe(self, workflow_id: str) -> WorkflowDescription | None:
        """A request whose journal is not begun, described (None: not queued anywhere)."""
        row = await self._tables.read(workflow_id)
        if row is None:
            return None
        if row.admitted:  # (its journal is being begun)
            return describe_admitted(row.as_request(), row.queue)
        ordered = await self._tables.waiting(row.queue)
        place = 1 + sum(
            1 for other in ordered if (other.priority, other.seq) < (row.priority, row.seq)
        )
        queue = self._declared.get(row.queue)
        period = queue.rate.period if queue is not None and queue.rate is not None else None
        admitted, recent = await self._tables.counts(row.queue, period)
        running = None
        if queue is not None and queue.concurrency is not None:
            running = await self._tables.running(slot_prefix(row.queue), queue.concurrency)
        load = QueueLoad(
            name=row.queue,
            running=running,  # (slots held by every runtime on the database)
            admitted=admitted,
            waiting=len(ordered),
            concurrency=queue.concurrency if queue is not None else None,
            concurrency_per_key=queue.concurrency_per_key if queue is not None else None,
            rate=(queue.rate.limit, queue.rate.period)
            if queue is not None and queue.rate is not None
            else None,
            recent_starts=recent,
        )
        return describe_request(row.as_request(), place, len(ordered), load, self._clock.time())

    def parked(self, workflow_id: str) -> bool:
        return workflow_id in self._parked

    # -- activity limits (durable.Limit) on the database: SharedLimits ---------------------

    @property
    def limit_home(self) -> PostgresQueueService:
        """Where its runtime's activity limits are shared: the database, so across hosts."""
        return self

    async def take_limit(self, limit: Limit) -> tuple[int | None, float | None]:
        """(slot, None) once `limit` is taken here (its start counted), else (None, wait)."""
        name = limit_name(limit.name)
        slot = None
        if limit.concurrency is not None:
            slot = await self._tables.take(name, limit.concurrency)
            if slot is None:
                return None, 0.0
        if limit.rate is not None:
            try:
                wait = await self._tables.start_within(name, (limit.rate.limit, limit.rate.period))
            except BaseException:
                if slot is not None:
                    await self._tables.give_back(name, slot)
                raise
            if wait is not None:
                if slot is not None:
                    await self._tables.give_back(name, slot)
                return None, max(wait, 0.001)
        return slot, None

    async def give_back_limit(self, limit: Limit, slot: int | None) -> None:
        """Let go of a slot of `limit` this runtime holds."""
        if slot is not None:
            await self._tables.give_back(limit_name(limit.name), slot)

    def busy(self) -> bool:
        return bool(self._launches)

    async def close(self) -> None:
        """Stop dispatching (the runtime then stops the workflows, giving their slots back)."""
        self._closed = True
        tasks = [*self._tasks.values(), *self._launches]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close_files(self) -> None:
        """Give the slots' connection back (after the workflows stopped)."""
        await asyncio.gather(*self._releases, return_exceptions=True)
        await self._tables.close()
