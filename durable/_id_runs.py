"""Each running id's IdRun, and the task that carries it while its workflow is loaded.

WorkflowTasks' part. An id's run begins with a task (its start); the task ends when the
workflow ends (the IdRun takes its outcome, the id is forgotten) or when it parks the
workflow as a row (its journal suspended; UNLOADED: the IdRun goes on, with no task); a
row that is due (its time, its mail) gets a new task, which resumes its journal; a row
cancelled (close(), a caller that gave up) has its journal closed and its queue slots
given back, and its IdRun ends cancelled, as its task would have.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ._engine._log_fields import durable_logger
from ._errors import WorkflowCancelled, WorkflowFailed
from ._journal_holding import let_go, note, resumed
from ._sleepers import IdRun, Parked, Sleepers, Unloaded

if TYPE_CHECKING:
    from ._deadline import Deadlines
    from ._storage._interface import Journal

logger = durable_logger()


class IdRuns:
    """The IdRuns of a runtime's running ids: their tasks, their rows' hand-offs, their ends."""

    def __init__(
        self,
        running: dict[str, IdRun],
        requested: dict[str, Any],
        sleepers: Sleepers,
        deadlines: Deadlines,
        *,
        reload: Callable[[IdRun], Coroutine[Any, Any, Any]],
        release: Callable[[Any], None],
        restarts_after: Callable[[BaseException], bool],
    ) -> None:
        self._running = running  # (the runtime's, shared)
        self._requested = requested  # (what started each id: WorkflowTasks', shared)
        self._sleepers = sleepers
        self._deadlines = deadlines
        self._reload = reload  # the coroutine of a task that loads a due row
        self._release = release  # gives a queue grant's slots back
        self._restarts_after = restarts_after  # (a simulated crash: resume at once)
        self._releasing: set[asyncio.Task[None]] = set()  # (cancelled rows' journals closing)
        sleepers.awaken = self.awaken

    def carry(self, outcome: IdRun, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run `coroutine` as the id's task, while its workflow is loaded."""
        task = asyncio.get_running_loop().create_task(
            coroutine, name=outcome.get_name(), context=outcome.context
        )
        outcome.task = task
        task.add_done_callback(functools.partial(self._task_done, outcome))

    def _task_done(self, outcome: IdRun, task: asyncio.Task[Any]) -> None:
        """The id's task ended: its outcome, unless it left the workflow parked as a row."""
        if outcome.task is task:
            outcome.task = None
        if outcome.done():
            return
        if task.cancelled():
            row, outcome.row = outcome.row, None
            if row is not None:  # (cancelled before it took its row: let go of it)
                self._let_go_of_row(row)
                return
            taken = outcome.taken
            if taken is not None:  # (cancelled before it began: its starter's journal)
                self._closing(taken[0].close(), outcome.workflow_id)
            outcome.stopped()
        elif (error := task.exception()) is not None:
            outcome.set_exception(error)
        elif isinstance(result := task.result(), Unloaded):
            return  # (parked as a row: its run goes on)
        else:
            outcome.set_result(result)
        self.ended(outcome)

    async def unload(self, row: Parked, inbox_next: int) -> bool | None:
        """Suspend a sleeper's journal and park it as a row (True): its task may end.

        It keeps its lock (or lease), so no other runtime takes it meanwhile. None: mail
        came while it was being unloaded (read it back, go on); False: a simulated crash
        struck (reopen and replay now, as a restarted process would).
        """
        workflow_id = row.outcome.workflow_id
        self._sleepers.expect(workflow_id)  # (before any await: a message from now on wakes it)
        try:
            await note(row.journal, wake_at=row.wake_at, inbox_next=inbox_next)
            await row.journal.suspend()
        except BaseException as error:
            self._sleepers.forget(workflow_id)
            if not self._restarts_after(error):
                raise
            return False
        if not self._sleepers.park(row):
            return None
        row.outcome.task = None  # (its task ends now; the id's run goes on as the row)
        return True

    async def resume(self, journal: Journal, workflow_id: str) -> bool:
        """Read a sleeper's journal back as it loads again; False: take the workflow again.

        False when the lease lapsed meanwhile (a paused process) and another runtime may
        have it, or a simulated crash struck (reopen and replay now).
        """
        try:
            return await resumed(journal, workflow_id)
        except BaseException as error:
            if not self._restarts_after(error):
                raise
            return False

    def awaken(self, row: Parked) -> None:
        """A parked row is due (its time, its mail): start a task that loads it again."""
        outcome = row.outcome
        outcome.row = row
        self.carry(outcome, self._reload(outcome))

    def cancel_parked(self, outcome: IdRun) -> None:
        """An unloaded run is cancelled (close(), say): let go of its row."""
        row = self._sleepers.take(outcome.workflow_id)
        if row is not None:
            self._let_go_of_row(row)
        # (else it is being loaded again: its task, once it has one, sees the cancel)

    def _let_go_of_row(self, row: Parked) -> None:
        self._closing(self._release_row(row), row.outcome.workflow_id)

    def _closing(self, closing: Coroutine[Any, Any, None], workflow_id: str) -> None:
        """Close a journal (let go of a row) in a task of its own, which close() awaits."""
        name = f"durable release {workflow_id}"
        task = asyncio.get_running_loop().create_task(closing, name=name)
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def settle(self) -> None:
        """Wait until the journals being closed (cancelled rows, untaken starts) are."""
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _release_row(self, row: Parked) -> None:
        """Close a cancelled row's journal (its name lock goes), free its queue slots."""
        try:
            await let_go(row.journal, away=False)
        except Exception:
            logger.exception(
                "workflow %s: its journal could not be closed", row.outcome.workflow_id
            )
        finally:
            if row.grant is not None:
                self._release(row.grant)
            row.outcome.stopped()
            self.ended(row.outcome)

    def ended(self, outcome: IdRun) -> None:
        """The id's run is over here (its outcome set): forget it; log how it ended."""
        workflow_id, claimed = outcome.workflow_id, outcome.claimed
        if self._running.get(workflow_id) is outcome:
            del self._running[workflow_id]
            self._requested.pop(workflow_id, None)
            self._sleepers.forget(workflow_id)
            self._deadlines.disarm(workflow_id)
        if claimed is None:
            pass  # (its starter went on)
        elif not claimed.done():
            claimed.cancel()
        elif not claimed.cancelled() and claimed.exception() is not None:
            if not outcome.cancelled():
                outcome.exception()  # (the starter raised it already: retrieved, not logged)
            return
        _log_end(workflow_id, outcome)


def _log_end(workflow_id: str, outcome: asyncio.Future[Any]) -> None:
    """Log how a workflow that did not return ended, once; its handles still raise it.

    Taking the exception here also keeps asyncio from printing "exception was never
    retrieved" for a run nobody awaits (recover()'s, an un-awaited start()'s).
    """
    if outcome.cancelled():
        return  # (stopped by close(): it resumes from its journal)
    error = outcome.exception()
    if error is None:
        return
    if isinstance(error, WorkflowFailed | WorkflowCancelled):
        logger.info("workflow %s ended: %s", workflow_id, error)
    else:
        logger.error("workflow %s stopped: %s", workflow_id, error, exc_info=error)
