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
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._encoding import convert, decode, encode
from .._errors import (
    ActivityError,
    DurableError,
    InDoubtError,
    JournalCorrupted,
    NonDeterminismError,
    UnsupportedJournalFormat,
    WorkflowDefinitionError,
    WorkflowFailed,
)
from .._storage._interface import Journal
from . import _records as records
from ._activity_run import in_doubt_outcome, run_activity
from ._context import WorkflowInfo, user_call_site
from ._loop import StepTimer, TimerScheduler, WorkflowLoop
from ._specs import ActivitySpec, WorkflowSpec

logger = logging.getLogger("durable")


class _Evicted(BaseException):
    """Unwinds workflow code that asks for work while its run is being torn down."""


class _Diverged(BaseException):
    """Unwinds workflow code at a non-deterministic call; user code cannot catch it."""


@dataclass
class _Command:
    """A step the code asked for and whose outcome is not delivered yet."""

    step: int
    description: str
    future: asyncio.Future[Any] | None = None  # activities
    handle: asyncio.TimerHandle | None = None  # timers
    spec: ActivitySpec | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    host: asyncio.Task[bytes] | asyncio.TimerHandle | None = None


@dataclass
class _Recorded:
    """What the journal holds about one step, gathered before replay starts."""

    description: str
    kind: str  # "activity" or "timer"
    name: str = ""
    digest: str = ""
    fire_at: float = 0.0
    attempt: int = 0  # of the last "sched" / "retry"
    retry_at: float | None = None  # set when the last record is a "retry"
    outcome: bool = False


def digest_of(encoded_arguments: bytes) -> str:
    return hashlib.blake2b(encoded_arguments, digest_size=8).hexdigest()


def _activity_description(name: str, digest: str) -> str:
    return f"activity {name!r} (arguments digest {digest})"


class WorkflowRun(TimerScheduler):
    """One execution of one workflow over its journal (replay, then live)."""

    def __init__(
        self,
        *,
        spec: WorkflowSpec,
        workflow_id: str,
        journal: Journal,
        arguments: list[Any] | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepare a run; `arguments` is None when resuming from the journal's start record.

        Raises:
            JournalCorrupted: a record is not one this version understands.
            UnsupportedJournalFormat: the journal was written by a newer durable.
            WorkflowDefinitionError: the journal belongs to another workflow.
        """
        self.spec = spec
        self.workflow_id = workflow_id
        self._journal = journal
        self._clock = clock
        self._decoded = [
            (stored.offset, decode(stored.payload, path=workflow_id, offset=stored.offset))
            for stored in journal.records
        ]
        start = self._read_start(arguments)
        self.start_time: float = start["t"]
        self.random = random.Random(start["seed"])
        self.arguments: list[Any] = start["args"]
        self.finished: dict[str, Any] | None = None
        self._recorded: dict[int, _Recorded] = {}
        self._replay_events: list[dict[str, Any]] = []
        self._index_journal()
        self.loop = WorkflowLoop(  # type: ignore[abstract]  # (I/O methods: not for workflows)
            start_time=self.start_time, scheduler=self, owner=self
        )
        self._next_step = 0
        self._pending: dict[int, _Command] = {}
        self._new: list[_Command] = []
        self._outcomes: collections.deque[bytes] = collections.deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._live = False
        self._evicting = False
        self._divergence: NonDeterminismError | None = None
        self._fatal: BaseException | None = None
        self._host_tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[Any] | None = None
        self.delivered = 0  # journaled events (outcomes, firings) processed so far

    # -- reading the journal ---------------------------------------------------------------

    def _read_start(self, arguments: list[Any] | None) -> dict[str, Any]:
        if self._decoded:
            offset, start = self._decoded[0]
            if not isinstance(start, dict) or start.get("k") != records.START:
                raise JournalCorrupted(
                    path=self.workflow_id,
                    offset=offset,
                    reason="the first record is not a workflow start record",
                )
            version = start.get("v")
            if not isinstance(version, int) or version > records.FORMAT_VERSION:
                raise UnsupportedJournalFormat(
                    path=self.workflow_id,
                    found=version if isinstance(version, int) else -1,
                    supported=records.FORMAT_VERSION,
                )
            if start.get("wf") != self.spec.name:
                raise WorkflowDefinitionError(
                    f"workflow id {self.workflow_id!r} belongs to workflow "
                    f"{start.get('wf')!r}, not {self.spec.name!r}: use another id"
                )
            return start
        if arguments is None:
            raise JournalCorrupted(
                path=self.workflow_id, offset=0, reason="the journal has no start record"
            )
        start = {
            "k": records.START,
            "v": records.FORMAT_VERSION,
            "wf": self.spec.name,
            "id": self.workflow_id,
            "args": arguments,
            "t": self._clock(),
            "seed": random.SystemRandom().getrandbits(63),
        }
        self._start_record = encode(start, context=f"the arguments of workflow {self.spec.name!r}")
        return decode(self._start_record, path=self.workflow_id, offset=0)  # type: ignore[no-any-return]

    def _index_journal(self) -> None:
        for offset, record in self._decoded[1:]:
            kind = record.get("k") if isinstance(record, dict) else None
            step = record.get("s") if isinstance(record, dict) else None
            if kind == records.END:
                self.finished = record
                continue
            if kind not in records.KNOWN or not isinstance(step, int):
                raise JournalCorrupted(
                    path=self.workflow_id,
                    offset=offset,
                    reason=f"unknown record {str(record)[:80]!r} (written by a newer durable?)",
                )
            recorded = self._recorded.get(step)
            if kind == records.SCHEDULED:
                if recorded is None:
                    recorded = self._recorded[step] = _Recorded(
                        description=_activity_description(record["a"], record["d"]),
                        kind="activity",
                        name=record["a"],
                        digest=record["d"],
                    )
                recorded.attempt, recorded.retry_at = record["n"], None
            elif kind == records.RETRY and recorded is not None:
                recorded.attempt, recorded.retry_at = record["n"], record["at"]
            elif kind == records.TIMER:
                self._recorded[step] = _Recorded(
                    description=f"a timer firing at {_iso(record['at'])}",
                    kind="timer",
                    fire_at=record["at"],
                )
            elif kind in records.DELIVERED:
                if recorded is not None:
                    recorded.outcome = True
                self._replay_events.append(record)

    # -- running ------------------------------------------------------------------------

    @property
    def info(self) -> WorkflowInfo:
        return WorkflowInfo(
            workflow_id=self.workflow_id,
            workflow_name=self.spec.name,
            start_time=datetime.fromtimestamp(self.start_time, UTC),
        )

    async def execute(self) -> Any:
        """Replay, then run live until the workflow returns; the recorded outcome.

        Raises:
            WorkflowFailed: the workflow raised (now or in a recorded earlier run).
            NonDeterminismError: the code diverged from the journal; nothing was written.
        """
        if self.finished is not None:
            return self._outcome(self.finished, None)
        if not self._decoded:
            self._journal.write(self._start_record)
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
        main = self._main = self.loop.create_task(self.spec.fn(*arguments), name=self.workflow_id)
        try:
            self._step()
            for event in self._replay_events:
                if main.done():
                    break
                self._deliver(event)
            self._replay_events = []
            self._live = True
            self._start_new()
            while not main.done():
                await self._flush_if_only_sleeping()
                await self._next_outcomes()
            return await self._finish(main)
        finally:
            self._teardown()

    def _step(self) -> None:
        self.loop.run_until_idle()
        if self._divergence is not None:
            raise self._divergence
        if self._live:
            self._start_new()

    def _deliver(self, event: dict[str, Any]) -> None:
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
        command = self._pending.pop(step, None)
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
                    command.future.set_exception(self._activity_error(command, event))
                else:
                    command.future.set_result(
                        convert(
                            event["r"],
                            command.spec.return_type,
                            context=f"the result of activity {command.spec.name!r}",
                        )
                    )
        self._step()

    def _activity_error(self, command: _Command, event: dict[str, Any]) -> DurableError:
        assert command.spec is not None
        error = event["e"]
        if error.get("kind") == "in-doubt":
            return InDoubtError(
                workflow_id=self.workflow_id, activity=command.spec.name, position=command.step
            )
        return ActivityError(
            workflow_id=self.workflow_id,
            activity=command.spec.name,
            attempts=event.get("n", 0),
            error_type=error["type"],
            message=error["msg"],
            traceback=error.get("tb", ""),
        )

    async def _next_outcomes(self) -> None:
        if not self._outcomes:
            if not self._pending and self._fatal is None:
                raise WorkflowDefinitionError(
                    f"workflow {self.workflow_id!r} is waiting on something that is not an "
                    "activity, a timer or one of its own tasks, so it can never resume: await "
                    "only activities, durable.sleep / asyncio.sleep and tasks of the workflow"
                )
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        if self._fatal is not None:
            raise self._fatal
        batch = list(self._outcomes)
        self._outcomes.clear()
        for payload in batch[:-1]:
            self._journal.write(payload)
        await self._journal.append(batch[-1])  # one sync makes the whole batch durable
        for payload in batch:
            if self._main is not None and self._main.done():
                break  # as on replay: nothing is delivered once the workflow returned
            self._deliver(decode(payload, path=self.workflow_id, offset=-1))

    def _post(self, payload: bytes) -> None:
        self._outcomes.append(payload)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _flush_if_only_sleeping(self) -> None:
        """Sync timer records now when no activity outcome will sync them soon."""
        if not self._outcomes and all(c.spec is None for c in self._pending.values()):
            await self._journal.flush()

    async def _finish(self, main: asyncio.Task[Any]) -> Any:
        if main.cancelled():
            error: BaseException = asyncio.CancelledError("the workflow cancelled itself")
        else:
            error_or_none = main.exception()
            if error_or_none is None:
                payload = encode(
                    {"k": records.END, "r": main.result(), "t": self._clock()},
                    context=f"the result of workflow {self.spec.name!r}",
                )
                await self._journal.append(payload)
                return self._outcome(decode(payload, path=self.workflow_id, offset=-1), None)
            error = error_or_none
        if isinstance(error, _Diverged | _Evicted):
            raise self._divergence or error
        described = records.describe_error(error)
        await self._journal.append(encode({"k": records.END, "e": described, "t": self._clock()}))
        return self._outcome({"e": described}, error)

    def _outcome(self, end: dict[str, Any], cause: BaseException | None) -> Any:
        if "e" in end:
            error = end["e"]
            failed = WorkflowFailed(
                workflow_id=self.workflow_id,
                error_type=error["type"],
                message=error["msg"],
                traceback=error.get("tb", ""),
            )
            raise failed from cause
        return convert(
            end["r"], self.spec.return_type, context=f"the result of workflow {self.spec.name!r}"
        )

    def _teardown(self) -> None:
        """Stop what this run started: host tasks and timers, then the workflow's own tasks."""
        self._evicting = True
        for command in self._pending.values():
            if command.host is not None:
                command.host.cancel()
        for task in self._host_tasks:
            task.cancel()
        leftovers = asyncio.all_tasks(self.loop)
        if self._main is not None:
            leftovers.add(self._main)
        for task in leftovers:
            task.cancel()
        for _ in range(3):  # let them unwind (finally blocks); they cannot start new work
            if not any(not task.done() for task in leftovers):
                break
            self.loop.run_until_idle()
        for task in leftovers:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: an unwinding error is not "never retrieved"
        self.loop.close()

    # -- commands from workflow code -------------------------------------------------------

    def _new_step(self, description: str, kind: str, name: str = "", digest: str = "") -> int:
        if self._evicting:
            raise _Evicted()
        step = self._next_step
        self._next_step += 1
        recorded = self._recorded.get(step)
        if recorded is not None and (
            recorded.kind != kind or recorded.name != name or recorded.digest != digest
        ):
            self._divergence = NonDeterminismError(
                workflow_id=self.workflow_id,
                position=step,
                recorded=recorded.description,
                requested=description,
                call_site=user_call_site(),
            )
            raise _Diverged()
        return step

    def request_activity(
        self, spec: ActivitySpec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        """Called from workflow code: a future for the activity's outcome at the next step."""
        encoded = encode(
            [list(args), kwargs],
            context=f"the arguments of activity {spec.name!r}",
            activity=spec.name,
        )
        digest = digest_of(encoded)
        step = self._new_step(
            _activity_description(spec.name, digest), "activity", spec.name, digest
        )
        future: asyncio.Future[Any] = self.loop.create_future()
        command = _Command(
            step=step,
            description=spec.name,
            future=future,
            spec=spec,
            args=list(args),
            kwargs=dict(kwargs),
            digest=digest,
        )
        self._pending[step] = command
        future.add_done_callback(lambda done: self._cancelled(command, done))
        self._new.append(command)
        return future

    def timer_requested(self, handle: StepTimer) -> None:
        when = handle.when()
        step = self._new_step(f"a timer firing at {_iso(when)}", "timer")
        command = _Command(step=step, description="timer", handle=handle)
        handle.step = step
        self._pending[step] = command
        self._new.append(command)

    def timer_cancelled(self, handle: StepTimer) -> None:
        command = self._pending.pop(handle.step, None)
        if command is not None and command.host is not None:
            command.host.cancel()

    def _cancelled(self, command: _Command, future: asyncio.Future[Any]) -> None:
        if future.cancelled() and self._pending.get(command.step) is command:
            del self._pending[command.step]
            if command.host is not None:
                command.host.cancel()

    def _start_new(self) -> None:
        """Start, on the host loop, the commands the journal has no outcome for."""
        new, self._new = self._new, []
        for command in new:
            if self._pending.get(command.step) is not command:
                continue  # cancelled before it started
            recorded = self._recorded.get(command.step)
            if recorded is not None and recorded.outcome:
                continue  # delivered from the journal
            if command.handle is not None:
                self._arm_timer(command, recorded)
            else:
                self._start_activity(command, recorded)

    def _arm_timer(self, command: _Command, recorded: _Recorded | None) -> None:
        assert command.handle is not None
        if recorded is not None:
            fire_at = recorded.fire_at  # the original time: a restart does not extend a sleep
        else:
            fire_at = command.handle.when()
            self._journal.write(encode({"k": records.TIMER, "s": command.step, "at": fire_at}))
        host = asyncio.get_running_loop()
        step = command.step
        command.host = host.call_later(
            max(0.0, fire_at - self._clock()),
            lambda: self._post(
                encode({"k": records.FIRED, "s": step, "t": max(self._clock(), fire_at)})
            ),
        )

    def _start_activity(self, command: _Command, recorded: _Recorded | None) -> None:
        spec = command.spec
        assert spec is not None
        first_attempt, start_at = 1, None
        if recorded is not None and recorded.attempt:
            if recorded.retry_at is not None:
                first_attempt, start_at = recorded.attempt + 1, recorded.retry_at
            elif spec.at_most_once:
                self._post(in_doubt_outcome(command.step))
                return
            else:
                first_attempt = recorded.attempt  # in doubt: the same attempt runs again
        task = asyncio.get_running_loop().create_task(
            run_activity(
                spec=spec,
                workflow_id=self.workflow_id,
                step=command.step,
                digest=command.digest,
                args=command.args,
                kwargs=command.kwargs,
                journal=self._journal,
                first_attempt=first_attempt,
                start_at=start_at,
                sleep_until=self._sleep_until,
            ),
            name=f"{self.workflow_id}/{command.step} {spec.name}",
        )
        command.host = task
        self._host_tasks.add(task)
        task.add_done_callback(self._activity_finished)

    def _activity_finished(self, task: asyncio.Task[bytes]) -> None:
        self._host_tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._fail(error)  # the journal failed: the run cannot go on
        else:
            self._post(task.result())

    async def _sleep_until(self, when: float) -> None:
        delay = when - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)


def _padded(types: tuple[Any, ...], count: int) -> list[Any]:
    return [*types[:count], *([Any] * (count - len(types)))]


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
