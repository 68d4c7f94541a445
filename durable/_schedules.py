"""Schedules, as the user declares and controls them: Schedule, ScheduleHandle, descriptions.

A Schedule is declared in code (a cron expression in a time zone, or an interval) and
started on a runtime, where it runs as a durable workflow of its own (see _schedule_run
for why). A ScheduleHandle sends it commands through its inbox and reads what it
published: from the process that runs it, another one, or the CLI. This module knows the
runtime's public surface; the runtime knows nothing of schedules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._default_runtime import default_runtime
from ._definitions import Workflow
from ._durations import Duration
from ._engine._describe import WorkflowDescription, WorkflowState
from ._errors import (
    InvalidSchedule,
    JournalNotFound,
    ScheduleNotFound,
    WorkflowDefinitionError,
    WorkflowFinished,
    WorkflowNotFound,
)
from ._handles import WorkflowHandle
from ._reading import read_workflow
from ._runtime import Runtime
from ._schedule_run import COMMAND_EVENT, schedule_workflow
from ._schedule_spec import (
    MAX_BACKFILL,
    CatchupPolicy,
    OverlapPolicy,
    ScheduleSpec,
    fire_id,
    schedule_id,
    validate,
)

logger = logging.getLogger("durable")

WORKFLOW_PREFIX = "durable.schedule:"  # + the schedule's name: its workflow's name


class Schedule:
    """A workflow started at every fire time of a cron expression, or every interval.

    Each fire starts `workflow(fire_time, *args)` as a workflow of its own, with the id
    `<name>@<fire time in UTC>` (`billing@2026-03-01T01:00:00Z`): one run per fire time,
    whatever restarts, crashes or processes sharing the store. `fire_time` is the nominal
    fire time (before jitter), an aware datetime in the schedule's time zone.

    Args:
        name: 1-100 letters, digits, '.', '_', '-'; the schedule's workflow id is
            `schedule:<name>`.
        workflow: the @durable.workflow each fire starts.
        args: its arguments after the fire time (journaled with the schedule).
        cron: a cron expression, e.g. "0 2 1 * *" (02:00 on the 1st), read in `timezone`;
            five fields, or six with seconds first. Daylight saving time: a fixed local
            time that does not exist that day fires once, right after the gap (03:00 for
            02:30 in Europe/Berlin's spring change); one that occurs twice fires once, the
            first time. A wildcard hour ("30 * * * *") fires as the clock goes.
        timezone: the IANA time zone of `cron` (default "UTC").
        every: or an interval ("15 min", seconds, timedelta): fires at every multiple of
            it since the Unix epoch (every hour on the hour, UTC).
        jitter: delay each fire by up to this much (default 0), by a hash of the name and
            the fire time: the same in every process, shown by describe() in advance.
            It must be shorter than the gap between fires: the interval, or for cron the
            shortest gap over its next 100 fires (and around daylight saving changes).
        catchup: fires missed while nothing ran (later than `catchup_window`): "skip"
            them, run the "latest" once (default), or run "all", oldest first, one after
            another, at most `catchup_limit` (the most recent; default 10).
        catchup_window: how late a fire may start and count as on time (default 1 min).
        overlap: a fire due while an earlier fire's workflow runs: "skip" it (default),
            "queue_one" (it starts when the running one ends; one waits at most),
            "allow_all" (start anyway), "cancel_previous" (cancel the running one, start).

    Raises:
        InvalidSchedule: an invalid cron expression, unknown time zone, interval that is
            shorter than 1 ms, negative jitter or jitter not shorter than the gap between
            fires, unknown policy, bad name.
        WorkflowDefinitionError: `workflow` is not a @durable.workflow.
    """

    def __init__(
        self,
        name: str,
        workflow: Workflow[..., Any],
        *,
        args: tuple[Any, ...] = (),
        cron: str | None = None,
        timezone: str = "UTC",
        every: Duration | None = None,
        jitter: Duration = 0,
        catchup: CatchupPolicy = "latest",
        catchup_limit: int = 10,
        catchup_window: Duration = "1 min",
        overlap: OverlapPolicy = "skip",
    ) -> None:
        if not isinstance(workflow, Workflow):
            raise WorkflowDefinitionError(
                f"schedule {name!r}: {workflow!r} is not a durable workflow: decorate the "
                "async function with @durable.workflow"
            )
        self.spec = validate(
            name=name,
            workflow=workflow.name,
            args=args,
            cron=cron,
            timezone=timezone,
            every=every,
            jitter=jitter,
            catchup=catchup,
            catchup_limit=catchup_limit,
            catchup_window=catchup_window,
            overlap=overlap,
        )
        self.workflow = workflow
        # The schedule's own workflow: list it in Runtime(workflows=[...]) for recover().
        self.runner = schedule_workflow(workflow, WORKFLOW_PREFIX + name)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def id(self) -> str:
        """The workflow id the schedule runs under: `schedule:<name>`."""
        return self.spec.workflow_id

    async def start(self, runtime: Runtime | None = None) -> ScheduleHandle:
        """Run the schedule on `runtime` (default: the default runtime); its handle.

        Idempotent: call it at every start of every process that should run schedules.
        The first creates it; later ones resume it here (or, while another runtime on the
        store runs it, follow that one and take over if it stops or dies). A definition
        that differs from the journaled one replaces it (fires already handled stay
        handled); a deleted schedule is created again.

        A start of a schedule that exists sends it an `ensure` command, taken in order after
        every command sent before it, rather than deciding from the state it reads: a
        delete still waiting in the inbox would otherwise win or lose by how fast the
        schedule's run takes it. A definition that matches the running one is a no-op.
        """
        runtime = runtime if runtime is not None else default_runtime()
        handle = ScheduleHandle(runtime, self.name)
        existed, _ = await handle._recorded()
        await runtime.start(self.runner, self.spec.to_plain(), None, id=self.id, attach=True)
        if existed is None:  # (created here, or by a racing start that may declare another)
            recorded, deleted = await handle._recorded()
            if recorded == self.spec and not deleted:
                return handle
        try:
            await handle._send({"op": "ensure", "spec": self.spec.to_plain()})
        except WorkflowFinished as ended:  # (cancelled or failed: it fires no more)
            logger.warning(
                "schedule %r does not run: %s. Resume or restart its workflow %r (durable "
                "resume / durable restart) for it to fire again",
                self.name,
                ended,
                self.id,
            )
        return handle

    def __repr__(self) -> str:
        when = self.spec.cron or f"every {self.spec.every:g} s"
        return f"<durable Schedule {self.name!r} {when} -> {self.workflow.name!r}>"


@dataclass(frozen=True)
class FireResult:
    """One fire's outcome, as the schedule recorded it.

    Attributes:
        fire: the nominal fire time, in the schedule's time zone.
        workflow_id: the fire's workflow id (None for a command the schedule ignored).
        kind: "scheduled", "trigger", "catchup", "backfill", "missed" or "command".
        outcome: "completed", "failed", "cancelled", "skipped" or "ignored".
        detail: the result (short repr), the error, or why it was skipped.
        at: when the schedule recorded it (aware UTC).
    """

    fire: datetime
    workflow_id: str | None
    kind: str
    outcome: str
    detail: str
    at: datetime


@dataclass(frozen=True)
class ScheduleDescription:
    """A schedule as its journal shows it (ScheduleHandle.describe; `durable schedule show`).

    Attributes:
        name, workflow: the schedule and the workflow its fires start.
        spec: its definition (cron or every, time zone, jitter, policies).
        paused, deleted: whether scheduled fires are stopped; `note` says why.
        next_fires: the next fire times (with their jitter), in the schedule's time zone;
            empty while paused or deleted.
        running: the ids of the fires' workflows running now.
        pending: fire times waiting for the running one to end.
        fires, missed: fires started, and missed fires not run, over its life.
        recent: the latest outcomes, newest last.
        state: the state of the schedule's own workflow (waiting for event, normally).
    """

    name: str
    workflow: str
    spec: ScheduleSpec
    paused: bool
    deleted: bool
    note: str
    next_fires: list[datetime]
    running: list[str]
    pending: list[datetime]
    fires: int
    missed: int
    recent: list[FireResult]
    state: WorkflowState


class ScheduleHandle:
    """Controls a started schedule from anywhere on its store: code, another process, CLI.

    Commands are events in the schedule's inbox: durable once the call returns, taken in
    order by whichever runtime runs the schedule (at once in this process, within
    `event_poll_interval` in another, on its next start if none does).
    """

    def __init__(self, runtime: Runtime, name: str) -> None:
        self._runtime = runtime
        self.name = name
        self.id = schedule_id(name)

    async def pause(self, note: str = "") -> None:
        """Stop scheduled fires (trigger and backfill still work); fires running go on.

        Fire times that pass while paused are not run after resume().
        """
        await self._send({"op": "pause", "note": note})

    async def resume(self) -> None:
        """Fire again from the next fire time on."""
        await self._send({"op": "resume"})

    async def trigger(self) -> None:
        """Fire now (its fire time: when the schedule takes the command), by the overlap policy."""
        await self._send({"op": "trigger"})

    async def backfill(self, start: datetime, end: datetime) -> int:
        """Run every fire time in [start, end) that is past, oldest first, one at a time.

        A fire time that already ran is not run again: its id names that run. Up to 1000
        fire times per call.

        Returns:
            How many fire times the range holds (by the schedule's definition now).

        Raises:
            InvalidSchedule: a naive datetime, start not before end, over 1000 fires.
            ScheduleNotFound: no such schedule.
        """
        for field_name, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InvalidSchedule(
                    schedule=self.name,
                    field=f"backfill {field_name}",
                    value=value,
                    reason="not an aware datetime",
                    hint="give datetimes with a tzinfo, e.g. datetime(2026, 1, 1, tzinfo=UTC)",
                )
        if start >= end:
            raise InvalidSchedule(
                schedule=self.name,
                field="backfill end",
                value=end,
                reason=f"not after start {start.isoformat()}",
                hint="give start < end",
            )
        spec, _ = await self._recorded()
        if spec is None:
            raise ScheduleNotFound(schedule=self.name, where=self._where())
        _, count = spec.fires_between(start.timestamp() - 1e-6, end.timestamp() - 1e-6, 1)
        if count > MAX_BACKFILL:
            raise InvalidSchedule(
                schedule=self.name,
                field="backfill range",
                value=f"{start.isoformat()} .. {end.isoformat()}",
                reason=f"it holds {count} fire times, over {MAX_BACKFILL}",
                hint="split it into several backfills",
            )
        await self._send({"op": "backfill", "start": start.timestamp(), "end": end.timestamp()})
        return count

    async def delete(self, note: str = "") -> None:
        """Stop the schedule for good: no fire of any kind; fires running go on.

        Its journal stays (its history); Schedule.start() with this name creates it again.
        """
        await self._send({"op": "delete", "note": note})

    def fire(self, when: datetime) -> str:
        """The workflow id of the fire at nominal time `when` (for Runtime.handle)."""
        return fire_id(self.name, when.timestamp())

    async def fire_handle(self, when: datetime) -> WorkflowHandle[Any]:
        """A handle to the workflow of the fire at `when` (WorkflowNotFound: none ran)."""
        return await self._runtime.handle(self.fire(when))

    async def describe(self, next_fires: int = 5) -> ScheduleDescription:
        """What the schedule is doing: definition, next fire times, running, recent results.

        Read from the journal of its workflow (no lock, nothing written).

        Raises:
            ScheduleNotFound: no such schedule.
        """
        try:
            described = await self._runtime.describe(self.id)
        except WorkflowNotFound:
            raise ScheduleNotFound(schedule=self.name, where=self._where()) from None
        found = describe_schedule(described, next_fires)
        if found is not None:
            return found
        spec, _ = await self._recorded()  # (nothing published yet: its start record's)
        if spec is None:
            raise ScheduleNotFound(schedule=self.name, where=self._where())
        return _description(spec, {}, described, next_fires)

    async def _send(self, command: dict[str, Any]) -> None:
        try:
            await self._runtime.send_event(self.id, COMMAND_EVENT, command)
        except WorkflowNotFound:
            raise ScheduleNotFound(schedule=self.name, where=self._where()) from None

    async def _recorded(self) -> tuple[ScheduleSpec | None, bool]:
        """The definition the schedule runs now (its last status, else its start), deleted?

        None when the schedule's journal has no start record (none, or being created).
        """
        try:
            journal = await read_workflow(self._runtime._store, self.id)
        except (WorkflowNotFound, JournalNotFound):
            return None, False
        plain: Any = None
        deleted = False
        for record in reversed(journal):  # (the latest status: the definition it runs)
            if record["k"] == "status" and isinstance(record.get("v"), dict):
                plain = record["v"].get("schedule")
                deleted = bool((record["v"].get("state") or {}).get("deleted", False))
                break
        if plain is None:
            arguments = journal[0].get("args") or [None]
            plain = arguments[0]
        return ScheduleSpec.from_plain(plain), deleted

    def _where(self) -> str:
        return self._runtime._store.location(self.id)

    def __repr__(self) -> str:
        return f"<durable ScheduleHandle {self.name!r}>"


def describe_schedule(
    described: WorkflowDescription, next_fires: int = 5
) -> ScheduleDescription | None:
    """A schedule's description from its workflow's (None: not a schedule's, or no status).

    What the schedule last published (durable.set_status) holds its definition and state;
    the next fire times are computed from them here.
    """
    if not described.workflow_name.startswith(WORKFLOW_PREFIX):
        return None
    status = described.status
    if not isinstance(status, dict) or not isinstance(status.get("state"), dict):
        return None
    try:
        spec = ScheduleSpec.from_plain(status.get("schedule"))
    except InvalidSchedule:
        return None
    return _description(spec, status["state"], described, next_fires)


def _description(
    spec: ScheduleSpec, state: dict[str, Any], described: WorkflowDescription, next_fires: int
) -> ScheduleDescription:
    paused = bool(state.get("paused", False))
    deleted = bool(state.get("deleted", False))
    zone = spec.zone()
    upcoming: list[datetime] = []
    if not paused and not deleted:
        cursor = float(state.get("cursor", described.started.timestamp()))
        for nominal in spec.next_fires(cursor, next_fires):
            upcoming.append(spec.local(nominal + spec.jitter_of(nominal)))
    return ScheduleDescription(
        name=spec.name,
        workflow=spec.workflow,
        spec=spec,
        paused=paused,
        deleted=deleted,
        note=str(state.get("note", "")),
        next_fires=upcoming,
        running=sorted(state.get("running", {})),
        pending=[spec.local(float(item[1])) for item in state.get("pending", [])],
        fires=int(state.get("fires", 0)),
        missed=int(state.get("missed", 0)),
        recent=[
            FireResult(
                fire=datetime.fromtimestamp(float(item["fire"]), zone),
                workflow_id=item.get("id"),
                kind=str(item.get("kind")),
                outcome=str(item.get("outcome")),
                detail=str(item.get("detail", "")),
                at=datetime.fromtimestamp(float(item["at"]), UTC),
            )
            for item in state.get("results", [])
        ],
        state=described.state,
    )
