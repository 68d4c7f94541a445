"""The web UI's schedules: their answers (bounded) and their actions, through ScheduleHandle.

A schedule is the workflow `schedule:<name>`; what it last published (its status) holds its
definition and state, which durable._schedules turns into a ScheduleDescription. Reads: the
listing's schedule workflows (through the catalog: no lock, nothing written) and one
schedule's description (ScheduleHandle.describe). Actions (pause with a note, resume,
trigger, backfill a range, delete with a note) are commands to the schedule's inbox, sent by
ScheduleHandle as from code and the CLI; whichever process runs the schedule takes them.

Errors are the request's: an unknown (or malformed) name is ScheduleNotFound (404), a bad
backfill range InvalidSchedule (422), an action on a deleted schedule ScheduleDeleted (409).
Nothing here knows HTTP: _app maps the errors and the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from .._engine._describe import WorkflowDescription
from .._errors import DurableError, InvalidSchedule, ScheduleNotFound
from .._runtime import Runtime
from .._schedule_spec import is_schedule_name, schedule_id
from .._schedules import ScheduleDescription, ScheduleHandle, describe_schedule
from ._answers import NAME_LIMIT, PAGE_LIMIT, VALUE_LIMIT, Bounds

ACTIONS = ("pause", "resume", "trigger", "backfill", "delete")
NEXT_IN_LIST = 3  # next fire times a listing row shows
RECENT_IN_LIST = 3  # latest outcomes a listing row shows
NEXT_ON_PAGE = 10  # next fire times a schedule's page shows
NOTE_LIMIT = 500  # characters of a pause or delete note (the schedule keeps as many)


class ScheduleDeleted(DurableError):
    """An action on a schedule that was deleted (409): nothing was sent."""

    def __init__(self, *, schedule: str, action: str) -> None:
        self.schedule = schedule
        self.action = action
        super().__init__(
            f"schedule {schedule!r} is deleted: {action} was not sent. Starting it in code "
            "(Schedule(...).start(runtime)) creates it again"
        )


class UnknownAction(DurableError, LookupError):
    """A POST to /api/schedules/{name}/{action} with an action there is none of (404)."""

    def __init__(self, *, action: str) -> None:
        self.action = action
        super().__init__(f"no schedule action {action[:NAME_LIMIT]!r}: one of {', '.join(ACTIONS)}")


def schedule_rows(found: Sequence[WorkflowDescription]) -> tuple[list[dict[str, Any]], int]:
    """GET /api/schedules: the schedules among `found`, by name (PAGE_LIMIT), and their count.

    A schedule that has not published its state yet (being created) is not listed.
    """
    described = [describe_schedule(workflow, NEXT_IN_LIST) for workflow in found]
    schedules = sorted((d for d in described if d is not None), key=lambda d: d.name)
    bounds = Bounds()
    rows = [schedule_answer(d, bounds, recent=RECENT_IN_LIST) for d in schedules[:PAGE_LIMIT]]
    return rows, len(schedules)


def schedule_answer(
    described: ScheduleDescription, bounds: Bounds, *, recent: int | None = None
) -> dict[str, Any]:
    """A schedule as JSON: definition, state, next fire times, fires, latest outcomes.

    Times are ISO text in the schedule's time zone (as it reads its cron expression),
    but `at` (when an outcome was recorded), which is epoch seconds like the API's other
    moments. Recent outcomes come newest last, all that the schedule keeps (20) or the last
    `recent`.
    """
    spec = described.spec
    cut: dict[str, str] = {}
    results = described.recent if recent is None else described.recent[-recent:]
    answer: dict[str, Any] = {
        "name": described.name,
        "id": schedule_id(described.name),
        "workflow": bounds.text(described.workflow, NAME_LIMIT, cut, "workflow", "workflow"),
        "cron": spec.cron,
        "every": spec.every,
        "timezone": spec.timezone,
        "jitter": spec.jitter,
        "catchup": spec.catchup,
        "catchup_limit": spec.catchup_limit,
        "catchup_window": spec.catchup_window,
        "overlap": spec.overlap,
        "args": bounds.value(list(spec.args), VALUE_LIMIT, cut, "args", "arguments"),
        "state": "deleted" if described.deleted else "paused" if described.paused else "active",
        "paused": described.paused,
        "deleted": described.deleted,
        "note": described.note[:NOTE_LIMIT],
        "next_fires": [when.isoformat() for when in described.next_fires],
        "running": described.running[:PAGE_LIMIT],
        "total_running": len(described.running),
        "pending": [when.isoformat() for when in described.pending[:PAGE_LIMIT]],
        "total_pending": len(described.pending),
        "fires": described.fires,
        "missed": described.missed,
        "recent": [
            {
                "fire": result.fire.isoformat(),
                "workflow_id": result.workflow_id,
                "kind": result.kind,
                "outcome": result.outcome,
                "detail": bounds.text(result.detail, NOTE_LIMIT, {}, "detail", ""),
                "at": result.at.timestamp(),
            }
            for result in results
        ],
        "total_recent": len(described.recent),
        "workflow_state": str(described.state),
    }
    if cut:
        answer["truncated"] = cut  # (refs into the schedule workflow's answer: its arguments)
    return answer


async def describe_one(runtime: Runtime, name: str, where: str) -> dict[str, Any]:
    """GET /api/schedules/{name}: the schedule with its next NEXT_ON_PAGE fire times.

    Raises:
        ScheduleNotFound: no schedule of that name (or no possible one).
    """
    described = await _handle(runtime, name, where).describe(NEXT_ON_PAGE)
    return schedule_answer(described, Bounds())


async def act(
    runtime: Runtime, name: str, action: str, body: dict[str, Any], where: str
) -> dict[str, Any]:
    """POST /api/schedules/{name}/{action}: send the command; what was sent, in words.

    Raises:
        UnknownAction: not one of ACTIONS.
        ScheduleNotFound: no schedule of that name.
        ScheduleDeleted: the schedule is deleted (nothing is sent).
        InvalidSchedule: a note that is not text; a backfill range that is not one (times
            that are not ISO text, start not before end, over 1000 fire times).
    """
    if action not in ACTIONS:
        raise UnknownAction(action=action)
    handle = _handle(runtime, name, where)
    described = await handle.describe(0)  # (ScheduleNotFound before anything is sent)
    if described.deleted:
        raise ScheduleDeleted(schedule=name, action=action)
    taken = "the process running it takes it within a second (or when it starts again)"
    if action == "pause":
        await handle.pause(_note(body, name, "paused from the web UI"))
        return {"sent": action, "message": f"Pause sent: {taken}."}
    if action == "resume":
        await handle.resume()
        return {"sent": action, "message": f"Resume sent: {taken}."}
    if action == "trigger":
        await handle.trigger()
        return {"sent": action, "message": f"Trigger sent: {taken}; it fires then."}
    if action == "delete":
        await handle.delete(_note(body, name, "deleted from the web UI"))
        return {"sent": action, "message": f"Delete sent: {taken}. Fires running go on."}
    zone = described.spec.zone()
    start = _time(body.get("start"), zone, name, "start")
    end = _time(body.get("end"), zone, name, "end")
    count = await handle.backfill(start, end)
    return {
        "sent": action,
        "count": count,
        "message": f"Backfill of {count} fire time{'' if count == 1 else 's'} sent: {taken}; "
        "they run oldest first, one at a time (fire times already run are not run again).",
    }


def _handle(runtime: Runtime, name: str, where: str) -> ScheduleHandle:
    if not is_schedule_name(name):  # (a name no schedule can have: none by that name)
        raise ScheduleNotFound(schedule=name[:NAME_LIMIT], where=where)
    return ScheduleHandle(runtime, name)


def _note(body: dict[str, Any], name: str, default: str) -> str:
    note = body.get("note")
    if note is None or note == "":
        return default
    if not isinstance(note, str):
        raise InvalidSchedule(
            schedule=name, field="note", value=note, reason="not text", hint="give a short text"
        )
    return note[:NOTE_LIMIT]


def _time(text: Any, zone: tzinfo, name: str, field: str) -> datetime:
    """An ISO time from the request; without an offset, in the schedule's time zone."""
    hint = (
        "give ISO times such as 2026-01-01 or 2026-01-01T02:00 (read in the schedule's "
        "time zone) or 2026-01-01T02:00+01:00"
    )
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchedule(
            schedule=name, field=f"backfill {field}", value=text, reason="missing", hint=hint
        )
    try:
        moment = datetime.fromisoformat(text.strip()[:NAME_LIMIT])
    except ValueError:
        raise InvalidSchedule(
            schedule=name,
            field=f"backfill {field}",
            value=text[:NAME_LIMIT],
            reason="not an ISO time",
            hint=hint,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
