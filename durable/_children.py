"""Child workflows: starting, joining and cancelling them for their parents' runs.

The engine's `Children`: a parent's run asks here to run a child (start it, resume it, or
join the run of it already going in this runtime), to cancel one it let go of, and, before
its own end is journaled, to cancel every child it started that may still run (structured
children: a child ends with its parent unless it was started detached). Cancellations go
to the child's inbox, so they reach it wherever and whenever it runs.

It knows the runtime only through `ChildHost` (what Runtime provides), never by import:
the runtime is the layer above.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from ._definitions import Workflow
from ._engine import _records as records
from ._engine._log_fields import durable_logger
from ._engine._replay import check_child
from ._errors import (
    JournalCorrupted,
    JournalNotFound,
    UnsafeJournalFile,
    UnsupportedJournalFormat,
    WorkflowAlreadyRunning,
    WorkflowDefinitionError,
    WorkflowFinished,
    WorkflowNotFound,
    WorkflowStopped,
)

if TYPE_CHECKING:
    from ._engine._workflow_run import WorkflowRun
    from ._mail import Mailroom
    from ._storage._interface import JournalStore

logger = durable_logger()

# One cancellation per child from its parent, whether the parent let go of the step or
# ended: the inbox refuses a second message with this id, so redoing either is free.
PARENT_CANCEL_ID = "cancelled-by-parent"

# True while a parent's step awaits its child's outcome: durable.testing's handles then do
# not count as a test awaiting an outcome (which lets virtual time skip), or a long-running
# child (a schedule's fire) would skip time past an advance() and on while the test idles.
awaited_by_parent: ContextVar[bool] = ContextVar("durable_awaited_by_parent", default=False)


class _Handle(Protocol):
    async def result(self) -> Any: ...


class ChildHost(Protocol):
    """What the runtime gives the child runner (Runtime has each of these)."""

    @property
    def _running(self) -> Mapping[str, asyncio.Future[Any]]: ...

    _runs: dict[str, WorkflowRun]
    _mail: Mailroom
    _store: JournalStore
    _loop: asyncio.AbstractEventLoop | None
    _closing: bool

    def _register(self, workflow: Workflow[..., Any]) -> None: ...

    async def _start(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        arguments: list[Any] | None,
        parent: str | None = None,
        *,
        follow: bool = True,
        trace: dict[str, str] | None = None,
    ) -> _Handle: ...


class ChildRunner:
    """Runs child workflows for workflow runs (the engine's Children)."""

    def __init__(self, runtime: ChildHost) -> None:
        self._runtime = runtime
        self._cancelling: set[asyncio.Task[None]] = set()
        # Children being started (checks, open, first step), by id. The runtime owns these
        # tasks, not the parent's run: a parent that ends (or is unloaded) right after asking
        # for a child neither aborts its start halfway nor cancels it before it exists.
        self._starting: dict[str, asyncio.Task[_Handle]] = {}

    def in_flight(self) -> set[asyncio.Task[Any]]:
        """Starts and cancellations under way (durable.testing waits for, or kills, them)."""
        return {*self._cancelling, *self._starting.values()}

    def begin(
        self,
        target: Any,
        workflow_id: str,
        arguments: list[Any],
        parent: str,
        trace: dict[str, str] | None = None,
    ) -> asyncio.Task[_Handle]:
        """Start, resume or join the child, in a task of the runtime's; it gives a handle.

        `trace`: the parent step's trace carrier, for a new child's start record.

        Raises (from the task):
            WorkflowDefinitionError: the child id is the parent's or an ancestor's own.
            ChildIdInUse: the id names a run that is not this parent's child with these
                arguments; nothing was started or joined.
        """
        loop = self._runtime._loop  # (called from a run's step on the host loop)
        assert loop is not None
        previous = self._starting.get(workflow_id)  # (a parent resumed while its last run
        task = loop.create_task(  # started it: this start checks, then joins, that one)
            self._start(target, workflow_id, arguments, parent, previous, trace=trace),
            name=f"durable start child {workflow_id}",
        )
        self._starting[workflow_id] = task
        task.add_done_callback(functools.partial(self._started, workflow_id))
        return task

    def _started(self, workflow_id: str, task: asyncio.Task[_Handle]) -> None:
        if self._starting.get(workflow_id) is task:
            del self._starting[workflow_id]
        if not task.cancelled():
            task.exception()  # (retrieved: outcome() raises it in the parent, if it listens)

    async def outcome(self, started: asyncio.Future[Any]) -> Any:
        """The child's result once `started` (begin's task) has started it.

        Raises WorkflowFailed / WorkflowCancelled for its end, and what begin's task raised.
        Cancelling this wait leaves the start and the child running.
        """
        handle: _Handle = await asyncio.shield(started)
        token = awaited_by_parent.set(True)
        try:
            return await handle.result()
        finally:
            awaited_by_parent.reset(token)

    async def _start(
        self,
        target: Any,
        workflow_id: str,
        arguments: list[Any],
        parent: str,
        previous: asyncio.Task[_Handle] | None,
        *,
        trace: dict[str, str] | None = None,
    ) -> _Handle:
        if previous is not None:
            await asyncio.wait([previous])
        runtime = self._runtime
        workflow = _workflow_of(target)
        ancestor: str | None = parent
        while ancestor is not None:  # its own task: it would wait for itself forever
            if ancestor == workflow_id:
                raise WorkflowDefinitionError(
                    f"workflow {parent!r} runs {workflow_id!r} as a child, but that is "
                    f"{parent!r} itself or a workflow it runs under: give the child its own id"
                )
            loaded = runtime._runs.get(ancestor)
            ancestor = loaded.parent if loaded is not None else None
        if runtime._closing:  # (close() has stopped the runs it knew of: start no more)
            raise WorkflowStopped(workflow_id=workflow_id)
        runtime._register(workflow)
        task = runtime._running.get(workflow_id)
        if task is not None:  # running here: join it, if it is this call's
            await self._check_owner(workflow, workflow_id, arguments, parent)
            return _Joined(workflow_id, task)
        try:  # (the run checks the journal it opens: ChildIdInUse, with its lock held)
            return await runtime._start(
                workflow, workflow_id, arguments, parent, follow=False, trace=trace
            )
        except WorkflowAlreadyRunning:  # elsewhere: a foreign id is still ChildIdInUse,
            await self._check_owner(workflow, workflow_id, arguments, parent)
        # and its own child, run by another runtime (serve() took it over, say), is followed
        # to its outcome: the runtime takes it over when that one stops or dies.
        return await runtime._start(workflow, workflow_id, arguments, parent)

    async def _check_owner(
        self, workflow: Workflow[..., Any], workflow_id: str, arguments: list[Any], parent: str
    ) -> None:
        """Refuse an id running outside this call whose journal is not this parent's child.

        Raises:
            ChildIdInUse: another workflow, parent or (first generation) arguments.
        """
        loaded = self._runtime._runs.get(workflow_id)
        if loaded is not None:
            start: dict[str, Any] = {"wf": loaded.spec.name, "args": loaded.arguments}
            start |= {"parent": loaded.parent, "gen": loaded.generation}
        else:  # (unloaded, or held by another process: read without a lock)
            read = await self._start_record(workflow_id)
            if read is None:
                return  # (being created)
            start = read
        check_child(
            start,
            workflow_id=workflow_id,
            workflow_name=workflow.name,
            arguments=arguments,
            parent=parent,
        )

    async def _start_record(self, workflow_id: str) -> records.Record | None:
        """The start record of the id's journal; None if it has none (a new child)."""
        store = self._runtime._store
        try:
            stored = await store.read(workflow_id)
        except JournalNotFound:
            return None
        if not stored:
            return None
        where = store.location(workflow_id)
        return records.read_journal(stored[:1], path=where)[0]

    def cancel(self, workflow_id: str, reason: str, parent: str) -> None:
        """Post a cancellation to the child soon, in a task the runtime keeps (see settle)."""
        loop = self._runtime._loop  # (called from workflow code: the running loop is its own)
        assert loop is not None
        task = loop.create_task(self._cancel(workflow_id, reason, parent))
        self._cancelling.add(task)
        task.add_done_callback(self._cancelling.discard)

    async def _cancel(self, workflow_id: str, reason: str, parent: str) -> None:
        """Cancel the child, if the id is `parent`'s child (a refused id is another's run).

        A child journal no runner can read (damaged, another format, not a regular file) is
        logged and left: it cannot run until repaired, and it must not keep its parent from
        ending at every resume. Other errors (a full disk) propagate: the caller retries.
        """
        try:
            if not await self._is_child(workflow_id, parent):
                return
            with contextlib.suppress(WorkflowFinished, WorkflowNotFound):
                await self._runtime._mail.cancel(workflow_id, reason, PARENT_CANCEL_ID)
        except (JournalCorrupted, UnsupportedJournalFormat, UnsafeJournalFile) as error:
            logger.error(
                "workflow %s: its child %s was not cancelled (%s): %s",
                parent,
                workflow_id,
                reason,
                error,
            )

    async def _is_child(self, workflow_id: str, parent: str) -> bool:
        """Whether the id's journal says `parent` started it (a start record never changes)."""
        loaded = self._runtime._runs.get(workflow_id)
        if loaded is not None:
            return loaded.parent == parent
        start = await self._start_record(workflow_id)
        if start is None:  # (no journal: nothing to cancel; or one being started here now)
            return workflow_id in self._runtime._running
        return start.get("parent") == parent

    async def end_with_parent(self, parent: str, children: list[str], reason: str) -> None:
        """Cancel `parent`'s children durably, now (the engine's Children.end_with_parent).

        Raises what a post raises other than WorkflowFinished / WorkflowNotFound (a full
        disk, say): the parent's end is not journaled then, and its resume tries again.
        """
        starting = [self._starting[child] for child in children if child in self._starting]
        if starting:  # (else a cancel could find no journal yet, and the child start after)
            await asyncio.wait(starting)
        await asyncio.gather(*(self._cancel(child, reason, parent) for child in children))

    async def settle(self) -> None:
        """Runtime close: stop starts under way; let cancellations reach the inboxes."""
        starting = list(self._starting.values())
        for task in starting:
            task.cancel()
        if starting:
            await asyncio.wait(starting)
        if self._cancelling:
            await asyncio.wait(set(self._cancelling), timeout=5)


def _workflow_of(candidate: object) -> Workflow[..., Any]:
    if isinstance(candidate, Workflow):
        return candidate
    raise WorkflowDefinitionError(
        f"{candidate!r} is not a durable workflow: decorate the async function with "
        "@durable.workflow before running it"
    )


class _Joined:
    """The handle of a child already running in this runtime (its task)."""

    def __init__(self, workflow_id: str, task: asyncio.Future[Any]) -> None:
        self._workflow_id = workflow_id
        self._task = task

    async def result(self) -> Any:
        """Its outcome; cancelling this wait leaves it running."""
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._task.cancelled() and (current is None or not current.cancelling()):
                raise WorkflowStopped(workflow_id=self._workflow_id) from None
            raise
