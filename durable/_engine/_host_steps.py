"""Starting steps on the host loop: timers, activities and children the journal has no outcome for.

Runs only live. A timer becomes a host `call_later` at its recorded (or new) fire time; an
activity a task with its retry policy, or, when a drain is running, the next activity that
task runs inline; its outcome is queued for the driver to journal and deliver. A mixin of
WorkflowRun, kept apart so each module has one job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .._encoding import convert, decode, encode
from . import _records as records
from ._activity_run import in_doubt_outcome, run_activity
from ._steps import Command, InlineStart

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._storage._interface import Journal
    from ._clock import Clock
    from ._replay import RecordedStep
    from ._specs import ActivitySpec


class HostSteps:
    """The live side of WorkflowRun: what runs on the host loop for each new step."""

    if TYPE_CHECKING:  # provided by WorkflowRun
        workflow_id: str
        generation: int
        _journal: Journal
        _clock: Callable[[], float]
        _timers: Clock
        _substitute: Callable[[ActivitySpec], ActivitySpec] | None
        _clock_waits: int
        _killed: bool
        _deferred: list[bytes]
        _new: list[Command]
        _pending: dict[int, Command]
        _recorded: dict[int, RecordedStep]
        _stopping: bool
        _inline_open: bool
        _inline: InlineStart | None
        _outcomes: Any
        _draining: bool
        _host_tasks: set[asyncio.Task[Any]]

        def _post(self, payload: bytes) -> None: ...
        def _fail(self, error: BaseException) -> None: ...
        async def _drain(self) -> None: ...
        def _start_child(self, command: Command) -> None: ...

    def _start_new(self) -> None:
        """Start, on the host loop, the commands the journal has no outcome for."""
        if self._deferred:  # bookkeeping of the steps taken since (waits, status, patches)
            deferred, self._deferred = self._deferred, []
            for record in deferred:
                self._journal.write(record)
        new, self._new = self._new, []
        for command in new:
            if self._pending.get(command.step) is not command:
                continue  # cancelled before it started
            recorded = self._recorded.get(command.step)
            if recorded is not None and recorded.outcome:
                continue  # delivered from the journal
            if command.handle is not None:
                self._arm_timer(command, recorded)
            elif command.event is not None or self._stopping:
                continue  # an event wait has nothing to start; a closing runtime starts none
            elif command.child is not None:
                self._start_child(command)
            else:
                self._start_activity(command, recorded)

    def _arm_timer(self, command: Command, recorded: RecordedStep | None) -> None:
        assert command.handle is not None
        if recorded is not None:
            fire_at = recorded.fire_at  # the original time: a restart does not extend a sleep
        else:
            fire_at = command.handle.when()
            self._journal.write(encode(records.timer(command.step, fire_at)))
        step = command.step
        command.fire_at = fire_at
        command.host = self._timers.call_at(
            fire_at,
            lambda: self._post(encode(records.fired(step, max(self._clock(), fire_at)))),
        )

    def _start_activity(self, command: Command, recorded: RecordedStep | None) -> None:
        spec = command.spec
        assert spec is not None
        if self._substitute is not None:
            spec = self._substitute(spec)
        first_attempt, start_at = 1, None
        if recorded is not None and recorded.attempt:
            if recorded.retry_at is not None:
                first_attempt, start_at = recorded.attempt + 1, recorded.retry_at
            elif spec.at_most_once:
                self._post(in_doubt_outcome(command.step, spec, command.digest, self._clock()))
                return
            else:
                first_attempt = recorded.attempt  # in doubt: the same attempt runs again
        args, kwargs = self._arguments_of(command)
        attempts = run_activity(
            spec=spec,
            workflow_id=self.workflow_id,
            generation=self.generation,
            step=command.step,
            digest=command.digest,
            args=args,
            kwargs=kwargs,
            journal=self._journal,
            first_attempt=first_attempt,
            start_at=start_at,
            sleep_until=self._sleep_until,
            now=self._clock,
        )
        if self._inline_open and self._inline is None:
            command.host = self._inline = InlineStart(command.step, attempts)
            return
        task = asyncio.get_running_loop().create_task(
            self._run_and_post(command.step, attempts),
            name=f"{self.workflow_id}/{command.step} {spec.name}",
        )
        # A task cancelled before its first step never awaits `attempts`: close it then
        # (closing a finished coroutine does nothing).
        task.add_done_callback(lambda _: attempts.close())
        command.host = task
        self._host_tasks.add(task)

    def _arguments_of(self, command: Command) -> tuple[list[Any], dict[str, Any]]:
        """A copy of the call's arguments, as a replay would see them (decoded, rebuilt).

        The activity must not share objects with workflow code: a mutation on either side
        would make the live run differ from a replay.
        """
        spec = command.spec
        assert spec is not None
        args, kwargs = decode(command.arguments, path=self.workflow_id, offset=-1)
        context = f"an argument of activity {spec.name!r}"
        types = spec.parameter_types
        args = [
            convert(value, types[index] if index < len(types) else Any, context=context)
            for index, value in enumerate(args)
        ]
        by_name = spec.keyword_types or {}
        kwargs = {
            name: convert(value, by_name.get(name, Any), context=context)
            for name, value in kwargs.items()
        }
        return args, kwargs

    async def _run_and_post(self, step: int, attempts: Coroutine[Any, Any, bytes]) -> None:
        """Run an activity, queue its outcome, drain; then run inline the next one it started.

        Running the activity the drain just started in this same task, instead of a new one,
        saves a loop iteration per step of a sequential workflow.
        """
        task = asyncio.current_task()
        try:
            while True:
                try:
                    payload = await attempts
                except asyncio.CancelledError:
                    raise
                except BaseException as error:
                    self._fail(error)  # the journal failed (or a bug): the run cannot go on
                    if self._killed:
                        return  # a simulated crash: the run knows; nobody awaits this task
                    raise
                command = self._pending.get(step)
                if command is not None and command.host is task:
                    command.host = None  # done: cancelling the step must not cancel the drain
                self._outcomes.append(payload)
                if self._draining:
                    return
                self._inline_open = True
                try:
                    await self._drain()
                finally:
                    self._inline_open = False
                queued, self._inline = self._inline, None
                if queued is None or queued.cancelled:
                    return
                step, attempts = queued.step, queued.coroutine
                command = self._pending.get(step)
                if command is None:
                    attempts.close()
                    return
                command.host = task
        finally:
            if task is not None:
                self._host_tasks.discard(task)  # (teardown cancels the ones still listed)

    async def _sleep_until(self, when: float) -> None:
        """A retry's back-off: on the runtime's clock (counted: the run is idle meanwhile)."""
        self._clock_waits += 1
        try:
            await self._timers.sleep_until(when)
        finally:
            self._clock_waits -= 1
