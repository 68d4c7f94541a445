"""What a workflow is doing, read from its journal alone: no workflow code runs.

Used by Runtime.describe (and the CLI): safe while the workflow runs elsewhere, since it
reads the records without locking the journal. Takes records the schema validated
(`_records.read_journal`), so it indexes them without checking again.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import _records as records
from ._history import is_wait_timeout
from ._set_aside import as_replayed


class WorkflowState(enum.StrEnum):
    """Where a workflow stands, as its journal tells."""

    QUEUED = "queued"  # (not journaled yet: a queue's request, described by _queue_reading)
    RUNNING = "running"
    SLEEPING = "sleeping"
    WAITING = "waiting for event"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class WorkflowDescription:
    """A workflow as its journal describes it (Runtime.describe).

    Attributes:
        workflow_id, workflow_name: which workflow.
        state: running / sleeping / waiting for event / completed / failed / cancelled.
        status: the last value the workflow published with durable.set_status().
        generation: 0, then one more per continue_as_new.
        steps: how many steps (activities, timers, waits...) it has taken, as its history
            shows them (an event wait's timeout is part of the wait, not a step).
        current: what it waits on now, in words (None when finished).
        attempt: the attempt of the activity it runs now, if the journal shows one.
        waiting_for: the event name it waits for, in state "waiting for event".
        wake_at: when its next timer fires, if it sleeps.
        started, updated, ended: aware UTC times (ended: None until it ends).
        error: the failure, "Type: message", for a failed or cancelled workflow.
        parent: the id of the workflow that started it as a child, if any.
        unread_events: inbox messages it has not taken yet.
        skipped_messages: inbox messages it skipped as undeliverable (undecodable, of an
            unknown kind, too large to journal); each is journaled with its reason.
        last_skip: the latest of those, "message N: reason" (None if there is none).
        deadline: when its execution_timeout cancels it (None: no limit), aware UTC.
    """

    workflow_id: str
    workflow_name: str
    state: WorkflowState
    status: Any
    generation: int
    steps: int
    current: str | None
    attempt: int | None
    waiting_for: str | None
    wake_at: datetime | None
    started: datetime
    updated: datetime
    ended: datetime | None
    error: str | None
    parent: str | None
    unread_events: int
    skipped_messages: int = 0
    last_skip: str | None = None
    deadline: datetime | None = None


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else records.moment(epoch)


def describe(
    workflow_id: str, journal: list[records.Record], *, inbox_size: int
) -> WorkflowDescription:
    """Describe the workflow whose validated records are `journal` (start record first).

    As it replays: what a resumption set aside is not described.
    """
    journal = as_replayed(journal, path=workflow_id)
    start = journal[0]
    running: dict[int, tuple[str, int]] = {}  # step -> (activity name or child, attempt)
    sleeping: dict[int, float] = {}
    waiting: list[tuple[int, str]] = []
    steps, status, updated, end = 0, None, start.get("t", 0.0), None
    timeouts: set[int] = set()  # the steps that are an event wait's timeout
    taken = start.get("q", 0)
    skipped, last_skip = 0, None
    for previous, record in itertools.pairwise(journal):  # (the start record first)
        kind = record["k"]
        step = record["s"] if kind in records.STEPPED else -1  # (validated: an int >= 0)
        updated = max(updated, record.get("t", updated))
        steps = max(steps, step + 1)
        if kind == records.TIMER and is_wait_timeout(previous, record):
            timeouts.add(step)
        if record.get("x") and (kind == records.TIMER or kind == records.WAIT):  # noqa: PLR1714
            # the code let go of this timer or wait
            sleeping.pop(step, None)
            waiting = [(waited, name) for waited, name in waiting if waited != step]
        elif kind in (records.SCHEDULED, records.RETRY):
            name = record.get("a", "")
            if "id" in record:
                name = f"{name} {record['id']!r}"
            attempt = record.get("n", 1) + (1 if kind == records.RETRY else 0)  # (the next)
            running[step] = (name, attempt)
        elif kind == records.DONE:
            running.pop(step, None)
        elif kind == records.TIMER:
            sleeping[step] = record["at"]
        elif kind == records.FIRED:
            sleeping.pop(step, None)
        elif kind == records.WAIT:
            waiting.append((step, record["n"]))
        elif kind == records.EVENT:
            taken = max(taken, record["q"] + 1)
            for index, (_, name) in enumerate(waiting):
                if name == record["n"]:
                    del waiting[index]
                    break
        elif kind == records.CANCEL:
            taken = max(taken, record["q"] + 1)
        elif kind == records.SKIP:
            taken = max(taken, record["q"] + 1)
            skipped, last_skip = skipped + 1, f"message {record['q']}: {record.get('reason')}"
        elif kind == records.STATUS:
            status = record.get("v")
        elif kind == records.END:
            end = record
    state, current, attempt, waiting_for, wake_at, error = _where(end, running, sleeping, waiting)
    return WorkflowDescription(
        workflow_id=workflow_id,
        workflow_name=start.get("wf", ""),
        state=state,
        status=status,
        generation=start.get("gen", 0),
        steps=steps - len(timeouts),
        current=current,
        attempt=attempt,
        waiting_for=waiting_for,
        wake_at=_when(wake_at),
        started=records.moment(start["t"]),
        updated=records.moment(updated),
        ended=_when(end.get("t")) if end is not None and "cont" not in end else None,
        error=error,
        parent=start.get("parent"),
        unread_events=max(0, inbox_size - taken),
        skipped_messages=skipped,
        last_skip=last_skip,
        deadline=_when(start.get("dl")),
    )


def _where(
    end: records.Record | None,
    running: dict[int, tuple[str, int]],
    sleeping: dict[int, float],
    waiting: list[tuple[int, str]],
) -> tuple[WorkflowState, str | None, int | None, str | None, float | None, str | None]:
    if end is not None and "cont" not in end:
        if "e" not in end:
            return WorkflowState.COMPLETED, None, None, None, None, None
        error = f"{end['e'].get('type')}: {end['e'].get('msg')}"
        state = WorkflowState.CANCELLED if end.get("c") else WorkflowState.FAILED
        return state, None, None, None, None, error
    wake_at = min(sleeping.values()) if sleeping else None
    if running:
        name, attempt = running[max(running)]
        return (
            WorkflowState.RUNNING,
            f"running {name} (attempt {attempt})",
            attempt,
            None,
            wake_at,
            None,
        )
    if waiting:
        name = waiting[0][1]
        return WorkflowState.WAITING, f"waiting for event {name!r}", None, name, wake_at, None
    if wake_at is not None:
        when = records.moment(wake_at).isoformat(timespec="seconds")
        return WorkflowState.SLEEPING, f"sleeping until {when}", None, None, wake_at, None
    return WorkflowState.RUNNING, None, None, None, None, None
