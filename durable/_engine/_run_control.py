"""Stopping a run: teardown, a simulated kill, and telling whether a run is parked.

A mixin of WorkflowRun, kept apart so each module has one job: how a run lets go of what it
started (host tasks, timers, the workflow's coroutines), whether it may be left alone (the
testing kit's virtual time skips only when every run is parked), and durable.testing's kill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._loop import WorkflowLoop
    from ._steps import Command, InlineStart


class RunControl:
    """Teardown, kill/bury and parked() for WorkflowRun."""

    _clock_waits = 0  # how many pending activities wait out a retry back-off on the clock
    _killed = False  # kill(): as if the process died
    abandoned: tuple[asyncio.Task[Any], ...] = ()  # a killed run's tasks, for bury()

    if TYPE_CHECKING:  # provided by WorkflowRun
        loop: WorkflowLoop
        _evicting: bool
        _stopping: bool
        _pending: dict[int, Command]
        _pending_activities: int
        _host_tasks: set[asyncio.Task[Any]]
        _inline: InlineStart | None
        _main: asyncio.Task[Any] | None
        _wakeup: asyncio.Future[None] | None
        _draining: bool
        _outcomes: Any
        _pulling: bool

        def _fail(self, error: BaseException) -> None: ...

    def _teardown(self) -> None:
        """Stop what this run started: host tasks and timers, then the workflow's own tasks."""
        self._evicting = True
        self._stop_host_work()
        self.loop.close_asyncgens()
        leftovers = self.loop.tasks()
        if self._main is not None:
            leftovers.add(self._main)
        if self._killed:
            self.abandoned = tuple(leftovers)  # a dead process runs no `finally`; see bury()
        else:
            self._close_tasks(leftovers)
        self.loop.close()

    def _stop_host_work(self) -> None:
        for command in self._pending.values():
            if command.host is not None:
                command.host.cancel()
        for task in self._host_tasks:
            task.cancel()
        if self._inline is not None:
            self._inline.cancel()

    def _close_tasks(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        # Abandoned, not cancelled: closing the coroutine raises GeneratorExit at its await,
        # so `finally` blocks run but `except CancelledError` handlers and Saga compensations
        # do not: unloading a sleeper or closing the runtime is not a cancellation of the
        # workflow. This loop is the running one meanwhile, so a durable call in a `finally`
        # finds its run, which refuses it (_Evicted), instead of calling the function.
        with self.loop.running():
            for task in tasks:
                if task.done():
                    if not task.cancelled():
                        task.exception()  # retrieved: an error here is not "never retrieved"
                    continue
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                try:
                    task.get_coro().close()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException:  # noqa: S110 (an await in `finally`, refused)
                    pass

    def kill(self, error: BaseException) -> None:
        """Stop now, as if the process died here (durable.testing's crash injection).

        Host work is cancelled at once and execute() raises `error`; the workflow's own
        coroutines are kept, not closed, so none of its code runs, until bury().
        """
        self._killed = True
        self._stop_host_work()
        self._fail(error)

    def bury(self) -> None:
        """Close the coroutines of a killed run (its `finally` blocks may start nothing)."""
        abandoned, self.abandoned = self.abandoned, ()
        self._close_tasks(abandoned)

    def parked(self, child_parked: Callable[[str], bool]) -> bool:
        """Whether only the clock, a message or a parked child can move this run now.

        Virtual time may skip ahead only when every run is parked: no outcome to journal, no
        activity running (one waiting out its back-off on the clock is parked).
        """
        wakeup = self._wakeup
        if (
            wakeup is None
            or wakeup.done()
            or self._draining
            or self._outcomes
            or self._pulling
            or self._inline is not None
        ):
            return False
        running = self._pending_activities - self._clock_waits
        for command in self._pending.values():
            if command.child is not None and command.host is not None:
                if not child_parked(command.child.workflow_id):
                    return False
                running -= 1
        return running == 0

    def stop_starting(self) -> list[asyncio.Task[Any]]:
        """The runtime is closing: start no new activity; the host tasks still running.

        Not a child's: it waits for a workflow that is being stopped too (its activities in
        flight are its own run's), so close() would wait all of stop_grace for it.
        """
        self._stopping = True
        children = {c.host for c in self._pending.values() if c.child is not None}
        return [task for task in self._host_tasks if not task.done() and task not in children]
