"""The workflow a schedule runs as: sleep until the next fire, start it, take commands.

A schedule is itself a durable workflow (id `schedule:<name>`) rather than a loop of its
own beside the runtime, because everything a schedule must guarantee is what a workflow
already has:

- its state (the last fire handled, paused, what runs, what waits, recent results) is the
  workflow's journal, replayed after any restart: nothing to store or recover separately;
- one runner at a time: the journal's lock (or PostgreSQL lease) means two runtimes on one
  store never both run it, and a runtime that follows it takes over when its holder dies;
- each fire is a child workflow whose id is derived from the schedule's name and the
  nominal fire time (`<name>@<UTC time>`), started by a journaled step: a crash before the
  step replays it (same id: the child is started, resumed or joined, never doubled), and a
  second start of the same fire time (a backfill over it, a trigger at that instant) joins
  that same run;
- commands (pause, resume, trigger, backfill, delete, update, ensure) are events in its
  inbox (`send_event`), durable once sent, taken in order, from any process or the CLI;
- waiting is a durable timer (`wait_for_event(timeout=...)`): an idle schedule is unloaded
  like any sleeper, and durable.testing's virtual time runs a month of fires in
  milliseconds; its crash-point checker works on it unchanged.

The definition it runs (the ScheduleSpec) is journaled: the start record's arguments, then
each `update` (or `create`, `ensure`) command; so a replay computes the fire times the
journal saw, whatever the code declares now. Fire times depend only on the spec and journaled times.
"""

from __future__ import annotations

import asyncio
import math
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from ._api import continue_as_new, now, run_child, set_status, wait_for_event
from ._definitions import Workflow, workflow
from ._errors import (
    ChildIdInUse,
    EventTimeout,
    InvalidSchedule,
    WorkflowCancelled,
    WorkflowFailed,
)
from ._schedule_spec import MAX_BACKFILL, ScheduleSpec

COMMAND_EVENT = "durable.schedule"  # the event name a schedule takes its commands by
RESULTS_KEPT = 20  # recent fire outcomes kept in the state (and shown by describe)
MAX_PENDING = 10 * MAX_BACKFILL  # fires waiting behind the running one (backfills pile up)
_FIRST_YEAR, _LAST_YEAR = 2, 9998  # (a backfill's bounds: any time zone shows them)
_EARLIEST = datetime(_FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(_LAST_YEAR, 12, 31, tzinfo=UTC).timestamp()


def _a_time(value: object) -> TypeGuard[int | float]:
    """Whether a command's value is epoch seconds a schedule can compute fire times from."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and _EARLIEST <= value <= _LATEST
    )


ITERATIONS_PER_GENERATION = 100  # then continue_as_new (when no fire runs): small journals
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 200


@dataclass
class ScheduleState:
    """What a schedule's workflow carries from wake-up to wake-up (and generation to next).

    Attributes:
        cursor: the latest nominal fire time handled (fired, skipped or missed).
        paused: no scheduled fire happens (trigger and backfill still do).
        deleted: stopped for good until the schedule is started (created) again.
        note: why it is paused or deleted (from the command), or "".
        running: fires whose workflow runs: id -> [kind, nominal fire time].
        pending: fires waiting for the one running to end: [kind, nominal] each.
        fires: how many fires started a workflow, over the schedule's life.
        missed: how many fires the catch-up policy did not run.
        results: the latest outcomes, newest last (see `_record_outcome`).
    """

    cursor: float
    paused: bool = False
    deleted: bool = False
    note: str = ""
    running: dict[str, list[Any]] = field(default_factory=dict)
    pending: list[list[Any]] = field(default_factory=list)
    fires: int = 0
    missed: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        """The carried form (continue_as_new's argument)."""
        return {
            "cursor": self.cursor,
            "paused": self.paused,
            "deleted": self.deleted,
            "note": self.note,
            "running": dict(self.running),
            "pending": [list(item) for item in self.pending],
            "fires": self.fires,
            "missed": self.missed,
            "results": list(self.results),
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> ScheduleState:
        """Rebuild the state a previous generation carried."""
        return cls(
            cursor=float(plain["cursor"]),
            paused=bool(plain.get("paused", False)),
            deleted=bool(plain.get("deleted", False)),
            note=str(plain.get("note", "")),
            running={str(k): list(v) for k, v in dict(plain.get("running", {})).items()},
            pending=[list(item) for item in plain.get("pending", [])],
            fires=int(plain.get("fires", 0)),
            missed=int(plain.get("missed", 0)),
            results=list(plain.get("results", [])),
        )


def schedule_workflow(target: Workflow[..., Any], workflow_name: str) -> Workflow[..., Any]:
    """The durable workflow that runs one schedule whose fires start `target`.

    Its arguments are journaled: the spec (plain) and the state a previous generation
    carried (None at first). It never returns: delete() leaves it waiting for a new start.
    """

    async def run_schedule(spec: dict[str, Any], carried: dict[str, Any] | None) -> None:
        await _Scheduler(target, ScheduleSpec.from_plain(spec), carried).run()

    return workflow(name=workflow_name)(run_schedule)


class _Scheduler:
    """One generation of a schedule's workflow: its loop, its fires and its commands."""

    def __init__(
        self, target: Workflow[..., Any], spec: ScheduleSpec, carried: dict[str, Any] | None
    ) -> None:
        self.target = target
        self.spec = spec
        self.state = (
            ScheduleState.from_plain(carried)
            if carried is not None
            else ScheduleState(cursor=now().timestamp())
        )
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        # A new generation follows the fires the last one left running (same ids: joined).
        for fire_id, (kind, nominal) in list(self.state.running.items()):
            self._spawn(fire_id, str(kind), float(nominal))
        iterations = 0
        while True:
            iterations += 1
            self._publish()
            due = self._due()
            timeout = None if due is None else max(due - now().timestamp(), 0.0)
            try:
                command = await wait_for_event(COMMAND_EVENT, timeout=timeout)
            except EventTimeout:
                command = None
            if command is not None:
                self._command(command)
            if iterations > ITERATIONS_PER_GENERATION and not self.tasks:
                # (woken, the last fire done: what is due now, the next generation fires)
                continue_as_new(self.spec.to_plain(), self.state.to_plain())
            self._catch_up()
            self._drain()

    # -- when ---------------------------------------------------------------------------------

    def _due(self) -> float | None:
        """When the next scheduled fire is due (nominal + jitter); None while paused."""
        state = self.state
        if state.paused or state.deleted:
            return None
        nominal = self.spec.next_fire(state.cursor)
        return None if nominal is None else nominal + self.spec.jitter_of(nominal)

    def _catch_up(self) -> None:
        """Fire what is due: on time through the overlap policy, missed by the catch-up one."""
        state, spec = self.state, self.spec
        if state.paused or state.deleted:
            return
        current = now().timestamp()
        keep = max(spec.catchup_limit, 1) + 1
        fires, count = spec.fires_between(state.cursor, current, keep)
        due = [when for when in fires if when + spec.jitter_of(when) <= current]
        if not due:
            return
        skipped_before = count - len(fires)  # (too many to keep: missed whatever the policy)
        state.cursor = due[-1]
        late = [w for w in due if current > w + spec.jitter_of(w) + spec.catchup_window]
        on_time = [when for when in due if when not in late]
        state.missed += skipped_before
        if late:
            if spec.catchup == "skip":
                state.missed += len(late)
                self._record_outcome(
                    "missed", late[-1], "skipped", f"{len(late)} missed: catchup=skip"
                )
            elif spec.catchup == "latest":
                state.missed += len(late) - 1
                self._fire("catchup", late[-1])
            else:
                kept = late[-spec.catchup_limit :]
                state.missed += len(late) - len(kept)
                self._queue("catchup", kept)
        for when in on_time:
            self._fire("scheduled", when)

    # -- fires ----------------------------------------------------------------------------------

    def _fire(self, kind: str, nominal: float) -> None:
        """A fire that is due now, through the overlap policy."""
        state, overlap = self.state, self.spec.overlap
        if not state.running or overlap == "allow_all":
            self._start(kind, nominal)
        elif overlap == "skip":
            self._record_outcome(
                kind, nominal, "skipped", "the previous fire still runs (overlap=skip)"
            )
        elif overlap == "queue_one":
            if any(item[0] != "backfill" for item in state.pending):
                self._record_outcome(kind, nominal, "skipped", "one fire waits already (queue_one)")
            else:
                state.pending.append([kind, nominal])
        else:  # cancel_previous
            for fire_id in list(state.running):
                task = self.tasks.get(fire_id)
                if task is not None:
                    task.cancel()
            self._start(kind, nominal)

    def _queue(self, kind: str, fires: list[float]) -> int:
        """Queue fires behind the running one, each once, at most MAX_PENDING waiting.

        How many did not fit. (The ids known are gathered once: a backfill queues up to
        1000 fires, and a look through the waiting ones per fire would be quadratic.)
        """
        state, spec = self.state, self.spec
        known = set(state.running) | {spec.fire_id(float(item[1])) for item in state.pending}
        left_out = 0
        for nominal in fires:
            fire_id = spec.fire_id(nominal)
            if fire_id in known:
                continue
            if len(state.pending) >= MAX_PENDING:
                left_out += 1
                continue
            known.add(fire_id)
            state.pending.append([kind, nominal])
        return left_out

    def _drain(self) -> None:
        """Start waiting fires: one at a time (all at once when overlap is allow_all)."""
        state = self.state
        while state.pending and (not state.running or self.spec.overlap == "allow_all"):
            kind, nominal = state.pending.pop(0)
            self._start(str(kind), float(nominal))

    def _start(self, kind: str, nominal: float) -> None:
        fire_id = self.spec.fire_id(nominal)
        if fire_id in self.state.running:
            return  # (this very fire runs: a second start would only join it)
        self.state.running[fire_id] = [kind, nominal]
        self.state.fires += 1
        self._spawn(fire_id, kind, nominal)

    def _spawn(self, fire_id: str, kind: str, nominal: float) -> None:
        task = asyncio.create_task(self._watch(fire_id, kind, nominal))  # (the workflow's loop)
        self.tasks[fire_id] = task

    async def _watch(self, fire_id: str, kind: str, nominal: float) -> None:
        """Run (or join) the fire's workflow as a detached child; keep its outcome."""
        spec = self.spec
        outcome, detail = "completed", ""
        try:
            # Detached: the schedule's next generation (continue_as_new) must not cancel it.
            result = await run_child(
                self.target, spec.local(nominal), *spec.args, id=fire_id, detached=True
            )
            detail = _SHORT.repr(result)
        except WorkflowFailed as failed:
            outcome, detail = "failed", f"{failed.error_type}: {failed.message}"
        except WorkflowCancelled as cancelled:
            outcome, detail = "cancelled", cancelled.reason
        except ChildIdInUse as in_use:
            outcome, detail = "failed", str(in_use)
        except asyncio.CancelledError:  # (overlap=cancel_previous: the child got a cancel)
            outcome, detail = "cancelled", "a later fire started (overlap=cancel_previous)"
        finally:
            self.tasks.pop(fire_id, None)
            self.state.running.pop(fire_id, None)
        self._record_outcome(kind, nominal, outcome, detail)
        self._drain()
        self._publish()

    # -- commands -------------------------------------------------------------------------------

    def _command(self, command: Any) -> None:
        """Apply one command from the inbox; a malformed one is noted and ignored."""
        state = self.state
        op = command.get("op") if isinstance(command, dict) else None
        current = now().timestamp()
        if op == "pause":
            state.paused, state.note = True, str(command.get("note", ""))[:500]
        elif op == "resume":
            if state.paused:
                state.paused, state.note = False, ""
                state.cursor = max(state.cursor, current)  # (fires while paused: not run)
        elif op == "trigger":
            if not state.deleted:
                self._fire("trigger", current)
        elif op == "backfill":
            self._backfill(command, current)
        elif op == "delete":
            state.deleted, state.note = True, str(command.get("note", ""))[:500]
            state.pending.clear()
        elif op in ("update", "create", "ensure"):
            try:
                spec = ScheduleSpec.from_plain(command.get("spec"))
            except InvalidSchedule as error:
                self._record_outcome("command", current, "ignored", str(error))
                return
            if spec.name != self.spec.name or spec.workflow != self.target.name:
                self._record_outcome("command", current, "ignored", "another schedule's definition")
                return
            if op == "ensure":  # (Schedule.start() again: create it, update it, or nothing)
                if spec == self.spec and not state.deleted:
                    return  # (as it runs: the cursor stays, so missed fires are caught up)
                op = "create"
            self.spec = spec
            state.cursor = max(state.cursor, current)  # (from now on: nothing before re-run)
            if op == "create" and state.deleted:
                state.deleted = state.paused = False
                state.note = ""
        else:
            self._record_outcome(
                "command", current, "ignored", f"unknown command {_SHORT.repr(op)}"
            )

    def _backfill(self, command: dict[str, Any], current: float) -> None:
        start, end = command.get("start"), command.get("end")
        # (an event from anyone on the store: times a datetime cannot hold are refused here,
        # or the fire-time arithmetic would raise and end the schedule)
        if not (_a_time(start) and _a_time(end)):
            self._record_outcome(
                "command",
                current,
                "ignored",
                f"backfill needs start and end times (epoch seconds of years "
                f"{_FIRST_YEAR}-{_LAST_YEAR}), not {_SHORT.repr(start)}, {_SHORT.repr(end)}",
            )
            return
        until = min(float(end), current) - 1e-6  # [start, end), and nothing in the future
        fires, _ = self.spec.fires_between(float(start) - 1e-6, until, MAX_BACKFILL)
        left_out = self._queue("backfill", fires)
        if left_out:
            self._record_outcome(
                "command",
                current,
                "ignored",
                f"{left_out} of the backfill's fire times: {MAX_PENDING} fires wait already; "
                "backfill them again once these ran",
            )

    # -- what describe shows ----------------------------------------------------------------------

    def _record_outcome(self, kind: str, nominal: float, outcome: str, detail: str) -> None:
        results = self.state.results
        results.append(
            {
                "fire": nominal,
                "id": self.spec.fire_id(nominal) if kind != "command" else None,
                "kind": kind,
                "outcome": outcome,
                "detail": detail[:500],
                "at": now().timestamp(),
            }
        )
        del results[:-RESULTS_KEPT]

    def _publish(self) -> None:
        """The state and spec as the workflow's status, for describe() and the CLI."""
        set_status({"schedule": self.spec.to_plain(), "state": self.state.to_plain()})
