"""A workflow's history, read from its journal: steps with their attempts, timers, events.

What `durable show` and the web UI draw as a timeline. Pure: records the schema validated
(`_records.read_journal`) in, plain data out; no workflow code runs and nothing is written,
so it is safe while the workflow runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _records as records
from ._set_aside import as_replayed


@dataclass
class Attempt:
    """One attempt of an activity (or the run of a child workflow).

    `began` is None for journals older than the "b" field (and for in-doubt outcomes);
    `ended` is None while it runs. `error` is {type, msg, tb} if it failed.
    """

    number: int
    began: float | None
    ended: float | None = None
    error: dict[str, Any] | None = None
    retry_at: float | None = None


@dataclass
class Step:
    """A step of the workflow, in the order the code asked for them.

    Attributes:
        step: its position.
        kind: "activity", "child", "timer", "wait" (for an event), "status" or "stream"
            (a value workflow code appended to the stream `name`).
        name: the activity, the child workflow, the event waited for; "" for timers.
        began: when it started (an activity's first attempt; a timer's or wait's record).
        ended: when its outcome came (None while pending, or if the code let go of it).
        state: "running", "completed", "failed", "sleeping", "fired", "waiting",
            "received", "timed out" (a wait's timeout fired), "abandoned" (the code let
            go of it) or "published" (a status).
        attempts: an activity's attempts, in order.
        result: its result (or the event's payload, the status value).
        error: its final error, if it failed.
        fire_at: a timer's fire time.
        timeout_at: when a wait's timeout fires (wait_for_event(timeout=...)). Its timer is
            part of the wait, not a step of its own here (the journal gives it the next step
            number, so the numbers shown skip it).
        child_id: a child workflow's id.
        detached: a child started detached (its parent's end does not cancel it).
        site: where the workflow's code asked for it, {file, line, function} (None: not
            journaled, by durable before call sites, or a timer asked for from a task's
            first await).
    """

    step: int
    kind: str
    name: str
    began: float | None = None
    ended: float | None = None
    state: str = "running"
    attempts: list[Attempt] = field(default_factory=list)
    result: Any = None
    error: dict[str, Any] | None = None
    fire_at: float | None = None
    timeout_at: float | None = None
    child_id: str | None = None
    detached: bool = False
    site: dict[str, Any] | None = None


@dataclass
class Message:
    """An event or a cancellation the workflow took from its inbox (or skipped)."""

    position: int
    kind: str  # "event", "cancel" or "skipped" (undeliverable: journaled with why)
    name: str  # the event name, the cancellation's reason, or why it was skipped
    payload: Any
    at: float
    event_id: str | None = None


@dataclass
class Link:
    """An operator's action on this run, or the run it came from or made.

    `kind`: "resumed" (this run, `at`), "forked from" / "restarted from" (its source),
    "forked to" / "restarted as" (a run made from it). `workflow_id`: the other run (None
    for "resumed"); `step`: a fork's first live step, or the step a resumption set aside;
    `override`: the step whose result a fork overrode.
    """

    kind: str
    workflow_id: str | None
    at: float
    by: str | None = None
    reason: str | None = None
    step: int | None = None
    override: int | None = None


@dataclass
class History:
    """Everything the journal says, in order (see Step and Message)."""

    workflow_id: str
    workflow_name: str
    arguments: list[Any]
    started: float
    generation: int
    parent: str | None
    steps: list[Step]
    messages: list[Message]
    ended: float | None = None
    outcome: str = "running"  # "completed", "failed", "cancelled", "continued as new"
    result: Any = None
    error: dict[str, Any] | None = None
    links: list[Link] = field(default_factory=list)


def history(workflow_id: str, journal: list[records.Record]) -> History:
    """The history of the workflow whose validated records are `journal` (start first).

    Its steps as the run replays them (what a resumption set aside is left out), and the
    links: resumptions, the run it was forked or restarted from, the runs made from it.
    """
    links = links_of(journal)
    journal = as_replayed(journal, path=workflow_id)
    start = journal[0]
    steps: dict[int, Step] = {}
    built = History(
        workflow_id=workflow_id,
        workflow_name=start.get("wf", ""),
        arguments=start.get("args", []),
        started=start.get("t", 0.0),
        generation=start.get("gen", 0),
        parent=start.get("parent"),
        steps=[],
        messages=[],
        links=links,
    )
    last_time = built.started
    waiting: list[Step] = []  # event waits not answered yet, oldest first
    timeouts: dict[int, Step] = {}  # a wait's timeout timer's step -> the wait
    previous: records.Record = start
    sites: dict[int, dict[str, Any]] = {}  # call sites by number (`wp`... of their first step)
    site_of: dict[int, int] = {}  # step -> its call site's number
    for record in journal[1:]:
        kind = record.get("k")
        at = record.get("t", last_time)
        if kind in records.FROM_INBOX:
            _take_message(built, waiting, record, at)
        elif kind == records.END:
            _end(built, record, at)
        elif kind == records.TIMER and _times_out(previous, record, steps, timeouts):
            pass
        elif kind == records.FIRED and record.get("s") in timeouts:
            wait = timeouts[record["s"]]
            if wait.state == "waiting":
                wait.ended, wait.state = record.get("t"), "timed out"
                waiting.remove(wait)
        elif kind != records.PATCH and kind not in records.NOTES:
            _step_record(steps, waiting, record, last_time)
            if "w" in record:
                site_of[record["s"]] = record["w"]
                if "wp" in record:
                    sites[record["w"]] = {
                        "file": record["wp"],
                        "line": record["wl"],
                        "function": record["wn"],
                    }
        last_time = max(last_time, at)
        previous = record
    for number, site in site_of.items():  # (a site may be named after a step uses it)
        steps[number].site = sites.get(site)
    built.steps = [steps[number] for number in sorted(steps)]
    return built


def links_of(journal: list[records.Record]) -> list[Link]:
    """Where the run came from, its resumptions and the runs made from it, in time order."""
    found = []
    made = journal[0].get("from")
    if made is not None:  # (validated: an Origin)
        kind = "forked from" if made["how"] == "fork" else "restarted from"
        found.append(
            Link(kind, made["id"], made["t"], made.get("by"), made.get("m"), made.get("s"))
        )
        if "ov" in made:
            found[-1].override = made["ov"]
    for record in journal[1:]:
        if record["k"] == records.RESUME:
            found.append(
                Link(
                    "resumed", None, record["t"], record.get("by"), record.get("m"), record.get("s")
                )
            )
        elif record["k"] == records.LINK:
            kind = "forked to" if record["how"] == "fork" else "restarted as"
            found.append(Link(kind, record["id"], record["t"], record.get("by"), record.get("m")))
    return found


def _times_out(
    previous: records.Record,
    timer: records.Record,
    steps: dict[int, Step],
    timeouts: dict[int, Step],
) -> bool:
    """Whether the timer record is a wait's timeout, noted on the wait if so.

    That timer (see is_wait_timeout) is the wait's timeout, not a sleep of the code's. (A
    sleep started in the same instant as a wait without one, as in gather(wait_for_event(),
    sleep()), reads the same; the journal holds nothing that tells them apart.)
    """
    number = timer.get("s", -1)
    if number in timeouts:
        return True  # (the code let go of it: the wait's own record tells what happened)
    if is_wait_timeout(previous, timer) and number not in steps:
        wait = timeouts[number] = steps[number - 1]
        wait.timeout_at = timer["at"]
        return True
    return False


def is_wait_timeout(previous: records.Record, record: records.Record) -> bool:
    """Whether `record` arms the timeout of the wait journaled just before it (`previous`).

    wait_for_event(timeout=...) takes the step after its wait for its timer, journaled
    right after the wait's record. Shared with describe(), so that the step counts agree.
    """
    return (
        record.get("k") == records.TIMER
        and not record.get("x")
        and previous.get("k") == records.WAIT
        and not previous.get("x")
        and previous.get("s") == record.get("s", -1) - 1
    )


def _step_of(steps: dict[int, Step], number: int, kind: str, name: str) -> Step:
    step = steps.get(number)
    if step is None:
        step = steps[number] = Step(number, kind, name)
    return step


def _step_record(
    steps: dict[int, Step], waiting: list[Step], record: records.Record, last_time: float
) -> None:
    kind, number = record.get("k"), record.get("s", -1)
    if kind in (records.SCHEDULED, records.RETRY, records.DONE):
        _activity_record(steps, record, last_time)
    elif kind == records.TIMER:
        step = _step_of(steps, number, "timer", "")
        if record.get("x"):
            step.state = "abandoned"
        else:
            step.began = step.began if step.began is not None else last_time
            step.fire_at, step.state = record["at"], "sleeping"
    elif kind == records.FIRED:
        step = _step_of(steps, number, "timer", "")
        step.ended, step.state = record.get("t"), "fired"
    elif kind == records.WAIT:
        step = _step_of(steps, number, "wait", record.get("n", ""))
        if record.get("x"):
            if step.state == "waiting":  # (not one that timed out)
                step.state = "abandoned"
            if step in waiting:
                waiting.remove(step)
        else:
            step.began, step.state = last_time, "waiting"
            waiting.append(step)
    elif kind == records.STATUS:
        step = _step_of(steps, number, "status", "status")
        step.began = step.ended = record.get("t", last_time)
        step.state, step.result = "published", record.get("v")
    elif kind == records.STREAM:  # (an activity's "emit" is no step: the stream shows it)
        step = _step_of(steps, number, "stream", record.get("sn", ""))
        step.began = step.ended = record.get("t", last_time)
        step.state, step.result = "published", record.get("v")


def _activity_record(steps: dict[int, Step], record: records.Record, last_time: float) -> None:
    kind, number = record.get("k"), record.get("s", -1)
    name = record.get("a", "")
    is_child = name.startswith(records.CHILD_PREFIX)
    step = _step_of(
        steps,
        number,
        "child" if is_child else "activity",
        name.removeprefix(records.CHILD_PREFIX) if is_child else name,
    )
    if name and not step.name:
        step.name = name  # (version 1: only the "sched" named the activity)
    if "id" in record and kind == records.SCHEDULED:  # (validated: text)
        step.child_id = record["id"]
        step.detached = bool(record.get("dt"))
    attempt_number = record.get("n", 1)
    attempt = next((a for a in step.attempts if a.number == attempt_number), None)
    if attempt is None:
        began = record.get("b", record.get("t") if kind == records.SCHEDULED else None)
        attempt = Attempt(attempt_number, began if began is not None else last_time)
        step.attempts.append(attempt)
    if "b" in record:
        attempt.began = record["b"]
    if step.began is None:
        step.began = attempt.began
    if kind == records.RETRY:
        attempt.ended, attempt.error = record.get("t"), record.get("e")
        attempt.retry_at = record.get("at")
    elif kind == records.DONE:
        attempt.ended = step.ended = record.get("t")
        if "e" in record:
            attempt.error = step.error = record["e"]
            step.state = "failed"
        else:
            step.result, step.state = record.get("r"), "completed"


def _take_message(built: History, waiting: list[Step], record: records.Record, at: float) -> None:
    if record.get("k") == records.CANCEL:
        built.messages.append(Message(record.get("q", -1), "cancel", record.get("m", ""), None, at))
        return
    if record.get("k") == records.SKIP:
        reason = record.get("reason", "")
        built.messages.append(Message(record.get("q", -1), "skipped", reason, None, at))
        return
    name = record.get("n", "")
    built.messages.append(
        Message(record.get("q", -1), "event", name, record.get("p"), at, record.get("id"))
    )
    for step in waiting:
        if step.name == name:
            waiting.remove(step)
            step.ended, step.state, step.result = at, "received", record.get("p")
            break


def _end(built: History, record: records.Record, at: float) -> None:
    built.ended = at
    if "cont" in record:
        built.outcome, built.result = "continued as new", record["cont"]
    elif "e" in record:
        built.outcome = "cancelled" if record.get("c") else "failed"
        built.error = record["e"]
    else:
        built.outcome, built.result = "completed", record.get("r")
