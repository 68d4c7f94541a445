"""Cancel an activity attempt in flight once its runner's lease on the journal may have lapsed.

A lease (PostgreSQL) holds until `journal.held_until` by this process's own monotonic
clock, reckoned from before each claim or renewal was sent, so no other process can take
the workflow over before then. An attempt still running at that moment may overlap with
the step's attempt of a process that takes the workflow over: the watch cancels it then
(and says so), unless the lease was renewed meanwhile (a heartbeat, a commit). It cannot
shorten a pause of the whole process (its loop runs the watch), nor stop a plain
function's thread.
"""

from __future__ import annotations

import asyncio
import time

from .._errors import JournalError
from .._storage._interface import Journal
from ._log_fields import durable_logger

logger = durable_logger()


class LeaseWatch:
    """Armed over one attempt that suspended (its first stretch ran on the loop's thread)."""

    __slots__ = ("_cancelling", "_journal", "_task", "_timer", "_what", "failure")

    def __init__(
        self, journal: Journal, held_until: float, what: tuple[str, str, int, int]
    ) -> None:
        """`what`: (workflow id, activity name, step, attempt), for the message."""
        self._journal = journal
        self._what = what
        task = asyncio.current_task()
        assert task is not None  # (an attempt runs in a task)
        self._task = task
        self._cancelling = 0
        self.failure: JournalError | None = None  # set as the watch cancels the attempt
        self._timer = self._arm(held_until)

    def _arm(self, held_until: float) -> asyncio.TimerHandle:
        # (a delay by the monotonic clock, whatever the loop's own clock is)
        delay = max(0.0, held_until - time.monotonic())
        return asyncio.get_running_loop().call_later(delay, self._due)

    def _due(self) -> None:
        held_until = self._journal.held_until
        try:
            self._journal.check_held()  # (the handle is lost from now on if it raises)
        except JournalError as lost:
            self.failure = lost
        else:
            if held_until is not None:  # renewed meanwhile
                self._timer = self._arm(held_until)
            return
        self._cancelling = self._task.cancelling()
        self._task.cancel()
        workflow_id, name, step, attempt = self._what
        late = time.monotonic() - held_until if held_until is not None else 0.0
        logger.warning(
            "workflow %s: this runner's lease may have lapsed (at %.6f, time.time()): activity "
            "%r attempt %d (step %d) is cancelled, as another process may take the workflow "
            "over and run the step",
            workflow_id,
            time.time() - late,
            name,
            attempt,
            step,
        )

    def disarm(self) -> JournalError | None:
        """Stop watching (the attempt ended); the journal's failure if the watch cancelled it.

        A cancellation of the watch's that the attempt did not let through (it caught it)
        is withdrawn, so it does not hit whatever the task awaits next.
        """
        self._timer.cancel()
        if self.failure is not None and self._task.cancelling() > self._cancelling:
            self._task.uncancel()
        return self.failure
