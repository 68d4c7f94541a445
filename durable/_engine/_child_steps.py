"""The child workflows one run starts: their journal records, outcomes and cancellations.

A part of WorkflowRun (its `_children`). A child is a step (an activity step named
`child:<name>`) that the host's Children (the runtime) runs in a journal of its own; here
is what the parent journals about it (which child the step runs, its outcome as a `done`)
and which children may still run, so that the parent's end cancels them (structured
children: a child ends with its parent unless started detached).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from .._encoding import encode
from .._errors import ChildIdInUse, WorkflowCancelled, WorkflowDefinitionError, WorkflowFailed
from .._storage._interface import Journal
from . import _records as records
from ._ports import Children
from ._retry import RetryPolicy
from ._specs import ActivitySpec, WorkflowSpec
from ._steps import Command

_CHILD_RETRY = RetryPolicy(maximum_attempts=1)  # a child retries inside itself, not as a step


class ChildSteps:
    """A run's children: started through the host's Children, and those that may still run."""

    def __init__(
        self,
        children: Children | None,
        *,
        workflow_id: str,
        journal: Journal,
        now: Callable[[], float],
        open_children: dict[int, str],
    ) -> None:
        self._children = children  # None: this runtime cannot run children
        self._workflow_id = workflow_id
        self._journal = journal
        self._now = now
        # Children started and not detached, with no outcome journaled: the parent's end
        # cancels them (step -> child id).
        self.open = open_children

    def spec_of(self, spec: WorkflowSpec) -> ActivitySpec:
        """The step a child of workflow `spec` is, as the journal names and checks it.

        Raises:
            WorkflowDefinitionError: this run cannot start children.
        """
        if self._children is None:
            raise WorkflowDefinitionError("this runtime cannot run child workflows")
        return ActivitySpec(
            name=records.CHILD_PREFIX + spec.name,
            fn=spec.fn,
            is_async=True,
            timeout=None,
            retry=_CHILD_RETRY,
            at_most_once=False,
            return_type=spec.return_type,
        )

    def start(self, command: Command, *, recorded: bool) -> Coroutine[Any, Any, bytes]:
        """Have the host start (or resume, or join) the step's child now; its outcome's record.

        The first time (`recorded`: the journal names the child already) the step's `sched`
        records which child it runs, for readers and resumes.
        """
        child, spec = command.child, command.spec
        assert child is not None
        assert spec is not None
        assert self._children is not None
        if not recorded:
            intent = records.scheduled(
                command.step,
                spec.name,
                command.digest,
                1,
                now=self._now(),
                child=child.workflow_id,
                detached=child.detached,
                site=command.site,
            )
            self._journal.write(encode(intent))
            if not child.detached:
                self.open[command.step] = child.workflow_id
        started = self._children.begin(
            child.target, child.workflow_id, child.arguments, self._workflow_id, child.trace
        )
        return self._outcome(command, started)

    async def _outcome(self, command: Command, started: asyncio.Future[Any]) -> bytes:
        """The outcome of the child `started` runs (or resumes, or reads), as a "done"."""
        child, spec = command.child, command.spec
        assert child is not None
        assert spec is not None
        assert self._children is not None
        step, name, digest = command.step, spec.name, command.digest
        error: records.ErrorInfo
        try:
            result = await self._children.outcome(started)
        except ChildIdInUse as in_use:  # (journaled: a replay must not look at that id again)
            error = {"type": "durable.ChildIdInUse", "msg": str(in_use), "tb": ""}
            error |= {"kind": "child-id-in-use", "id": child.workflow_id}
            error |= {"was": in_use.recorded, "asked": in_use.given, "site": child.call_site}
            return encode(records.done(step, name, digest, 1, now=self._now(), error=error))
        except WorkflowFailed as failed:
            error = {"type": failed.error_type, "msg": failed.message, "tb": failed.traceback}
            error |= {"kind": "child", "id": failed.workflow_id}
            return encode(records.done(step, name, digest, 1, now=self._now(), error=error))
        except WorkflowCancelled as cancelled:
            error = {"type": "durable.WorkflowCancelled", "msg": cancelled.reason, "tb": ""}
            error |= {"kind": "child-cancelled", "id": child.workflow_id}
            return encode(records.done(step, name, digest, 1, now=self._now(), error=error))
        return encode(
            records.done(step, name, digest, 1, now=self._now(), result=result),
            context=f"the result of child workflow {child.workflow_id!r}",
        )

    def ended(self, step: int) -> None:
        """The step's outcome was delivered: if it ran a child, that child has ended."""
        self.open.pop(step, None)

    def cancel(self, command: Command, reason: str) -> None:
        """The parent let go of a child step: cancel the child durably (idempotent)."""
        if command.child is not None and self._children is not None:
            self._children.cancel(command.child.workflow_id, reason, self._workflow_id)

    async def end_with_parent(self, ending: str) -> None:
        """Cancel, durably, the children this run started that may still run (not detached).

        Called before the run's `end` record: a crash in between redoes it on resume (a
        child's inbox takes one cancellation from its parent: the rest are duplicates), and
        once the end is written every child has its cancellation on disk. A child finished
        meanwhile, or never started, is left be; one running nowhere takes it when it resumes.
        """
        if not self.open or self._children is None:
            return
        reason = f"its parent {self._workflow_id!r} {ending}"
        await self._children.end_with_parent(self._workflow_id, list(self.open.values()), reason)
