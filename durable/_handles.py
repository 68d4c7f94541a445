"""WorkflowHandle: a workflow's id, and its outcome once it ends, wherever it runs.

A handle asks its runtime (a HandleHost: the Runtime, the layer above) to follow the id,
describe it, send it events and cancel it; it holds no state of its own but the task whose
outcome is the workflow's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Generic, Protocol, TypeVar

from ._engine._describe import WorkflowDescription
from ._errors import WorkflowStopped

R = TypeVar("R")


class HandleHost(Protocol):
    """What a handle asks of its runtime."""

    @property
    def _closing(self) -> bool: ...

    async def _follow(self, workflow_id: str) -> asyncio.Future[Any]: ...

    async def describe(self, workflow_id: str) -> WorkflowDescription: ...

    async def send_event(
        self, workflow_id: str, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool: ...

    async def cancel(
        self, workflow_id: str, reason: str = "cancelled", *, request_id: str | None = None
    ) -> bool: ...


class WorkflowHandle(Generic[R]):
    """A workflow's id, and its outcome once it ends, wherever on the store it runs.

    From start(), run()'s own, or Runtime.handle(): a handle to an id another runtime holds
    (here or in another process) follows that run, and takes the workflow over if that
    runtime stops or dies; result() is the workflow's real outcome either way.
    """

    def __init__(
        self,
        workflow_id: str,
        task: asyncio.Future[R] | None,
        runtime: HandleHost,
    ) -> None:
        self.id = workflow_id
        self._task = task
        self._runtime = runtime
        self._started = False  # (this handle's call started the task: run() may cancel it)

    def done(self) -> bool:
        """Whether this runtime has seen the workflow end (or stop with the runtime)."""
        return self._task is not None and self._task.done()

    async def result(self) -> R:
        """Wait for the workflow's outcome; cancelling this wait does not stop the workflow.

        Raises:
            WorkflowFailed: the workflow raised; its recorded failure.
            WorkflowCancelled: it was cancelled.
            NonDeterminismError: the code diverged from the journal.
            WorkflowStopped: this runtime was closed first; it resumes from its journal.
        """
        while True:
            if self._task is None:
                self._task = await self._runtime._follow(self.id)
            try:
                return await outcome_of(self.id, asyncio.shield(self._task), self._task)
            except WorkflowStopped:
                if self._runtime._closing:
                    raise
                # The run this handle followed was stopped by a caller that gave up on it
                # (a cancelled run() or start()), not by close(): follow the workflow again.
                self._task = None

    async def describe(self) -> WorkflowDescription:
        """What the workflow is doing now, read from its journal (see Runtime.describe)."""
        return await self._runtime.describe(self.id)

    async def send_event(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Send it an event (see Runtime.send_event)."""
        return await self._runtime.send_event(self.id, name, payload, event_id=event_id)

    async def cancel(self, reason: str = "cancelled") -> None:
        """Cancel it, durably (see Runtime.cancel)."""
        await self._runtime.cancel(self.id, reason)

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<WorkflowHandle {self.id!r} {state}>"


async def outcome_of(workflow_id: str, waiting: Awaitable[R], task: asyncio.Future[R]) -> R:
    """Await `waiting`, turning a run that close() stopped into WorkflowStopped.

    Otherwise a caller that nobody cancelled would get a bare CancelledError.
    """
    try:
        return await waiting
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            raise WorkflowStopped(workflow_id=workflow_id) from None
        raise
