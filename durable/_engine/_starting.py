"""Starting a live run's new steps on the host loop: activities, timers, children.

A part of WorkflowRun (its `_starter`). Once the code has asked for steps and the journal
has no outcome for them, this starts each where it runs: an activity's attempts
(`run_activity`) in a host task, in the task that drains (`Drain.inline`), or at once inside
the drain (`Drain.run_now`); a timer on the runtime's clock; a child through the run's
ChildSteps. Outcomes go back through the two callables the run gives it: `post` (queue an
outcome from a callback) and `drain` (journal and deliver what is queued, in this task).
It knows nothing of replay or of what the workflow's code does with an outcome.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any

from .._encoding import PlainPacker, encode
from .._storage._interface import Journal
from . import _records as records
from ._activity_run import Outcome, call_arguments, in_doubt_outcome, run_activity
from ._child_steps import ChildSteps
from ._clock import Clock
from ._drain import Drain
from ._in_flight import StepsInFlight
from ._lifecycle import Lifecycle
from ._observer import Observing, RunObserver
from ._replay import RecordedStep
from ._specs import ActivitySpec
from ._steps import Command


class StepStarter:
    """Starts the new steps of a live run on the host loop; runs activities inline."""

    __slots__ = (
        "_children",
        "_clock",
        "_drain",
        "_drain_outcomes",
        "_generation",
        "_journal",
        "_life",
        "_observing",
        "_packer",
        "_post",
        "_steps",
        "_substitute",
        "_workflow_id",
    )

    def __init__(
        self,
        *,
        workflow_id: str,
        generation: int,
        journal: Journal,
        clock: Clock,
        packer: PlainPacker,
        steps: StepsInFlight,
        life: Lifecycle,
        drain: Drain,
        children: ChildSteps,
        observing: Observing | None,
        substitute: Callable[[ActivitySpec], ActivitySpec] | None,
        post: Callable[[bytes], None],
        drain_outcomes: Callable[[], Awaitable[None]],
    ) -> None:
        """`post` queues an outcome (and has it drained); `drain_outcomes` drains, here."""
        self._workflow_id = workflow_id
        self._generation = generation  # (of the activity's info)
        self._journal = journal
        self._clock = clock
        self._packer = packer
        self._steps = steps
        self._life = life
        self._drain = drain
        self._children = children
        self._observing = observing
        self._substitute = substitute  # durable.testing's mocks: what runs for an activity
        self._post = post
        self._drain_outcomes = drain_outcomes

    def detach(self) -> None:
        """Its run was torn down: an outcome that comes late goes nowhere.

        Drops the run's methods it holds, so that the run is freed once unreferenced,
        not by a pass of the cyclic collector (see WorkflowRun._teardown).
        """
        self._post = _dropped
        self._drain_outcomes = _drained

    def start_new(self) -> None:
        """Start, on the host loop, the commands the journal has no outcome for."""
        steps = self._steps
        pending = steps.pending
        recorded_steps = steps.recorded
        observing = self._observing
        observed = observing.run if observing is not None else None
        for command in steps.take_new():
            if pending.get(command.step) is not command:
                continue  # cancelled before it started
            recorded = recorded_steps.get(command.step)
            if recorded is not None and recorded.outcome:
                continue  # delivered from the journal
            if observed is not None and not (command.event is not None or self._life.stopping):
                command.scope = observed.step_began(*_step_kind(command))
            if command.handle is not None:
                self._arm_timer(command, recorded)
            elif command.event is not None or self._life.stopping:
                continue  # an event wait has nothing to start; a closing runtime starts none
            elif command.child is not None:
                self._start_child(command, recorded is not None)
            else:
                self._start_activity(command, recorded, observed)

    def _arm_timer(self, command: Command, recorded: RecordedStep | None) -> None:
        assert command.handle is not None
        if recorded is not None:
            fire_at = recorded.fire_at  # the original time: a restart does not extend a sleep
        else:
            fire_at = command.handle.when()
            self._journal.write(encode(records.timer(command.step, fire_at, command.site)))
        step = command.step
        command.fire_at = fire_at
        command.host = self._clock.call_at(
            fire_at,
            lambda: self._post(encode(records.fired(step, max(self._clock.time(), fire_at)))),
        )

    def _start_activity(
        self, command: Command, recorded: RecordedStep | None, observed: RunObserver | None
    ) -> None:
        called = spec = command.spec
        assert called is not None
        assert spec is not None
        if self._substitute is not None:
            spec = self._substitute(spec)
        first_attempt, start_at = 1, None
        if recorded is not None and recorded.attempt:
            if recorded.retry_at is not None:
                first_attempt, start_at = recorded.attempt + 1, recorded.retry_at
            elif spec.at_most_once:
                self._post(in_doubt_outcome(command.step, spec, command.digest, self._clock.time()))
                return
            else:
                first_attempt = recorded.attempt  # in doubt: the same attempt runs again
        args: Sequence[Any]
        if command.call is not None:
            args, kwargs = command.call
        else:
            args, kwargs = call_arguments(called, command.arguments, self._workflow_id)
        attempts = run_activity(
            spec=spec,
            workflow_id=self._workflow_id,
            generation=self._generation,
            step=command.step,
            digest=command.digest,
            args=args,
            kwargs=kwargs,
            journal=self._journal,
            first_attempt=first_attempt,
            start_at=start_at,
            sleep_until=self._sleep_until,
            now=self._clock.time,
            packer=self._packer,
            site=command.site,
            observer=observed,
        )
        drain = self._drain
        if drain.run_now and drain.inline is None:
            drain.run_now = False
            self._run_now(command, attempts)
            return
        inline = drain.run_inline(command.step, attempts)
        if inline is not None:
            command.host = inline
            return
        # A task cancelled before its first step never awaits `attempts`: close it then
        # (closing a finished coroutine does nothing).
        command.host = self._life.spawn(
            self._run_and_post(command.step, attempts),
            f"{self._workflow_id}/{command.step} {spec.name}",
            lambda _: attempts.close(),
        )

    def _start_child(self, command: Command, recorded: bool) -> None:
        assert command.child is not None
        if command.scope is not None:  # (the child's run is the child of this step's span)
            command.child.trace = command.scope.carrier()
        outcome = self._children.start(command, recorded=recorded)
        command.host = self._life.spawn(
            self._run_and_post(command.step, _without_record(outcome)),
            f"{self._workflow_id}/{command.step} child {command.child.workflow_id}",
            lambda _: outcome.close(),  # (as for activities: if it never started)
        )

    def _run_now(self, command: Command, attempts: Coroutine[Any, Any, Outcome]) -> None:
        """Run an activity now, in the activity task that drains (Drain.run_now).

        That task would run it right after this drain (see _run_and_post), with nothing
        between: here it runs first, and its outcome, if it returns without suspending, is
        queued for this same drain to journal and deliver next; its record is the one it
        would have been. One that suspends goes on in that task after the drain (`inline`),
        in the context it started in (a copy of the run's host context, one per activity).

        Raises:
            BaseException: what the attempts raised (a failed journal, a simulated crash):
                the run stops with it (life.fail), and this drain with it.
        """
        context = self._host_context_copy()
        try:
            suspended = context.run(attempts.send, None)
        except StopIteration as returned:
            payload, record = returned.value
            self._drain.post(payload, record)  # (this drain takes it next)
            return
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._life.fail(error)  # the journal failed (or a bug): the run cannot go on
            raise
        command.host = self._drain.run_inline(command.step, _going_on(context, attempts, suspended))

    def _host_context_copy(self) -> contextvars.Context:
        context = self._life.context
        assert context is not None  # (set as execute() starts)
        return context.copy()

    async def _run_and_post(self, step: int, attempts: Coroutine[Any, Any, Outcome]) -> None:
        """Run an activity, queue its outcome, drain; then run inline the next one it started.

        Running the activity the drain just started in this same task, instead of a new one,
        saves a loop iteration per step of a sequential workflow.
        """
        task = asyncio.current_task()
        drain, life = self._drain, self._life
        pending = self._steps.pending
        try:
            while True:
                try:
                    payload, record = await attempts
                except asyncio.CancelledError:
                    raise
                except BaseException as error:
                    life.fail(error)  # the journal failed (or a bug): the run cannot go on
                    if life.killed:
                        return  # a simulated crash: the run knows; nobody awaits this task
                    raise
                command = pending.get(step)
                if command is not None and command.host is task:
                    command.host = None  # done: cancelling the step must not cancel the drain
                if not drain.post(payload, record):
                    return  # another task drains: it takes this outcome too
                drain.inline_open = True
                try:
                    await self._drain_outcomes()
                finally:
                    drain.inline_open = False
                queued = drain.take_inline()
                if queued is None or queued.cancelled:
                    return
                step, attempts = queued.step, queued.coroutine
                command = pending.get(step)
                if command is None:
                    attempts.close()
                    return
                command.host = task
        finally:
            if task is not None:
                life.untrack(task)  # (teardown cancels the ones still tracked)

    async def _sleep_until(self, when: float) -> None:
        """A retry's back-off: on the runtime's clock (counted: the run is idle meanwhile)."""
        await self._steps.back_off(self._clock.sleep_until(when))


def _step_kind(command: Command) -> tuple[int, str, str]:
    """(step, kind, name) of a command, as its observer is told."""
    if command.handle is not None:
        return command.step, "timer", ""
    if command.child is not None:
        assert command.spec is not None
        return command.step, "child", command.spec.name.removeprefix(records.CHILD_PREFIX)
    assert command.spec is not None
    return command.step, "activity", command.spec.name


class _GoingOn(Coroutine[Any, Any, Outcome]):
    """An activity's attempts run to their first suspension: awaited, they go on from there.

    Each resumption runs in `context`, the one the attempts started in (their ContextVar
    tokens belong to it), as a task runs its coroutine; closed, it closes the attempts
    there too, so their `finally` blocks run (an activity started and then abandoned).
    """

    __slots__ = ("_attempts", "_context", "_suspended")

    def __init__(
        self,
        context: contextvars.Context,
        attempts: Coroutine[Any, Any, Outcome],
        suspended: Any,
    ) -> None:
        self._context = context
        self._attempts = attempts
        self._suspended = suspended

    def __await__(self) -> Generator[Any, Any, Outcome]:
        context, attempts, suspended = self._context, self._attempts, self._suspended
        while True:
            try:
                sent = yield suspended
            except GeneratorExit:
                context.run(attempts.close)
                raise
            except BaseException as thrown:  # (a cancellation, most likely)
                try:
                    suspended = context.run(attempts.throw, thrown)
                except StopIteration as returned:
                    outcome: Outcome = returned.value
                    return outcome
            else:
                try:
                    suspended = context.run(attempts.send, sent)
                except StopIteration as returned:
                    outcome = returned.value
                    return outcome

    def send(self, value: Any) -> Any:
        raise TypeError("await it")  # (only awaited: __await__ is its way in)

    def throw(self, *args: Any) -> Any:
        raise TypeError("await it")

    def close(self) -> None:
        self._context.run(self._attempts.close)


def _going_on(
    context: contextvars.Context, attempts: Coroutine[Any, Any, Outcome], suspended: Any
) -> Coroutine[Any, Any, Outcome]:
    return _GoingOn(context, attempts, suspended)


async def _without_record(outcome: Coroutine[Any, Any, bytes]) -> Outcome:
    """A child's outcome as the drain takes it (decoded on delivery, as a replay)."""
    return await outcome, None


def _dropped(payload: bytes, record: dict[str, Any] | None = None) -> None:
    """A torn-down run's `post`: nothing takes its outcomes any more."""


async def _drained() -> None:
    """A torn-down run's `drain_outcomes`: nothing to drain."""
