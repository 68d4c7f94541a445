"""Runtime.recover(): resume every unfinished workflow of the store after a restart.

A part a Runtime holds, given its store, registry, running tasks, queue service and how it
starts a run. Journals are read RECOVER_BATCH per thread hop and checked before any
starts, so an unknown workflow name starts nothing; one unreadable journal is logged and
skipped, never the end of the others' recovery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ._definitions import Workflow
from ._engine import _records as records
from ._engine._log_fields import durable_logger
from ._engine._set_aside import last_standing
from ._errors import JournalError, JournalNotFound, UnknownWorkflow, WorkflowAlreadyRunning
from ._queue_postgres import PostgresQueueService
from ._queue_service import QueueService
from ._runtime_parts import ParkRecovered, StartRun
from ._storage._frames import StoredRecord
from ._storage._interface import JournalStore

logger = durable_logger()

RECOVER_BATCH = 512  # journals recover() reads per thread hop (per query)


class Recovery:
    """A runtime's recover(): every unfinished journal of its store started again here."""

    def __init__(
        self,
        store: JournalStore,
        workflows: dict[str, Workflow[..., Any]],
        running: dict[str, Any],
        queues: QueueService | PostgresQueueService,
        *,
        start: StartRun,
        park: ParkRecovered,
    ) -> None:
        self._store = store
        self._workflows = workflows  # (the runtime's registry, shared)
        self._running = running  # (the runtime's running tasks by id, shared)
        self._queues = queues
        self._start = start
        self._park = park

    async def recover(self) -> list[Any]:  # (WorkflowHandles: the layer above)
        """See Runtime.recover."""
        self._queues.wake()
        # (the id, its workflow, a queued request's arguments; whether it may be parked)
        unfinished: list[tuple[str, Workflow[..., Any], list[Any] | None, bool]] = []
        names = [name for name in await self._store.list() if name not in self._running]
        listed = set(names)
        orphans = [name for name in await self._queues.orphans() if name not in self._running]
        names += [name for name in orphans if name not in listed]
        async for name, stored in self._read_in_batches(names):
            try:
                if isinstance(stored, JournalNotFound) or not stored:
                    # (a queued request's whose admitter died before its start record)
                    orphan = await self._queued_request(name)
                    if orphan is not None:
                        unfinished.append((name, *orphan, False))
                    continue
                if isinstance(stored, JournalError):
                    raise stored
                where = self._store.location(name)  # (the file, or the database's row)
                start = records.read_record(stored[0], path=where, index=0)
                last = last_standing(stored, path=where)  # (the end, past any links)
            except JournalError as error:  # (the schema refused it: damaged, or newer)
                logger.error("recover: workflow %s skipped: %s", name, error)
                continue
            if last is not None and last["k"] == records.END and "cont" not in last:
                continue  # (an end{cont} not rotated yet: its next generation is due)
            workflow = self._workflows.get(start["wf"])
            if workflow is None:
                raise UnknownWorkflow(
                    workflow_id=name, name=start["wf"], known=sorted(self._workflows)
                )
            parked = last is not None and last["k"] == records.PARK
            unfinished.append((name, workflow, None, parked))
        handles = []
        for name, workflow, arguments, parked in unfinished:
            try:
                handle = await self._park(workflow, name) if parked else None
                if handle is None:  # (not parked: replayed, as any start)
                    handle = await self._start(workflow, name, arguments, follow=False)
                handles.append(handle)
            except WorkflowAlreadyRunning:
                logger.info("recover: workflow %s is running elsewhere; skipped", name)
            except JournalError as error:  # (damaged since it was read, say)
                logger.error("recover: workflow %s skipped: %s", name, error)
        return handles

    async def _queued_request(self, name: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        """recover(): what to start an orphaned queued request with (None: none, or unusable)."""
        try:
            return await self._queues.orphaned(name)
        except Exception as error:  # (its request names an unknown workflow, or is damaged)
            logger.error("recover: queued workflow %s skipped: %r", name, error)
            return None

    async def _read_in_batches(
        self, names: list[str]
    ) -> AsyncIterator[tuple[str, list[StoredRecord] | JournalError]]:
        """Every named journal's records, RECOVER_BATCH at a time (not a thread hop each).

        A batch is let go of before the next is read: recover() reads finished journals
        too, and a directory's worth of them at once could be gigabytes.
        """
        read_many = getattr(self._store, "read_many", None)  # (a store of an older protocol)
        for first in range(0, len(names), RECOVER_BATCH):
            chunk = names[first : first + RECOVER_BATCH]
            batch = await read_many(chunk) if read_many else await self._read_each(chunk)
            for name in list(batch):  # (in order; each journal's records dropped once seen)
                yield name, batch.pop(name)

    async def _read_each(self, names: list[str]) -> dict[str, list[StoredRecord] | JournalError]:
        """read_many, one read at a time: for a store that has no read_many."""
        found: dict[str, list[StoredRecord] | JournalError] = {}
        for name in names:
            try:
                found[name] = await self._store.read(name)
            except JournalError as error:
                found[name] = error
        return found
