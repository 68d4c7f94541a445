"""Execution deadlines: the runtime cancels a workflow whose execution_timeout has passed.

The deadline itself is journaled (the start record's `dl`, kept by continue-as-new), so all
this keeps is one timer per workflow running here, on the runtime's Clock (virtual under
durable.testing), re-armed from the journal each time the workflow is loaded: a restart
neither extends nor forgets it, and one that passed while nothing ran fires at once. When it
fires it posts a cancellation to the workflow's inbox, as Runtime.cancel does, with a fixed
request id: the inbox refuses it a second time (after a restart, in a later generation), the
run journals it in order like any cancellation (so replay sees it at the same point and the
outcome reads WorkflowTimedOut), and posting wakes an unloaded sleeper like any message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._engine import _records as records
from ._engine._log_fields import durable_logger
from ._engine._replay import iso
from ._errors import WorkflowFinished, WorkflowNotFound

if TYPE_CHECKING:
    from ._engine._clock import Clock
    from ._engine._workflow_run import WorkflowRun
    from ._mail import Mailroom

logger = durable_logger()


class Deadlines:
    """The deadline timers of the workflows a runtime runs, and the cancellations they post."""

    def __init__(self, mail: Mailroom, clock: Clock) -> None:
        self._mail = mail
        self._clock = clock
        self._timers: dict[str, asyncio.Handle] = {}
        self.posting: set[asyncio.Task[None]] = set()  # cancellations on their way (tests wait)

    async def arm(self, workflow_id: str, run: WorkflowRun) -> None:
        """(Re)arm the workflow's timer at the deadline its journal gives (none: no timer).

        A deadline that has passed already (while nothing ran the workflow) is acted on now:
        the cancellation is in its inbox before the run goes live, which takes it before it
        starts anything (WorkflowRun.execute).
        """
        self.disarm(workflow_id)
        deadline = run.deadline
        if deadline is None or run.finished is not None:
            return
        if deadline <= self._clock.time():
            await self._cancel(workflow_id, deadline)
            return
        self._timers[workflow_id] = self._clock.call_at(
            deadline, self._passed, workflow_id, deadline
        )

    def disarm(self, workflow_id: str) -> None:
        """The workflow no longer runs here (it ended, or its runtime closes)."""
        timer = self._timers.pop(workflow_id, None)
        if timer is not None:
            timer.cancel()

    def _passed(self, workflow_id: str, deadline: float) -> None:
        self._timers.pop(workflow_id, None)
        task = asyncio.get_running_loop().create_task(
            self._cancel(workflow_id, deadline), name=f"durable deadline {workflow_id}"
        )
        self.posting.add(task)
        task.add_done_callback(self.posting.discard)

    async def _cancel(self, workflow_id: str, deadline: float) -> None:
        reason = f"its execution_timeout passed (deadline {iso(deadline)})"
        try:
            await self._mail.cancel(workflow_id, reason, records.DEADLINE_CANCEL_ID)
        except (WorkflowFinished, WorkflowNotFound):
            pass  # (it ended meanwhile)
        except Exception:  # an inbox that cannot take it: the next load of the run re-arms
            logger.exception(
                "workflow %s: its execution_timeout passed, but its cancellation could not be "
                "posted; it is posted again when the workflow is next loaded",
                workflow_id,
            )

    async def close(self) -> None:
        """Drop every timer, and let cancellations being posted reach their inboxes."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self.posting:
            await asyncio.wait(set(self.posting), timeout=5)
