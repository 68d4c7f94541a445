"""Enqueue: write a queued request durably, once per id and per de-duplication id.

A request is a record appended to its queue's request log (`_storage/_queue_files.py`);
enqueues at once share one fdatasync (a batch in a worker thread), and each returns once its
record is durable. A request whose id is queued, admitted or has a
journal already, or whose dedup_id names a workflow not ended, is a duplicate: its existing
id is returned, or AlreadyQueued raised. Knows nothing of dispatching nor of the gate.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, Literal

import anyio.to_thread

from ._definitions import Workflow
from ._engine._clock import Clock
from ._errors import AlreadyQueued, InvalidJournalName, InvalidQueue, JournalNotFound
from ._queue_requests import new_request
from ._queue_state import Entry, QueueRegistry, journal_ended, journal_exists
from ._queues import Queue
from ._storage._queue_files import QueueFiles, Request

OnDuplicate = Literal["return", "raise"]


class Enqueuer:
    """Writes requests for one runtime; `on_enqueued` then wakes its dispatchers."""

    def __init__(
        self, registry: QueueRegistry, clock: Clock, on_enqueued: Callable[[], None]
    ) -> None:
        self._registry = registry
        self._store = registry.store
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._syncing: list[tuple[QueueFiles, bool, asyncio.Future[None]]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._configured: set[str] = set()  # (queues whose config file this runtime checked)

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
        on_duplicate: OnDuplicate,
        trace: dict[str, str] | None = None,
    ) -> str:
        """Write a request durably; the workflow id (an existing one's for a duplicate).

        Raises:
            InvalidQueue: no journal directory, a bad on_duplicate, or `queue` differs from
                the queue of that name this runtime declares.
            AlreadyQueued: a duplicate and on_duplicate="raise".
        """
        registry = self._registry
        if registry.directory is None:
            raise InvalidQueue(
                queue=queue.name,
                option="store",
                value=self._store,
                expected="a journal directory: queues run on the file store for now",
            )
        workflow_id, payload = new_request(
            queue,
            registry.declared.get(queue.name),
            definition,
            arguments,
            workflow_id=workflow_id,
            on_duplicate=on_duplicate,
            trace=trace,
        )
        self._store.check_name(workflow_id)
        files = registry.files_of(queue.name, create=True)
        assert files is not None
        if queue.name not in self._configured:  # (for readers, before any runtime serves it)
            self._configured.add(queue.name)
            if files.read_config() is None:
                files.write_config(queue.config())
        # (an id runs once: queued in any queue, or started, is a duplicate)
        if await self._taken(workflow_id):
            return _duplicate(queue, workflow_id, None, on_duplicate)
        now = self._clock.time()
        stored: Request | None = None
        while True:
            # A dedup id's claim and its request appear together, under the queue's lock:
            # an enqueue racing this one sees both or neither, never a claim whose request
            # is not written yet (which it would take for one whose workflow ended).
            with files.locked():
                holder = None if dedup_id is None else files.dedup_claim(dedup_id, workflow_id)
                if holder is None:
                    request = Request(
                        workflow_id, priority, 0, now, now + delay, key, dedup_id, payload
                    )
                    stored = files.create(request)  # (numbered by the log)
                    if stored is None and dedup_id is not None:
                        files.dedup_release(dedup_id, workflow_id)
                    break
                if not self._names_a_journal(holder):  # (left empty or garbled by a crash)
                    assert dedup_id is not None
                    files.dedup_release(dedup_id, holder)
                    continue
                waiting, admitted = files.is_waiting(holder), files.is_admitted(holder)
            assert dedup_id is not None
            ended = False if waiting else await self._ended(holder)
            if ended is None and not admitted:
                ended = True  # (no journal, no request: its enqueuer died between the two)
            if not ended:  # (waiting; admitted, its journal not begun; or running)
                await self._synced(files, dedup=False)  # (its request: what the answer names)
                return _duplicate(queue, holder, dedup_id, on_duplicate)
            with files.locked():  # (its workflow ended: the dedup id may be used again)
                if admitted:  # (its runtime died before forgetting its admission)
                    files.finish(holder)
                files.dedup_release(dedup_id, holder)
        if stored is None:
            await self._synced(files, dedup=False)
            return _duplicate(queue, workflow_id, None, on_duplicate)
        await self._synced(files, dedup=dedup_id is not None)
        state = registry.states.get(queue.name)
        if state is not None:
            state.waiting.add(Entry(priority, stored.seq, workflow_id, stored, definition.name))
            state.wake.set()
        self._on_enqueued()
        return workflow_id

    async def _taken(self, workflow_id: str) -> bool:
        """Whether an id is queued (in any queue) or has a journal: a duplicate.

        A duplicate is answered once the request it names is durable, as that request's own
        enqueue is: its record may be appended, its sync still under way.
        """
        queued = self._registry.queued_in(workflow_id)
        if queued is None:
            return await journal_exists(self._store, workflow_id)
        files = self._registry.files_of(queued[0], create=False)
        if files is not None:
            await self._synced(files, dedup=False)
        return True

    def _names_a_journal(self, holder: str) -> bool:
        """Whether a dedup claim's bytes name a workflow (else it names no holder at all)."""
        try:
            self._store.check_name(holder)
        except InvalidJournalName:
            return False
        return True

    async def _ended(self, workflow_id: str) -> bool | None:
        """Whether a workflow's journal holds its end (None: it has no journal)."""
        try:
            stored = await self._store.read(workflow_id)
        except JournalNotFound:
            return None
        return journal_ended(stored)

    async def _synced(self, files: QueueFiles, *, dedup: bool) -> None:
        """Wait until the request is durable: enqueues at once share one sync (a batch)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncing.append((files, dedup, future))
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_batches())
        await future

    async def _sync_batches(self) -> None:
        while self._syncing:
            batch, self._syncing = self._syncing, []
            by_files: dict[int, tuple[QueueFiles, bool]] = {}
            for files, dedup, _ in batch:
                known = by_files.get(id(files), (files, False))
                by_files[id(files)] = (files, known[1] or dedup)
            try:
                for files, dedup in by_files.values():
                    await anyio.to_thread.run_sync(functools.partial(files.sync, dedup=dedup))
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        """Wait for the sync under way, if any."""
        if self._sync_task is not None:
            await asyncio.gather(self._sync_task, return_exceptions=True)


def _duplicate(
    queue: Queue, workflow_id: str, dedup_id: str | None, on_duplicate: OnDuplicate
) -> str:
    if on_duplicate == "raise":
        raise AlreadyQueued(queue=queue.name, workflow_id=workflow_id, dedup_id=dedup_id)
    return workflow_id
