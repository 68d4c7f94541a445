"""The steps of one run: numbered in the order the code asks, checked, and held until delivered.

A part of WorkflowRun (its `_steps`). Each command the code asks for (an activity, a child,
a timer, an event wait, a status) gets the next step number and is compared with what the
journal recorded at that number: another kind, name or argument digest is a divergence,
kept (the first one) and unwound out of the workflow code. Steps whose outcome is not
delivered yet stay here with the host work that will produce it (a task, a timer), until
the outcome is delivered or the code lets go of them. Knows nothing of the host loop,
the journal file or the inbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import NonDeterminismError
from ._context import user_call_site
from ._replay import RecordedStep
from ._sites import CallSites
from ._steps import Command


class Evicted(BaseException):
    """Unwinds workflow code that asks for work while its run is being torn down."""


class Diverged(BaseException):
    """Unwinds workflow code at a non-deterministic call; user code cannot catch it."""


class StepsInFlight:
    """Step numbers, the check against the journal, and the steps not delivered yet."""

    def __init__(
        self,
        workflow_id: str,
        recorded: dict[int, RecordedStep],
        sites: dict[tuple[str, int, str], int] | None = None,
    ) -> None:
        self._workflow_id = workflow_id
        self.sites = CallSites(sites or {})  # where the code asked for each step (`w`...)
        self.recorded = recorded  # what the journal holds about each step (read only)
        self.next = 0  # the number the next step gets
        self.pending: dict[int, Command] = {}  # asked for, outcome not delivered, by step
        self.activities = 0  # how many of `pending` are activities (children count too)
        self.new: list[Command] = []  # asked for since the run last started steps
        self.backing_off = 0  # pending activities waiting out a retry back-off on the clock
        self.closed = False  # the run is torn down: asking for a step unwinds the code
        self.divergence: NonDeterminismError | None = None  # the first step that differed
        self.asked: dict[int, Any] | None = None  # (checks only) each step's ActivitySpec

    def begin(self, kind: str, name: str, digest: str, when: float = 0.0) -> int:
        """The number of the step the code asks for now, checked against the journal's.

        Raises:
            Evicted: the run is being torn down.
            Diverged: the journal recorded another step at this number (`divergence`).
        """
        if self.closed:
            raise Evicted()
        step = self.next
        self.next = step + 1
        recorded = self.recorded.get(step)
        if recorded is not None and (
            recorded.kind != kind or recorded.name != name or recorded.digest != digest
        ):
            if self.divergence is None:  # the first divergence is the one to report
                self.divergence = NonDeterminismError(
                    workflow_id=self._workflow_id,
                    position=step,
                    recorded=recorded.description,
                    requested=RecordedStep(kind, name, digest, fire_at=when).description,
                    call_site=user_call_site(),
                )
            raise Diverged()
        return step

    def close(self) -> None:
        """The run is torn down: from now on, code that asks for a step is unwound."""
        self.closed = True

    def add(self, command: Command) -> None:
        """A step the run starts on the host loop (an activity, a child, a timer)."""
        self.pending[command.step] = command
        if command.spec is not None:
            self.activities += 1
        self.new.append(command)

    def wait(self, command: Command) -> None:
        """A step nothing starts: an event wait, which a message from the inbox ends."""
        self.pending[command.step] = command

    def forget(self, step: int) -> Command | None:
        """The step's outcome is delivered, or the code let go of it: its command, if pending."""
        command = self.pending.pop(step, None)
        if command is not None and command.spec is not None:
            self.activities -= 1
        return command

    def take_new(self) -> list[Command]:
        """The steps asked for since the last call (some may be forgotten already)."""
        new, self.new = self.new, []
        return new

    def cancel_host_work(self) -> None:
        """Cancel the task or timer of every pending step (teardown, a simulated kill)."""
        for command in self.pending.values():
            if command.host is not None:
                command.host.cancel()

    async def back_off(self, wait: Awaitable[object]) -> None:
        """Await a pending activity's retry back-off, counted: parked() takes it as idle."""
        self.backing_off += 1
        try:
            await wait
        finally:
            self.backing_off -= 1

    def sleeping_until(self) -> float | None:
        """The nearest fire time, when only timers and event waits are pending (inf: waits)."""
        if self.activities or not self.pending:
            return None
        return min(command.fire_at for command in self.pending.values())

    def parked(self, child_parked: Callable[[str], bool]) -> bool:
        """Whether nothing in flight runs: no activity, no child that is not parked.

        An activity waiting out a retry back-off on the clock counts as idle; a child is
        parked when `child_parked(its id)` says so.
        """
        running = self.activities - self.backing_off
        for command in self.pending.values():
            if command.child is not None and command.host is not None:
                if not child_parked(command.child.workflow_id):
                    return False
                running -= 1
        return running == 0

    def child_tasks(self) -> set[Any]:
        """The host tasks of the pending child steps."""
        return {command.host for command in self.pending.values() if command.child is not None}
