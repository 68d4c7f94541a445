"""A runtime's queues, as one object: enqueue, the dispatchers, and the gate for resumed runs.

One QueueService per Runtime on the file store (`make_queue_service` picks it, or on a
PostgresStore the PostgresQueueService of `_queue_postgres.py`, which has the same methods:
the file store's parts are synchronous syscalls under an flock, PostgreSQL's are awaited
round trips, so they share this facade's shape rather than one storage protocol).

Composed of parts that know nothing of each other beyond the shared QueueRegistry
(`_queue_state.py`): the Enqueuer writes requests
(`_queue_enqueue.py`), the Dispatcher starts them in order within the limits
(`_queue_dispatch.py`), the Gate makes every queued workflow's task hold a slot before it
runs (`_queue_gate.py`). Knows the runtime only by the QueueHost protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._definitions import Workflow
from ._engine._clock import Clock
from ._engine._describe import WorkflowDescription
from ._engine._log_fields import durable_logger
from ._errors import InvalidJournalName, JournalError, JournalNotFound
from ._queue_dispatch import Dispatcher, QueueHost
from ._queue_enqueue import Enqueuer, OnDuplicate
from ._queue_gate import Gate
from ._queue_postgres import PostgresGrant, PostgresQueueService
from ._queue_reading import describe_admitted, describe_queued
from ._queue_requests import launch_arguments
from ._queue_state import Grant, QueueRegistry, declared_of, journal_ended, release
from ._queues import Queue
from ._storage._interface import JournalStore
from ._storage._postgres import PostgresStore
from ._storage._queue_files import DAMAGED, DamagedRequest, QueueFiles

__all__ = ["AnyGrant", "OnDuplicate", "QueueHost", "QueueService", "make_queue_service"]

logger = durable_logger()

AnyGrant = Grant | PostgresGrant


def make_queue_service(
    host: QueueHost,
    store: JournalStore,
    directory: Path | None,
    queues: Iterable[Queue],
    clock: Clock,
) -> QueueService | PostgresQueueService:
    """The queue service for a runtime's store: its journal directory's, or PostgreSQL's.

    Raises:
        InvalidQueue: `queues` are not Queues, declare one name twice with different
            limits, or the store is neither.
    """
    if isinstance(store, PostgresStore):
        return PostgresQueueService(host, store, declared_of(queues), clock)
    return QueueService(host, store, directory, queues, clock)


class QueueService:
    """Enqueue, dispatch and gate for one runtime (see the module docstring).

    Raises:
        InvalidQueue: (constructor) `queues` are not Queues, declare one name twice with
            different limits, or the store has no journal directory.
    """

    def __init__(
        self,
        host: QueueHost,
        store: JournalStore,
        directory: Path | None,
        queues: Iterable[Queue],
        clock: Clock,
    ) -> None:
        self._registry = QueueRegistry(store, directory, queues)
        self._clock = clock
        self._gate = Gate(self._registry, clock)
        self._dispatcher = Dispatcher(host, self._registry, self._gate, clock)
        self._enqueuer = Enqueuer(self._registry, clock, self._dispatcher.wake)

    @property
    def declared(self) -> list[str]:
        return sorted(self._registry.declared)

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
        """Write a request durably; the workflow id (see Enqueuer.enqueue)."""
        return await self._enqueuer.enqueue(
            queue,
            definition,
            arguments,
            workflow_id=workflow_id,
            key=key,
            priority=priority,
            dedup_id=dedup_id,
            delay=delay,
            on_duplicate=on_duplicate,
            trace=trace,
        )

    def waiting(self) -> dict[str, int]:
        """How many requests wait in each declared queue, as this runtime last read them."""
        return {name: len(state.waiting.entries) for name, state in self._registry.states.items()}

    def wake(self) -> None:
        """Start the dispatchers of the declared queues, once a loop runs this runtime."""
        self._dispatcher.wake()

    async def gate(self, workflow_id: str) -> Grant | None:
        """The slots a queued workflow must hold to run here (see Gate.gate)."""
        return await self._gate.gate(workflow_id)

    def release(self, grant: AnyGrant) -> None:
        """Give a grant's slots back; if its workflow ended, forget its admission and dedup."""
        assert isinstance(grant, Grant)
        release(grant)

    async def wait_admitted(self, workflow_id: str) -> bool:
        """Wait until a queued request's journal exists (False: `workflow_id` is no request)."""
        return await self._dispatcher.wait_admitted(workflow_id)

    async def orphans(self) -> list[str]:
        """Admitted requests whose journal is missing or empty: their admitter died first.

        (Between its claim and the start record's commit. Starting one is safe while that
        runtime lives: whichever opens the journal first runs it, the other is refused.)
        An admission whose journal ended is forgotten here (its runtime died between the
        two); one planted under a name no workflow may have is set aside.
        """
        found = []
        store = self._registry.store
        for name in sorted(self._registry.declared):
            files = self._registry.files_of(name, create=False)
            if files is None:
                continue
            for workflow_id in files.admitted():
                if workflow_id.endswith(DAMAGED):
                    continue  # (set aside: `durable list` shows it)
                try:
                    store.check_name(workflow_id)
                except InvalidJournalName:  # (planted: no workflow can have this id)
                    self._set_aside(files, workflow_id, "no workflow id can have this name")
                    continue
                try:
                    stored = await store.read(workflow_id)
                except JournalNotFound:
                    stored = []
                except JournalError:  # (a journal there, unreadable: serve sets it aside)
                    continue
                if not stored:
                    found.append(workflow_id)
                elif journal_ended(stored):  # (its runtime died before forgetting it)
                    files.finish(workflow_id)
        return found

    def _set_aside(self, files: QueueFiles, workflow_id: str, why: object) -> None:
        logger.error(
            "queue %r: admitted request %s set aside as %s%s: %s",
            files.name,
            workflow_id,
            workflow_id,
            DAMAGED,
            why,
        )
        files.set_aside(workflow_id, admitted=True)

    async def orphaned(self, workflow_id: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        """What to start an admitted request with whose journal has no record yet.

        None: no admitted request of a declared queue has this id.

        Raises:
            KeyError, JournalCorrupted, SerializationError: the request cannot be started.
        """
        found = self._registry.queued_in(workflow_id)
        if found is None or not found[1] or found[0] not in self._registry.declared:
            return None
        files = self._registry.files_of(found[0], create=False)
        if files is None:
            return None
        try:
            request = files.read(workflow_id, admitted=True)
        except DamagedRequest as error:  # (torn, or planted: it can never start)
            self._set_aside(files, workflow_id, error)
            return None
        if request is None:
            return None
        definition, arguments, _ = launch_arguments(
            self._dispatcher.workflows, request.payload, workflow_id
        )
        return definition, arguments  # (its trace context: the admitter's span, gone with it)

    async def is_queued(self, workflow_id: str) -> bool:
        """Whether `workflow_id` is a request of some queue, waiting or admitted."""
        return self._registry.queued_in(workflow_id) is not None

    async def describe(self, workflow_id: str) -> WorkflowDescription | None:
        """A request of any queue whose journal is not begun, described (None: no such)."""
        found = self._registry.queued_in(workflow_id)
        if found is None:
            return None
        files = self._registry.files_of(found[0], create=False)
        assert files is not None
        if found[1]:  # (admitted: its journal is being begun)
            try:
                request = files.read(workflow_id, admitted=True)
            except DamagedRequest:
                return None
            return describe_admitted(request, found[0]) if request is not None else None
        return describe_queued(files, workflow_id, self._clock.time())

    @property
    def limit_home(self) -> None:
        """Activity limits meet in the journal directory (the runtime's), not here."""
        return None

    def parked(self, workflow_id: str) -> bool:
        """Whether the id's task waits at the gate for a slot (durable.testing: idle)."""
        return self._gate.parked(workflow_id)

    def busy(self) -> bool:
        """Whether a dispatcher is starting work, or could start some now (testing: not idle)."""
        return self._dispatcher.busy()

    async def close(self) -> None:
        """Stop dispatching (the runtime then stops the workflows, giving their slots back)."""
        await self._dispatcher.close()
        await self._enqueuer.close()

    async def close_files(self) -> None:
        """Release every slot and descriptor (after the workflows stopped)."""
        self._registry.close()
