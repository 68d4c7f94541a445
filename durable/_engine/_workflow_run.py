"""Drives one workflow: replays its journal into the workflow loop, then goes on live.

The loop of a run: deliver one event (an activity outcome or a timer firing) into the
workflow loop, run the loop until idle, collect the commands the code asked for (activity
calls, timers), check them against what the journal recorded at those steps, start the new
ones on the host loop. Replay delivers the journal's events in journal order; live, each
outcome is journaled durably first and then delivered the same way, so a replay makes the
same decisions as the first run whatever asyncio composition the workflow uses.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .._asyncio_private import running_loop
from .._encoding import convert, decode, encode
from .._errors import (
    NonDeterminismError,
    SerializationError,
    WorkflowDefinitionError,
)
from .._storage._collector import collector_paused
from .._storage._frames import DEFAULT_MAX_RECORD_SIZE
from .._storage._interface import Journal
from . import _records as records
from ._clock import SYSTEM_CLOCK, Clock
from ._context import WorkflowInfo, user_call_site
from ._events import EventWaiters
from ._host_steps import HostSteps
from ._loop import StepTimer, TimerScheduler, WorkflowLoop
from ._outcomes import (
    ContinuedAsNew,
    Finished,
    RunOutcome,
    Suspended,
    end_of_failure,
    ending_of,
    ending_of_task,
    rebuild,
    step_error,
)
from ._ports import Children, InboxReader
from ._replay import (
    JournalIndex,
    RecordedStep,
    digest_of,
)
from ._requests import WorkflowRequests
from ._run_control import RunControl
from ._specs import ActivitySpec, WorkflowSpec
from ._stall import StallWatch
from ._steps import (
    Command,
    CommandFuture,
    ContinueAsNew,
    InlineStart,
    RecordedOutcome,
)

logger = logging.getLogger("durable")


class _Evicted(BaseException):
    """Unwinds workflow code that asks for work while its run is being torn down."""


class _Diverged(BaseException):
    """Unwinds workflow code at a non-deterministic call; user code cannot catch it."""


class WorkflowRun(WorkflowRequests, HostSteps, RunControl, TimerScheduler):
    """One execution of one workflow over its journal (replay, then live)."""

    _timed_out = False  # the cancellation delivered (the first) is the deadline's

    def __init__(
        self,
        *,
        spec: WorkflowSpec,
        workflow_id: str,
        journal: Journal,
        arguments: list[Any] | None,
        clock: Clock = SYSTEM_CLOCK,
        suspend_after: float | None = None,
        inbox: InboxReader | None = None,
        children: Children | None = None,
        parent: str | None = None,
        substitute: Callable[[ActivitySpec], ActivitySpec] | None = None,
        record_limit: int = DEFAULT_MAX_RECORD_SIZE,
        location: str | None = None,
        execution_timeout: float | None = None,
        watch: StallWatch | None = None,
    ) -> None:
        """Prepare a run; `arguments` is None when resuming from the journal's start record.

        `record_limit` is the largest record the journal takes (its store's max_record_size):
        an inbox message whose record would be larger is journaled as skipped.
        `execution_timeout` (seconds) gives a new journal its deadline (`dl`, from its start
        time); a journal that has a start record keeps its own. `watch` marks each step, for
        the runtime's stall watchdog.

        Raises:
            JournalCorrupted: a record is not one this version understands.
            UnsupportedJournalFormat: the journal was written by a newer durable.
            WorkflowDefinitionError: the journal belongs to another workflow.
            ChildIdInUse: `parent` starts it as a child, and the journal is not that child.
        """
        self.spec = spec
        self.workflow_id = workflow_id
        self._journal = journal
        self._clock = clock.time
        self._timers = clock
        self._substitute = substitute  # durable.testing's mocks: what runs for an activity
        self._suspend_after = suspend_after
        self._index = JournalIndex(
            journal.records,
            workflow_id=workflow_id,
            workflow_name=spec.name,
            arguments=arguments,
            clock=clock.time,
            parent=parent,
            path=location,  # (the journal's path or place, for errors: else the id)
            execution_timeout=execution_timeout,
        )
        self.finished = self._index.finished
        self._recorded = self._index.steps
        self._replay_index = 0  # the next recorded event to deliver
        start = self._index.start
        self.start_time: float = start["t"]
        self.random = random.Random(start["seed"])
        self.arguments: list[Any] = start["args"]
        self.generation: int = start.get("gen", 0)
        self.parent: str | None = start.get("parent")
        self._inbox, self._record_limit, self._watch = inbox, record_limit, watch
        # Children started and not detached, with no outcome journaled: the parent's end
        # cancels them (step -> child id).
        self._children, self._open_children = children, self._index.open_children()
        self.inbox_next = self._index.inbox_next  # the first inbox message not journaled
        self.inbox_delivered: int = start.get("q", 0)  # the first one not delivered
        self._pulling = False
        self._pull_again = False
        self.events = EventWaiters()
        self.events.preload(start.get("carry", []))
        self.status: Any = None
        self.cancel_reason: str | None = None
        self._patch_decisions: dict[str, tuple[bool, str]] = {}
        self._last_recorded_step = max(self._index.steps, default=-1)
        self._deferred: list[bytes] = []  # bookkeeping records to write once live
        self._stopping = False  # the runtime is closing: start no more activities
        self._host_loop: asyncio.AbstractEventLoop | None = None
        self.loop = WorkflowLoop(  # type: ignore[abstract]  # (I/O methods: not for workflows)
            start_time=self.start_time, scheduler=self, owner=self
        )
        self._next_step = 0
        self._pending: dict[int, Command] = {}
        self._pending_activities = 0  # how many of _pending are activities
        self._new: list[Command] = []
        self._outcomes: collections.deque[bytes] = collections.deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._draining = False
        self._inline_open = False  # an activity task is draining: it can run one more
        self._inline: InlineStart | None = None
        self._live = False
        self._evicting = False
        self._divergence: NonDeterminismError | None = None
        self._fatal: BaseException | None = None
        self._host_tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[Any] | None = None
        self.delivered = 0  # journaled events (outcomes, firings) processed so far

    # -- running ------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """When the runtime cancels it (epoch seconds; None: never); continue-as-new keeps it."""
        return self._index.start.get("dl")

    @property
    def replaying(self) -> bool:
        """Whether recorded events remain to replay (for the stall watchdog's report)."""
        return not self._live and self._replay_index < len(self._index.events)

    @property
    def info(self) -> WorkflowInfo:
        return WorkflowInfo(
            workflow_id=self.workflow_id,
            workflow_name=self.spec.name,
            start_time=datetime.fromtimestamp(self.start_time, UTC),
        )

    async def execute(self) -> RunOutcome:
        """Replay, then run live until the workflow ends or only sleeps; how it stands then.

        Returns:
            Finished: the workflow returned, raised or was cancelled (now or in a recorded
                earlier run): its result, or the WorkflowFailed / WorkflowCancelled for it.
            Suspended: it only sleeps, for longer than suspend_after: resume it at wake_at.
            ContinuedAsNew: this generation ended with continue_as_new: start the next.

        Raises:
            NonDeterminismError: the code diverged from the journal; nothing was written.
            WorkflowDefinitionError: the code misused the workflow (I/O, bad arguments).
            JournalError: the journal failed; the run stops (not final: resume it).
        """
        self._host_loop = asyncio.get_running_loop()
        if self._watch is not None:
            self._watch.start()
        if self.finished is not None:
            if "cont" in self.finished:
                return ContinuedAsNew.of(self.finished, self.generation)
            return Finished.of(self.workflow_id, self.spec, self.finished, None)
        if self._index.new_start_record is not None:
            self._journal.write(self._index.new_start_record)
        main = self._start_main()
        try:
            self._replay(main)
            self._live = True
            if self._past_deadline():  # its cancellation is in the inbox: take it first
                await self.take_inbox()
            self._start_new()
            self._check_progress()
            self.request_pull()  # what was sent while it was not running
            while not main.done() and self._fatal is None:
                wake_at = self._long_sleep_until()
                if wake_at is not None:
                    await self._journal.flush()  # its timers are durable: it may go
                    wake_at = self._long_sleep_until()  # unless a message came meanwhile
                    if wake_at is not None:
                        return Suspended(wake_at, self.inbox_next)
                    continue
                self._wakeup = asyncio.get_running_loop().create_future()
                await self._wakeup
            if self._fatal is not None:
                raise self._fatal
            return await self._finish(main)
        finally:
            self._teardown()

    def _start_main(self) -> asyncio.Task[Any]:
        arguments = [
            convert(value, hint, context=f"argument {index} of workflow {self.spec.name!r}")
            for index, (value, hint) in enumerate(
                zip(
                    self.arguments,
                    _padded(self.spec.parameter_types, len(self.arguments)),
                    strict=True,
                )
            )
        ]
        try:
            coroutine = self.spec.fn(*arguments)
        except TypeError as error:  # (an async def only binds its arguments when called)
            raise WorkflowDefinitionError(
                f"workflow {self.spec.name!r} cannot take the arguments its journal "
                f"{self.workflow_id!r} recorded: {error}"
            ) from None
        main = self._main = self.loop.create_task(coroutine, name=self.workflow_id)
        return main

    def _replay(self, main: asyncio.Task[Any]) -> None:
        """Deliver the journal's events in order; raise if the code asked for other steps."""
        with collector_paused():
            self._step()
            events = self._index.events
            while self._replay_index < len(events) and not main.done():
                self._replay_index += 1  # (a recorded result taken inline moves it too)
                self._deliver(events[self._replay_index - 1])
        self._index.events = []
        unasked = self._index.unasked(self._next_step)
        if unasked is not None:
            raise unasked

    def check_replay(self) -> None:
        """Replay the whole journal against the code, writing nothing and running nothing.

        For finished workflows too: what a deploy of this code would make of every journal.

        Raises:
            NonDeterminismError: the code asks for other steps than the journal recorded, or
                for more after the journal's end, or ends another way than it recorded.
        """
        try:
            main = self._start_main()
            self._replay(main)
            end = self.finished
            if end is None:
                return
            recorded = ending_of(end)
            if not main.done():
                waiting = sorted(self._pending)
                raise NonDeterminismError(
                    workflow_id=self.workflow_id,
                    position=self._next_step - 1 if not waiting else waiting[0],
                    recorded=f"the workflow {recorded} after step {self._next_step - 1}",
                    requested=f"the code still waits for step(s) {waiting} there",
                    call_site="the workflow's last await",
                )
            now = ending_of_task(main)
            if now != recorded:
                raise NonDeterminismError(
                    workflow_id=self.workflow_id,
                    position=self._next_step,
                    recorded=f"the workflow {recorded}",
                    requested=f"the code {now}",
                    call_site="the workflow's return",
                )
        finally:
            self._teardown()

    def _past_deadline(self) -> bool:
        """Resumed after its deadline and not cancelled yet: it must start nothing new."""
        deadline = self.deadline
        return (
            deadline is not None
            and deadline <= self._clock()
            and self.cancel_reason is None
            and not self._main_done()
        )

    def _long_sleep_until(self) -> float | None:
        """When the workflow only sleeps, for longer than suspend_after: its wake-up time."""
        if (
            self._suspend_after is None
            or self._outcomes
            or self._draining
            or self._pulling
            or self._pending_activities
            or not self._pending
        ):
            return None
        wake_at = min(command.fire_at for command in self._pending.values())
        return wake_at if wake_at - self._clock() > self._suspend_after else None

    def _step(self) -> None:
        watch = self._watch
        if watch is None:
            self.loop.run_until_idle()
        else:  # (the stall watchdog's mark, written here: see StallWatch)
            watch.steps += 1
            watch.stepping = self
            try:
                self.loop.run_until_idle()
            finally:
                watch.stepping = None
        if self._divergence is not None:
            raise self._divergence
        if self._live:
            self._start_new()

    def _deliver(self, event: dict[str, Any]) -> None:
        if event["k"] in records.FROM_INBOX:
            self._deliver_message(event)
            return
        step = event["s"]
        if step >= self._next_step:
            recorded = self._recorded.get(step)
            what = recorded.description if recorded else "an outcome"
            raise NonDeterminismError(
                workflow_id=self.workflow_id,
                position=step,
                recorded=f"{what} at step {step}",
                requested=f"only {self._next_step} steps before the workflow went idle",
                call_site="the workflow's last await",
            )
        self.delivered += 1
        if self._open_children and event["k"] == records.DONE:
            self._open_children.pop(step, None)  # (a child's outcome: it has ended)
        command = self._forget(step)
        if command is None:
            return  # cancelled by the workflow before this outcome: ignored alike on replay
        self.loop.set_time(event["t"])
        if event["k"] == records.FIRED:
            assert command.handle is not None
            self.loop.fire(command.handle)
        else:
            assert command.future is not None
            assert command.spec is not None
            if not command.future.done():
                if "e" in event:
                    command.future.set_exception(
                        step_error(self.workflow_id, command.spec, command.step, event)
                    )
                else:
                    command.future.set_result(rebuild(event["r"], command.spec))
        self._step()

    def _deliver_message(self, message: dict[str, Any]) -> None:
        """An event or a cancellation from the inbox, now in the journal's order."""
        self.delivered += 1
        self.inbox_delivered = message["q"] + 1
        if message["k"] == records.SKIP:
            return  # (an undeliverable message: nothing reaches the workflow)
        self.loop.set_time(message["t"])
        if message["k"] == records.EVENT:
            step = self.events.deliver(message["n"], message.get("p"))
            if step is not None:
                self._forget(step)
        elif self.cancel_reason is None:  # the first cancel only: a repeated one (journaled
            reason = message.get("m", "cancelled")  # too) would interrupt the cleanup
            self.cancel_reason = reason
            self._timed_out = message.get("id") == records.DEADLINE_CANCEL_ID
            main = self._main
            if main is not None and not main.done():
                main.cancel(msg=reason)
        self._step()

    # Live outcomes: whoever posts one while nobody is draining drains the queue (an
    # activity's own task, inline; a timer via a new task). Draining journals a batch with one
    # sync and then delivers it in journal order, so a step costs no hop to another task.

    def _post(self, payload: bytes) -> None:
        """Queue an outcome from a callback (a timer); a task drains it."""
        self._outcomes.append(payload)
        if not self._draining:
            self._post_pending()

    async def _drain(self) -> None:
        self._draining = True
        try:
            while self._outcomes and self._fatal is None and not self._main_done():
                batch = list(self._outcomes)
                self._outcomes.clear()
                for payload in batch[:-1]:
                    self._journal.write(payload)
                await self._journal.append(batch[-1])  # one sync makes the batch durable
                for payload in batch:
                    if self._main_done():
                        break  # as on replay: nothing is delivered once the workflow returned
                    self._deliver(decode(payload, path=self.workflow_id, offset=-1))
            if not self._main_done() and self._fatal is None:
                if not self._outcomes and not self._pending_activities:
                    await self._journal.flush()  # timer records: no outcome will sync them
                self._check_progress()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # a journal failure, a divergence: the run stops
            self._fail(error)
        finally:
            self._draining = False
        if self._main_done() or self._long_sleep_until() is not None:
            self._wake()
        elif self._outcomes and self._fatal is None:
            self._post_pending()

    def _post_pending(self) -> None:
        self._draining = True  # the task drains; until it starts, nobody else may
        task = asyncio.get_running_loop().create_task(self._drain())
        self._host_tasks.add(task)
        task.add_done_callback(self._host_tasks.discard)

    def _main_done(self) -> bool:
        return self._main is not None and self._main.done()

    def _check_progress(self) -> None:
        """Fail a workflow that waits on nothing that could ever wake it."""
        if not self._pending and not self._outcomes and not self._main_done():
            self._fail(
                WorkflowDefinitionError(
                    f"workflow {self.workflow_id!r} is waiting on something that is not an "
                    "activity, a timer or one of its own tasks, so it can never resume: await "
                    "only activities, durable.sleep / asyncio.sleep and tasks of the workflow"
                )
            )
        elif self._outcomes and not self._draining:
            self._post_pending()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._wake()

    async def _finish(self, main: asyncio.Task[Any]) -> Finished | ContinuedAsNew:
        if main.cancelled():
            reason = self.cancel_reason
            if reason is None:  # ("" is a reason the canceller gave)
                reason = "the workflow cancelled itself"
            error: BaseException = asyncio.CancelledError(reason)
        else:
            error_or_none = main.exception()
            if error_or_none is None:
                try:
                    payload = encode(
                        records.end_result(main.result(), self._clock()),
                        context=f"the result of workflow {self.spec.name!r}",
                    )
                except SerializationError as unencodable:
                    error_or_none = unencodable  # a final failure, like any other
                else:
                    await self._end_children("returned")
                    await self._journal.append(payload)
                    end = decode(payload, path=self.workflow_id, offset=-1)
                    return Finished.of(self.workflow_id, self.spec, end, None)
            elif isinstance(error_or_none, ContinueAsNew):
                continued = records.end_continued(
                    error_or_none.arguments, self.inbox_delivered, self.events.kept(), self._clock()
                )
                payload = encode(continued, context="the arguments of continue_as_new")
                await self._end_children("continued as new")  # (as Temporal: per generation)
                await self._journal.append(payload)
                end = decode(payload, path=self.workflow_id, offset=-1)
                return ContinuedAsNew.of(end, self.generation)
            error = error_or_none
        if isinstance(error, _Diverged | _Evicted):
            raise self._divergence or error
        if isinstance(error, WorkflowDefinitionError):
            raise error  # misuse (I/O in workflow code): fix the code and run again; not final
        cancelled = main.cancelled()
        timed_out = cancelled and self._timed_out
        end = end_of_failure(error, cancelled=cancelled, now=self._clock(), timed_out=timed_out)
        await self._end_children("was cancelled" if cancelled else "failed")
        await self._journal.append(encode(end))
        return Finished.of(self.workflow_id, self.spec, end, error)

    # -- commands from workflow code -------------------------------------------------------

    def _new_step(self, kind: str, name: str, digest: str, when: float = 0.0) -> int:
        if self._evicting:
            raise _Evicted()
        step = self._next_step
        self._next_step += 1
        recorded = self._recorded.get(step)
        if recorded is not None and (
            recorded.kind != kind or recorded.name != name or recorded.digest != digest
        ):
            requested = RecordedStep(kind, name, digest, fire_at=when).description
            if self._divergence is None:  # the first divergence is the one to report
                self._divergence = NonDeterminismError(
                    workflow_id=self.workflow_id,
                    position=step,
                    recorded=recorded.description,
                    requested=requested,
                    call_site=user_call_site(),
                )
            raise _Diverged()
        return step

    def request_activity(
        self, spec: ActivitySpec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any] | RecordedOutcome:
        """Called from workflow code: a future for the outcome of the next step, or the outcome.

        The outcome itself comes back (no future, no suspension) when replay would deliver
        it right after this call anyway: the next recorded event is this step's outcome and
        nothing else in the workflow is ready to run, so the loop would go idle at once.
        Sequential replay then runs without a task switch per step; the decisions are the
        same, since no other workflow code could run in between.
        """
        encoded = encode([list(args), kwargs], context="its arguments", activity=spec.name)
        digest = digest_of(encoded)
        step = self._new_step("activity", spec.name, digest)
        recorded = self._recorded_outcome_now(step, spec)
        if recorded is not None:
            return recorded
        future = CommandFuture(loop=self.loop, step=step, on_cancel=self.command_cancelled)
        command = Command(step, future, None, spec=spec, arguments=encoded, digest=digest)
        self._pending[step] = command
        self._pending_activities += 1
        self._new.append(command)
        return future

    def _recorded_outcome_now(self, step: int, spec: ActivitySpec) -> RecordedOutcome | None:
        index = self._replay_index
        if self._live or index >= len(self._index.events) or self.loop.has_ready():
            return None
        event = self._index.events[index]
        if event["k"] != records.DONE or event["s"] != step:  # (inbox records have no step)
            return None
        task = asyncio.current_task(self.loop)
        if task is None or task.cancelling():
            return None  # a pending cancellation is delivered at the suspension we skip
        self._replay_index = index + 1
        self.delivered += 1
        self.loop.set_time(event["t"])
        if "e" in event:
            return RecordedOutcome(None, step_error(self.workflow_id, spec, step, event))
        return RecordedOutcome(rebuild(event["r"], spec), None)

    def timer_requested(self, handle: StepTimer) -> None:
        step = self._new_step("timer", "", "", when=handle.when())
        command = Command(step, None, handle)
        handle.step = step
        self._pending[step] = command
        self._new.append(command)

    def timer_cancelled(self, handle: StepTimer) -> None:
        command = self._forget(handle.step)
        if command is None:
            return
        recorded = self._recorded.get(handle.step)
        if command.host is not None or recorded is not None:  # its timer record exists
            self._note_cancelled(records.timer(handle.step, command.fire_at))
        if command.host is not None:
            command.host.cancel()

    def _note_cancelled(self, record: records.TimerRecord | records.WaitRecord) -> None:
        """Journal that the code let go of a timer or a wait (for readers: describe)."""
        recorded = self._recorded.get(record["s"])
        if self._evicting or (recorded is not None and recorded.cancelled):
            return  # unloading is not the code letting go; or the journal says so already
        self._deferred.append(encode(records.let_go(record)))

    def _forget(self, step: int) -> Command | None:
        command = self._pending.pop(step, None)
        if command is not None and command.spec is not None:
            self._pending_activities -= 1
        return command

    def command_cancelled(self, step: int) -> None:
        """Workflow code cancelled the wait for `step`: stop its activity, forget it."""
        command = self._forget(step)
        if command is None:
            return
        if command.event is not None:
            self.events.forget(command.event, step)
            self._note_cancelled(records.wait(step, command.event))
        recorded = self._recorded.get(step)
        if command.child is not None and not self._evicting and not (recorded and recorded.outcome):
            self.cancel_child(command, f"its parent {self.workflow_id!r} was cancelled")
        if command.host is not None:
            command.host.cancel()


def current_run() -> WorkflowRun | None:
    """The workflow whose code is running now, or None outside workflow code."""
    loop = running_loop()
    if isinstance(loop, WorkflowLoop):
        return loop.owner  # type: ignore[return-value]
    return None


def _padded(types: tuple[Any, ...], count: int) -> list[Any]:
    return [*types[:count], *([Any] * (count - len(types)))]
