"""Where one run stands, and how it lets go: its tasks, its wake-up, why it stops.

A part of WorkflowRun (its `_life`): the workflow's main task and the host tasks the run
started (drains, inbox pulls, activities, children), the future its driver sleeps on
between events, whether it went live, is stopping or was killed (durable.testing's
simulated crash), the error that stops it early, and how the first cancellation reached
it. Teardown closes the workflow's coroutines here, abandoned rather than cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from .._asyncio_private import forget_pending
from ._loop import WorkflowLoop


class Lifecycle:
    """A run's main task, host tasks and wake-up; live, stopping, killed, failed."""

    def __init__(self) -> None:
        self.live = False  # replay is done: new steps start on the host loop
        self.stopping = False  # the runtime is closing: start no more activities
        self.killed = False  # kill(): as if the process died here
        self.fatal: BaseException | None = None  # what stops the run before the code ends
        self.main: asyncio.Task[Any] | None = None  # the workflow function, on its loop
        self.cancel_reason: str | None = None  # of the first cancellation delivered
        self.timed_out = False  # that cancellation was the deadline's
        self.host_loop: asyncio.AbstractEventLoop | None = None  # set as execute() starts
        # What the run's host tasks start from (a copy each): the run's stream sink set in
        # it once, instead of per activity attempt. None: the spawning task's, as usual.
        self.context: contextvars.Context | None = None
        self.host_tasks: set[asyncio.Task[Any]] = set()  # teardown cancels what is left
        self.wakeup: asyncio.Future[None] | None = None  # what the driver awaits
        self.abandoned: tuple[asyncio.Task[Any], ...] = ()  # a killed run's tasks, for bury()
        self.parked: tuple[float, int] | None = None  # its last park record's (at, q)

    def main_done(self) -> bool:
        """Whether the workflow function has ended (returned, raised, was cancelled)."""
        main = self.main
        return main is not None and main.done()

    async def idle(self) -> None:
        """Sleep until wake() (an outcome delivered, a failure, a pull that ended)."""
        assert self.host_loop is not None
        self.wakeup = self.host_loop.create_future()
        await self.wakeup

    def wake(self) -> None:
        wakeup = self.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def waiting(self) -> bool:
        """Whether the driver sleeps in idle() and nothing has woken it yet."""
        wakeup = self.wakeup
        return wakeup is not None and not wakeup.done()

    def fail(self, error: BaseException) -> None:
        """Stop the run with `error` (the first one counts): execute() raises it."""
        if self.fatal is None:
            self.fatal = error
        self.wake()

    def cancelled(self, reason: str, *, timed_out: bool) -> bool:
        """A cancellation was delivered: whether it is the first (the one applied)."""
        if self.cancel_reason is not None:
            return False
        self.cancel_reason = reason
        self.timed_out = timed_out
        return True

    def spawn(
        self,
        coroutine: Coroutine[Any, Any, Any],
        name: str | None = None,
        done: Callable[[asyncio.Task[Any]], object] | None = None,
    ) -> asyncio.Task[Any]:
        """Run `coroutine` as a task of this run on the host loop; teardown cancels it.

        `done` is called once it is done; without one, the task leaves `host_tasks` then.
        """
        assert self.host_loop is not None
        context = self.context
        task = self.host_loop.create_task(
            coroutine, name=name, context=None if context is None else context.copy()
        )
        self.host_tasks.add(task)
        task.add_done_callback(done or self.host_tasks.discard)
        return task

    def untrack(self, task: asyncio.Task[Any]) -> None:
        """A task of this run that ends now (teardown need not cancel it)."""
        self.host_tasks.discard(task)

    def cancel_host_tasks(self) -> None:
        for task in self.host_tasks:
            task.cancel()

    def stop_starting(self, children: set[Any]) -> list[asyncio.Task[Any]]:
        """The runtime is closing: start nothing more; the host tasks still running.

        Not `children`: a child's task waits for a workflow that is being stopped too (its
        activities in flight are its own run's), so close() would wait all of stop_grace.
        """
        self.stopping = True
        return [task for task in self.host_tasks if not task.done() and task not in children]

    def let_go(self, loop: WorkflowLoop) -> None:
        """Close the workflow's coroutines (a killed run's wait for bury()), then its loop."""
        loop.close_asyncgens()
        leftovers = loop.tasks()
        if self.main is not None:
            leftovers.add(self.main)
        if self.killed:
            self.abandoned = tuple(leftovers)  # a dead process runs no `finally`; see bury()
        else:
            _close_tasks(loop, leftovers)
        loop.close()

    def bury(self, loop: WorkflowLoop) -> None:
        """Close the coroutines of a killed run (its `finally` blocks may start nothing)."""
        abandoned, self.abandoned = self.abandoned, ()
        _close_tasks(loop, abandoned)


def _close_tasks(loop: WorkflowLoop, tasks: Iterable[asyncio.Task[Any]]) -> None:
    # Abandoned, not cancelled: closing the coroutine raises GeneratorExit at its await,
    # so `finally` blocks run but `except CancelledError` handlers and Saga compensations
    # do not: unloading a sleeper or closing the runtime is not a cancellation of the
    # workflow. This loop is the running one meanwhile, so a durable call in a `finally`
    # finds its run, which refuses it (Evicted), instead of calling the function.
    pending: list[asyncio.Task[Any]] = []
    for task in tasks:
        if not task.done():
            pending.append(task)
        elif not task.cancelled():
            task.exception()  # retrieved: an error here is not "never retrieved"
    if not pending:
        return  # (a workflow that ended: nothing to close, no loop to switch to)
    with loop.running():
        for task in pending:
            forget_pending(task)  # (closed on purpose: pending for good, not a leak)
            try:
                task.get_coro().close()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # noqa: S110 (an await in `finally`, refused)
                pass
