"""TestRuntime: a Runtime with virtual time, activity doubles and crash injection.

Time skips only while the test awaits a workflow's outcome (or calls advance()), and only
when every workflow is parked: waiting on a timer, an event or a parked child, with nothing
to journal and no activity running. So events sent before awaiting are never overtaken by
a timeout, and activities always finish in real time before time moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, TypeVarTuple, Unpack

from .._asyncio_private import loop_is_idle
from .._children import awaited_by_parent
from .._definitions import OMITTED, Activity, Workflow, _Omitted
from .._durations import Duration, to_seconds
from .._errors import SimulatedCrash
from .._handles import WorkflowHandle
from .._queues import Queue
from .._runtime import Runtime
from .._seams import AS_OPENED, RuntimeSeams
from .._storage._interface import JournalStore
from .._telemetry import OpenTelemetry
from ._activities import ActivityDoubles, CallCounter
from ._crashes import CrashInjector, CrashPoint
from ._virtual_time import VirtualClock

P = ParamSpec("P")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_SETTLE_PASSES = 5  # loop iterations with nothing ready before the runtime counts as idle
_BUSY_POLL = 0.001  # seconds between looks while an activity (real time) runs


class TestRuntime(Runtime):
    """A Runtime for tests: virtual time, activity mocks and counters, simulated crashes.

    Everything else is the real thing: journals in `directory`, replay, retries, events.

    - Time is virtual: durable.sleep("2 hours"), event timeouts and retry back-offs take no
      real time. While a test awaits `run()` or a handle's `result()`, time jumps to the
      next timer whenever every workflow is idle (auto_skip); `advance()` moves it by hand.
      durable.now() in workflows and activities, and journaled times, follow it.
    - `mock_activity(charge_payment, fake)` runs `fake` instead, with the activity's own
      retry policy and timeout; `count_calls(charge_payment)` counts every attempt.
    - `crash=CrashPoint(n)` kills the runtime once, as a SIGKILL would, at its n-th
      journal record, then resumes every workflow from its journal, as a restarted process
      would: a test awaiting `run()` sees the resumed workflow's outcome.

    Args:
        directory: where journals live (a test's tmp_path).
        store: or a JournalStore to use instead (a PostgresStore on a test database).
        workflows: workflows recover() may find there.
        start_time: the virtual time at start (default: now).
        auto_skip: skip ahead while a test awaits an outcome (default True).
        suspend_after: as Runtime's; sleepers are unloaded in virtual time too, so tests
            exercise the replay of a resumed sleeper.
        crash: where to crash once (default: never).
        warn_blocked_after: as Runtime's (real time: it measures the code's own work).
        queues: as Runtime's. Delays and rate limits wait in virtual time, so a test of
            a queue limited to 10 starts a minute runs in milliseconds.
        opentelemetry: as Runtime's (True, or a durable.OpenTelemetry naming the
            providers): a test checks the spans and metrics of its workflows, with the
            SDK's in-memory exporter. Span times are the real clock's, not the virtual one.
    """

    __test__ = False  # (pytest: not a test class)

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        store: JournalStore | None = None,
        workflows: Iterable[Workflow[..., Any]] = (),
        start_time: datetime | float | None = None,
        auto_skip: bool = True,
        suspend_after: Duration | None = "1 min",
        crash: CrashPoint | None = None,
        warn_blocked_after: Duration | None = "2 s",
        queues: Iterable[Queue] = (),
        opentelemetry: bool | OpenTelemetry = False,
    ) -> None:
        if start_time is None:
            start = time.time()
        elif isinstance(start_time, datetime):
            if start_time.tzinfo is None:
                raise ValueError("start_time must be timezone-aware (datetime(..., tzinfo=UTC))")
            start = start_time.timestamp()
        else:
            start = float(start_time)
        self._virtual = VirtualClock(start)
        if directory is None and store is None:
            raise TypeError("TestRuntime needs a directory (a test's tmp_path) or a store")
        self._doubles = ActivityDoubles()
        self._injector = CrashInjector(crash, self._kill) if crash is not None else None
        seams = RuntimeSeams(
            clock=self._virtual,
            substitute=self._doubles.substitute,
            journals=AS_OPENED if self._injector is None else self._injector,
            restarts_after=_is_simulated_crash,
            handle=functools.partial(TestWorkflowHandle, self),
        )
        super().__init__(
            directory,
            store=store,
            workflows=workflows,
            suspend_after=suspend_after,
            stop_grace=0,
            warn_blocked_after=warn_blocked_after,
            queues=queues,
            opentelemetry=opentelemetry,
            _seams=seams,
        )
        self.auto_skip = auto_skip
        self.crashes: list[SimulatedCrash] = []  # the crash, once it happened
        self._waiting = 0  # awaits of outcomes in progress: time may skip while > 0
        self._skipper: asyncio.Task[None] | None = None
        self._killed: list[Any] = []  # runs killed by the crash, to bury at close

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time (aware UTC)."""
        return datetime.fromtimestamp(self._virtual.time(), UTC)

    async def advance(self, duration: Duration) -> None:
        """Move virtual time forward by `duration`, firing each timer due on the way in turn.

        Before each timer fires, waits until every workflow is idle (activities finished,
        outcomes journaled), so steps happen in the order their times say.
        """
        seconds = to_seconds(duration, what="advance duration")
        target = self._virtual.time() + seconds
        await self.idle()
        while self._virtual.fire_next(limit=target):
            await self.idle()
        self._virtual.move_to(target)
        await self.idle()

    async def idle(self) -> None:
        """Wait (in real time, without moving virtual time) until every workflow is idle."""
        while not await self._settled():  # noqa: ASYNC110 (idleness has no event to wait on)
            await asyncio.sleep(_BUSY_POLL)

    async def _settled(self) -> bool:
        loop = asyncio.get_running_loop()
        for _ in range(_SETTLE_PASSES):
            await asyncio.sleep(0)
            if loop_is_idle(loop) is False or not self._quiet():  # (None: cannot tell)
                return False
        return True

    def _quiet(self) -> bool:
        return (
            not self._children.in_flight()
            and not self._deadlines.posting
            and not self._queues.busy()
            and all(self._parked(workflow_id) for workflow_id in self._running)
        )

    def _parked(self, workflow_id: str) -> bool:
        run = self._runs.get(workflow_id)
        if run is not None:
            return run.parked(self._parked)
        return workflow_id in self._mail.sleeping or self._queues.parked(workflow_id)

    @contextlib.asynccontextmanager
    async def _skipping(self) -> AsyncIterator[None]:
        """While the test awaits an outcome: skip to each next timer whenever all is idle."""
        self._waiting += 1
        if self.auto_skip and (self._skipper is None or self._skipper.done()):
            self._skipper = asyncio.get_running_loop().create_task(
                self._skip_while_waited(), name="durable.testing time skipper"
            )
        try:
            yield
        finally:
            self._waiting -= 1

    async def _skip_while_waited(self) -> None:
        while self._waiting and self.auto_skip:
            if await self._settled():
                if not self._virtual.fire_next():
                    await asyncio.sleep(_BUSY_POLL)  # idle with no timer: only a message helps
            else:
                await asyncio.sleep(0)

    # -- running ------------------------------------------------------------------------------

    async def run(
        self,
        workflow: Callable[[Unpack[Ts]], Awaitable[R]],
        /,
        *args: *Ts,
        id: str | None = None,
        attach: bool = False,
        execution_timeout: Duration | _Omitted | None = OMITTED,
    ) -> R:
        """Run the workflow to its outcome, skipping virtual time while it waits."""
        async with self._skipping():
            return await super().run(
                workflow, *args, id=id, attach=attach, execution_timeout=execution_timeout
            )

    # -- activity doubles -----------------------------------------------------------------

    @contextlib.contextmanager
    def mock_activity(
        self,
        activity: Activity[P, R] | str,
        fake: Callable[P, Awaitable[R]] | Callable[P, R],
    ) -> Iterator[None]:
        """Run `fake` instead of `activity` (or the activity of that name) meanwhile.

        The activity's retry policy, timeout and at_most_once still apply, and the journal
        records the real activity's name, so a journal made with a mock replays without it.
        `fake` may be async or a plain function (run in a worker thread, like the real one).
        """
        name = activity if isinstance(activity, str) else activity.name
        self._doubles.push_mock(name, fake)
        try:
            yield
        finally:
            self._doubles.pop_mock(name, fake)

    def count_calls(self, activity: Activity[..., Any] | str) -> CallCounter:
        """Count every attempt of `activity` from now on (usable as a `with` block).

        Each attempt is an ActivityCall with its idempotency key, arguments and outcome;
        counting continues until the counter's stop() (or the end of its `with` block).
        """
        name = activity if isinstance(activity, str) else activity.name
        return self._doubles.count(name)

    # -- crashes --------------------------------------------------------------------------

    def _kill(self, crash: SimulatedCrash) -> None:
        """The process "dies": every loaded run stops where it is; nothing more is written."""
        self.crashes.append(crash)
        for run in list(self._runs.values()):
            run.kill(crash)
            self._killed.append(run)
        for task in self._children.in_flight():
            task.cancel()

    async def close(self) -> None:
        """Stop the workflows still running, then close the coroutines of crashed runs."""
        if self._skipper is not None:
            self._skipper.cancel()
        try:
            await super().close()
        finally:
            for run in self._killed:
                run.bury()
            self._killed.clear()

    async def __aenter__(self) -> TestRuntime:
        return self


def _is_simulated_crash(error: BaseException) -> bool:
    """A simulated crash: the run resumes from its journal at once, as a restarted process."""
    return isinstance(error, SimulatedCrash)


class TestWorkflowHandle(WorkflowHandle[R]):
    """A handle whose result() skips virtual time while it waits."""

    __test__ = False

    def __init__(
        self, runtime: TestRuntime, workflow_id: str, task: asyncio.Future[R] | None
    ) -> None:
        super().__init__(workflow_id, task, runtime)
        self._test_runtime = runtime

    async def result(self) -> R:
        if awaited_by_parent.get():  # (a parent's step: the test awaits the parent, or not)
            return await super().result()
        async with self._test_runtime._skipping():
            return await super().result()
