"""The journal's record schema: every record kind, its builder and its validator.

Records are small msgpack maps with short keys, one per event. Writers build them with the
builders below (one per kind); readers (replay, describe, history, the catalog, the
mailroom, the runtime) get them through `read_journal` / `read_message`, which decode and
validate each record once, here: a checksum-valid record of the wrong shape (an unknown
kind, a missing key, a value of the wrong type, a time no clock could give) is one
`JournalCorrupted` naming the file, the record and what is wrong, and readers index the
validated maps without checking again. Validation is a few dict lookups per record.

Engine format version 2 (the "v" of the start record; the storage frame format is separate):

    start  {k, v, wf: workflow name, id, args: [...], t: start time, seed
            [, gen: generation (continue-as-new), q: first inbox message, parent: id,
               dl: deadline (epoch seconds: the execution_timeout's end)]}
    sched  {k, s: step, a: activity name, d: argument digest, n: attempt, t
            [, id: child workflow id [, dt: 1 if the child was started detached]]}
    retry  {k, s, a, d, n: failed attempt, e: error, at: when the next attempt starts,
            b: when the failed attempt began, t}
    done   {k, s, a, d, n: attempt, r: result, b: when it began, t}
           | {k, s, a, d, e: error, n, b, t}                                       outcome
    timer  {k, s, at: absolute fire time (epoch seconds) [, x: 1 once the code let go of it]}
    fired  {k, s, t}
    wait   {k, s, n: event name [, x: 1]}          the code waits for an event (x: no more)
    event  {k, q: inbox position, n: name, p: payload, t [, id: event id]}   delivered
    cancel {k, q: inbox position, m: reason, t [, id: request id]}   delivered: cancels
    skip   {k, q: inbox position, reason, t}        a message that could not be delivered
    status {k, s, v: value, t}                                     set_status(), published
    stream {k, s, sn: stream name, v: value, t}       Stream.append() in workflow code (a step)
    emit   {k, s: the activity's step, n: its attempt, i: the run's incarnation, sn, v, t}
                                            Stream.append() in an activity (not a step)
    patch  {k, id: patch id, s: the step it was taken before}          patched() said yes
    end    {k, r: result, t} | {k, e: error, t [, c: 1 if cancelled]} | {k, cont: args, t}
           (a cancellation by the deadline: e.kind = "execution-timeout")
    resume {k, at: first record set aside, t [, s: step set aside, by, m: reason, id]}
           an operator resumed an ended workflow: records from `at` on (and step `s`'s
           records anywhere) no longer replay; their inbox positions stay taken
    link   {k, how: "fork" | "restart", id: the new run's id, t [, by, m]}   after the end:
           a run was made from this one (bookkeeping: nothing replays it)

Operations (durable/_operations): a fork's or restart's start record has `from`:
{id: source id, how: "fork" | "restart", t [, by, m, s: the step it runs live from,
ov: the step whose result was overridden, n: records copied after the start record]}. A
fork copies the source's records; its copied inbox records carry `f: 1` (their `q` is the
source's inbox position, not this journal's: they take no position of its own inbox); an
overridden step's "done" carries `ov: 1`.
    run    {k, tc: trace carrier, t}        a run went live, traced (the next run links to it)

Trace carriers (`tc`, on start, event and run records, and on inbox event messages) are
small maps of text to text (W3C `traceparent`, `tracestate`, `baggage`), written only by a
runtime with OpenTelemetry on: the starter's or sender's context, or a run's own. Step
records (sched, retry, done, timer, wait, status) may carry their call site: `w`, the site's
number (the step that first asked from there), and on that first step's records also `wp`
file, `wl` line, `wn` function: where the workflow's code asked for the step. A journal
names each site once however many steps come from it. Both arrived together (journals
before them have neither; replay ignores both, and readers of older versions ignore the
site keys).

A "sched" is written only when it matters: before an at_most_once attempt (synced), or once
an attempt is still running a loop iteration after it started. The first record of a step
names it (activity and digest), so most steps cost one record. Version 1 journals (always a
"sched" first; "retry" and "done" without `a`/`d`) are read as before.

`s` is the step: the position of a command (activity call, child workflow, timer, event
wait, status) in the order the workflow code asked for them. A child workflow is an activity
step named "child:<workflow name>". Events and cancellations come from the inbox, in the
order the runner took them; `q` says how far it has read. Errors are {type, msg, tb[, kind]}
(a child step's: kind "child", "child-cancelled" or "child-id-in-use", with the child's `id`;
the last also `was`, `asked` and `site`, the facts its exception is rebuilt from).
Times are epoch seconds.
Only `done`, `fired`, `event` and `cancel` are delivered to the workflow; the others are
bookkeeping that replay checks (`sched`, `timer`, `wait`, `status`) or resumes from (`retry`,
`patch`); a `skip` takes its inbox position like `event` and `cancel` and delivers nothing (the
message was undecodable, of an unknown kind, or too large to journal; `reason` says which, at
most SKIP_REASON_LIMIT characters). Readers ignore unknown keys, so later
versions may add keys; a start record with a newer `v` is refused.

Inbox messages (storage's inbox, written by senders) are maps too:

    event  {k, n: name, p: payload, id: event id or nil, t}
    cancel {k, m: reason, id: request id or nil, t}

What validation guarantees, beyond the keys above and their types: `s`, `q`, `n`, `gen`
are ints >= 0 (not bools); `t` and `b` are clock readings (finite, between the years 1
and 9999, so any reader can make a datetime of them); `at` and `dl` are any number but NaN
(a timer may be armed for ever: inf); `e` is an error map {type, msg[, tb, kind, id]} whose `id` is
there when `kind` names a child; a "done" has `r` or `e`; an "end" has `r`, `e` or a list
`cont`; `carry` is a list of [name, payload] pairs. The first record is the only "start".
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from .._encoding import decode
from .._errors import JournalCorrupted, UnsupportedJournalFormat
from .._storage._frames import StoredRecord

FORMAT_VERSION = 2

START = "start"
SCHEDULED = "sched"
RETRY = "retry"
DONE = "done"
TIMER = "timer"
FIRED = "fired"
WAIT = "wait"
EVENT = "event"
CANCEL = "cancel"
STATUS = "status"
STREAM = "stream"
EMIT = "emit"
PATCH = "patch"
END = "end"
SKIP = "skip"
RESUME = "resume"
LINK = "link"
OPERATED = frozenset({RESUME, LINK})  # an operator's records: never delivered, no step's
RUN = "run"
SKIP_REASON_LIMIT = 500  # characters of a skip's reason

DELIVERED = frozenset({DONE, FIRED, EVENT, CANCEL})
FROM_INBOX = frozenset({EVENT, CANCEL, SKIP})  # take an inbox position; no step's outcome
STEPPED = frozenset({SCHEDULED, RETRY, DONE, TIMER, FIRED, WAIT, STATUS, STREAM})  # of a step `s`
STREAMED = frozenset({STREAM, EMIT})  # a value of a named stream (`sn`)
NOTES = frozenset({RUN})  # for readers only: no step, no inbox position; replay skips
KNOWN = frozenset(
    {
        START,
        SCHEDULED,
        RETRY,
        DONE,
        TIMER,
        FIRED,
        WAIT,
        EVENT,
        CANCEL,
        SKIP,
        STATUS,
        STREAM,
        EMIT,
        PATCH,
        END,
        RESUME,
        LINK,
        RUN,
    }
)
LINK_KINDS = frozenset({"fork", "restart"})  # a link's `how`, a start's `from.how`
CARRIER_ENTRIES = 16  # a trace carrier's most entries
CARRIER_TEXT = 8192  # and the longest key or value (baggage may be long; tracestate is 512)
CHILD_PREFIX = "child:"
# Errors of a child step: they name the child. "child-id-in-use": the id belongs to a run
# that is not this call's (other workflow, other arguments, another parent).
CHILD_KINDS = frozenset({"child", "child-cancelled", "child-id-in-use"})
TIMED_OUT = "execution-timeout"  # the end error's kind when the deadline's cancel ended it
# The request id of the cancellation a passed deadline posts: one per workflow id, whatever
# the restarts and generations (the inbox refuses it twice), and how replay tells it apart.
DEADLINE_CANCEL_ID = "durable:execution-timeout"

# A validated record: one of the typed dicts below, told apart by its "k". Readers index it
# as a plain dict (the validators have checked every key they read).
Record = dict[str, Any]


# --- the kinds -----------------------------------------------------------------------------


class ErrorInfo(TypedDict):
    """An exception as a record field (`e`)."""

    type: str
    msg: str
    tb: NotRequired[str]
    # "in-doubt", "child", "child-cancelled", "child-id-in-use", "execution-timeout"
    kind: NotRequired[str]
    id: NotRequired[str]  # the child workflow's id, for the child kinds
    was: NotRequired[str]  # child-id-in-use: what the id's journal holds
    asked: NotRequired[str]  # child-id-in-use: what the call asked for
    site: NotRequired[str]  # child-id-in-use: the call site of run_child


class StartRecord(TypedDict):
    k: str
    v: int
    wf: str
    id: str
    args: list[Any]
    t: float
    seed: int
    gen: NotRequired[int]
    q: NotRequired[int]
    parent: NotRequired[str]
    carry: NotRequired[list[list[Any]]]
    dl: NotRequired[float]  # the deadline: start time + execution_timeout (kept by generations)
    # (`from`, an Origin, is a keyword: set it with start(**{"from": ...}))
    tc: NotRequired[dict[str, str]]  # the starter's trace carrier (kept by generations)
    so: NotRequired[dict[str, int]]  # values each stream had before this generation


class ScheduledRecord(TypedDict):
    k: str
    s: int
    a: str
    d: str
    n: int
    t: float
    id: NotRequired[str]  # a child workflow's id
    dt: NotRequired[int]  # 1: the child was started detached (it outlives its parent)
    w: NotRequired[int]  # the call site's number (and on its first step, wp / wl / wn)


class RetryRecord(TypedDict):
    k: str
    s: int
    a: NotRequired[str]  # (format 1: only "sched" names the activity)
    d: NotRequired[str]
    n: int
    e: ErrorInfo
    at: float
    b: NotRequired[float]
    t: float
    w: NotRequired[int]


class DoneRecord(TypedDict):
    k: str
    s: int
    a: NotRequired[str]
    d: NotRequired[str]
    n: NotRequired[int]
    r: NotRequired[Any]  # the result, or
    e: NotRequired[ErrorInfo]  # the error
    b: NotRequired[float]
    t: float
    w: NotRequired[int]


class TimerRecord(TypedDict):
    k: str
    s: int
    at: float
    x: NotRequired[int]
    w: NotRequired[int]


class FiredRecord(TypedDict):
    k: str
    s: int
    t: float


class WaitRecord(TypedDict):
    k: str
    s: int
    n: str
    x: NotRequired[int]
    w: NotRequired[int]


class EventRecord(TypedDict):
    k: str
    q: int
    n: str
    p: Any
    t: float
    id: NotRequired[str]
    tc: NotRequired[dict[str, str]]  # the sender's trace carrier


class CancelRecord(TypedDict):
    k: str
    q: int
    m: str
    t: float
    id: NotRequired[str]  # the request id (DEADLINE_CANCEL_ID: the deadline's)
    tc: NotRequired[dict[str, str]]  # the canceller's trace context (OpenTelemetry on)


class SkipRecord(TypedDict):
    k: str
    q: int
    reason: str
    t: float


class StatusRecord(TypedDict):
    k: str
    s: int
    v: Any
    t: float
    w: NotRequired[int]


Site = dict[str, Any]  # a step's call site keys: {w} or {w, wp, wl, wn} (the first step's)


class RunRecord(TypedDict):
    """A traced run went live here: its context, for the next run's link."""

    k: str
    tc: dict[str, str]
    t: float


class StreamRecord(TypedDict):
    """A value workflow code appended to stream `sn` (a step `s` of its own)."""

    k: str
    s: int
    sn: str
    v: Any
    t: float


class EmitRecord(TypedDict):
    """A value an activity appended to stream `sn`, at attempt `n` of step `s`, as it ran."""

    k: str
    s: int
    n: int
    sn: str
    v: Any
    i: int  # a random number per loaded run: tells a rerun of an attempt after a crash apart
    t: float


class PatchRecord(TypedDict):
    k: str
    id: str
    s: int


class EndRecord(TypedDict):
    k: str
    t: float
    r: NotRequired[Any]
    e: NotRequired[ErrorInfo]
    c: NotRequired[int]
    cont: NotRequired[list[Any]]
    q: NotRequired[int]
    carry: NotRequired[list[list[Any]]]


class ResumeRecord(TypedDict):
    k: str
    at: int  # the first record set aside (an index in this generation's journal)
    t: float
    s: NotRequired[int]  # the failed step, whose earlier records are set aside too
    by: NotRequired[str]  # who asked
    m: NotRequired[str]  # why
    id: NotRequired[str]  # the request id (a retry with it writes nothing twice)


class LinkRecord(TypedDict):
    k: str
    how: str  # "fork" or "restart"
    id: str  # the new run's workflow id
    t: float
    by: NotRequired[str]
    m: NotRequired[str]


class Origin(TypedDict):
    """A start record's `from`: the run this one was forked or restarted from."""

    id: str
    how: str
    t: float
    by: NotRequired[str]
    m: NotRequired[str]
    s: NotRequired[int]  # a fork: the first step it runs live
    ov: NotRequired[int]  # a fork: the step whose recorded result it overrode
    n: NotRequired[int]  # a fork: how many records it copied after its start record


class EventMessage(TypedDict):
    """An inbox message carrying an event (not a journal record: the inbox's)."""

    k: str
    n: str
    p: Any
    id: str | None
    t: float
    tc: NotRequired[dict[str, str]]


class CancelMessage(TypedDict):
    k: str
    m: str
    id: str | None
    t: float
    tc: NotRequired[dict[str, str]]


# --- builders ------------------------------------------------------------------------------


def start(
    workflow_name: str,
    workflow_id: str,
    arguments: list[Any],
    now: float,
    seed: int,
    **extra: Any,
) -> StartRecord:
    """A journal's first record (extra: gen, q, carry, parent, dl)."""
    record: StartRecord = {
        "k": START,
        "v": FORMAT_VERSION,
        "wf": workflow_name,
        "id": workflow_id,
        "args": arguments,
        "t": now,
        "seed": seed,
    }
    record.update(extra)  # type: ignore[typeddict-item]
    return record


def scheduled(
    step: int,
    activity: str,
    digest: str,
    attempt: int,
    *,
    now: float,
    child: str | None = None,
    detached: bool = False,
    site: Site | None = None,
) -> ScheduledRecord:
    """An attempt under way (an at_most_once intent, a long one, a child's start).

    `detached` (children only; default False, and what a record without `dt` means): the
    child is not cancelled when its parent ends. `site`: the call site's keys (`w`...).
    """
    record: ScheduledRecord = {
        "k": SCHEDULED,
        "s": step,
        "a": activity,
        "d": digest,
        "n": attempt,
        "t": now,
    }
    if child is not None:
        record["id"] = child
        if detached:
            record["dt"] = 1
    if site is not None:
        record.update(site)  # type: ignore[typeddict-item]
    return record


def retry(
    step: int,
    activity: str,
    digest: str,
    attempt: int,
    *,
    error: ErrorInfo,
    retry_at: float,
    began: float,
    now: float,
    site: Site | None = None,
) -> RetryRecord:
    """A failed attempt that will be tried again at `retry_at`."""
    record: RetryRecord = {
        "k": RETRY,
        "s": step,
        "a": activity,
        "d": digest,
        "n": attempt,
        "e": error,
        "at": retry_at,
        "b": began,
        "t": now,
    }
    if site is not None:
        record.update(site)  # type: ignore[typeddict-item]
    return record


def done(
    step: int,
    activity: str,
    digest: str,
    attempt: int,
    *,
    now: float,
    result: Any = None,
    error: ErrorInfo | None = None,
    began: float | None = None,
    site: Site | None = None,
) -> DoneRecord:
    """A step's outcome: its result, or (`error` given) its failure."""
    record: dict[str, Any]  # (built in the order it always was: the same bytes as before)
    if error is None:
        record = {"k": DONE, "s": step, "a": activity, "d": digest, "n": attempt, "r": result}
    else:
        record = {"k": DONE, "s": step, "a": activity, "d": digest, "e": error, "n": attempt}
    if began is not None:
        record["b"] = began
    record["t"] = now
    if site is not None:
        record.update(site)
    return cast(DoneRecord, record)


def timer(step: int, fire_at: float, site: Site | None = None) -> TimerRecord:
    record: TimerRecord = {"k": TIMER, "s": step, "at": fire_at}
    if site is not None:
        record.update(site)  # type: ignore[typeddict-item]
    return record


def fired(step: int, now: float) -> FiredRecord:
    return {"k": FIRED, "s": step, "t": now}


def wait(step: int, name: str, site: Site | None = None) -> WaitRecord:
    record: WaitRecord = {"k": WAIT, "s": step, "n": name}
    if site is not None:
        record.update(site)  # type: ignore[typeddict-item]
    return record


def let_go(record: TimerRecord | WaitRecord) -> TimerRecord | WaitRecord:
    """The record saying the code let go of this timer or wait (x: 1)."""
    return {**record, "x": 1}  # type: ignore[return-value]


def event(
    position: int,
    name: str,
    payload: Any,
    now: float,
    event_id: Any = None,
    *,
    carrier: dict[str, str] | None = None,
) -> EventRecord:
    record: EventRecord = {"k": EVENT, "q": position, "n": name, "p": payload, "t": now}
    if event_id is not None:
        record["id"] = event_id
    if carrier is not None:
        record["tc"] = carrier
    return record


def cancel(
    position: int,
    reason: str,
    now: float,
    request_id: str | None = None,
    *,
    carrier: dict[str, str] | None = None,
) -> CancelRecord:
    record: CancelRecord = {"k": CANCEL, "q": position, "m": reason, "t": now}
    if request_id is not None:
        record["id"] = request_id
    if carrier is not None:
        record["tc"] = carrier
    return record


def skip_record(position: int, reason: str, now: float) -> SkipRecord:
    """Inbox message `position` could not be delivered, and why."""
    return {"k": SKIP, "q": position, "reason": reason[:SKIP_REASON_LIMIT], "t": now}


def status(step: int, value: Any, now: float, site: Site | None = None) -> StatusRecord:
    record: StatusRecord = {"k": STATUS, "s": step, "v": value, "t": now}
    if site is not None:
        record.update(site)  # type: ignore[typeddict-item]
    return record


def run(carrier: dict[str, str], now: float) -> RunRecord:
    """A traced run went live: its own context (the next run's span links to it)."""
    return {"k": RUN, "tc": carrier, "t": now}


def stream_value(step: int, name: str, value: Any, now: float) -> StreamRecord:
    """Workflow code appended `value` to stream `name` (step `step`)."""
    return {"k": STREAM, "s": step, "sn": name, "v": value, "t": now}


def emitted(
    step: int, attempt: int, name: str, value: Any, *, incarnation: int, now: float
) -> EmitRecord:
    """Attempt `attempt` of activity step `step` appended `value`, in run `incarnation`."""
    return {"k": EMIT, "s": step, "n": attempt, "i": incarnation, "sn": name, "v": value, "t": now}


def patch(patch_id: str, step: int) -> PatchRecord:
    return {"k": PATCH, "id": patch_id, "s": step}


def end_result(result: Any, now: float) -> EndRecord:
    return {"k": END, "r": result, "t": now}


def end_failure(error: ErrorInfo, now: float, *, cancelled: bool) -> EndRecord:
    record: EndRecord = {"k": END, "e": error, "t": now}
    if cancelled:
        record["c"] = 1
    return record


def end_continued(
    arguments: list[Any], inbox_next: int, carry: list[list[Any]], now: float
) -> EndRecord:
    return {"k": END, "cont": arguments, "q": inbox_next, "carry": carry, "t": now}


def resume(
    first_set_aside: int,
    now: float,
    *,
    step: int | None = None,
    by: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
) -> ResumeRecord:
    """An operator's resumption: records from `first_set_aside` on no longer replay.

    Nor do the records of `step` (the failed one) before it: it runs again from attempt 1.
    """
    record: ResumeRecord = {"k": RESUME, "at": first_set_aside, "t": now}
    if step is not None:
        record["s"] = step
    _who(record, by, reason)
    if request_id is not None:
        record["id"] = request_id
    return record


def link(how: str, new_id: str, now: float, *, by: str | None, reason: str | None) -> LinkRecord:
    """A run `how` ("fork", "restart") was made from this ended one, under `new_id`."""
    record: LinkRecord = {"k": LINK, "how": how, "id": new_id, "t": now}
    _who(record, by, reason)
    return record


def origin(
    source: str, how: str, now: float, *, by: str | None, reason: str | None, **fork: int
) -> Origin:
    """A start record's `from` (fork: s, ov, n)."""
    made: Origin = {"id": source, "how": how, "t": now}
    _who(made, by, reason)
    made.update(fork)  # type: ignore[typeddict-item]
    return made


def _who(record: Any, by: str | None, reason: str | None) -> None:
    if by is not None:
        record["by"] = by
    if reason is not None:
        record["m"] = reason


def event_message(
    name: str,
    payload: Any,
    event_id: str | None,
    now: float,
    carrier: dict[str, str] | None = None,
) -> EventMessage:
    message: EventMessage = {"k": EVENT, "n": name, "p": payload, "id": event_id, "t": now}
    if carrier is not None:
        message["tc"] = carrier
    return message


def trace_carrier(value: Any) -> dict[str, str] | None:
    """`value` if it is a trace carrier this schema takes (else None: a sender's, dropped)."""
    return value if _carrier_problem(value) is None else None


def cancel_message(
    reason: str, request_id: str | None, now: float, carrier: dict[str, str] | None = None
) -> CancelMessage:
    message: CancelMessage = {"k": CANCEL, "m": reason, "id": request_id, "t": now}
    if carrier is not None:
        message["tc"] = carrier
    return message


def describe_error(error: BaseException, *, kind: str | None = None) -> ErrorInfo:
    """An exception as a record field: its type's name, message and traceback text."""
    klass = type(error)
    module = klass.__module__
    name = klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"
    described: ErrorInfo = {
        "type": name,
        "msg": str(error),
        "tb": "".join(traceback.format_exception(error)),
    }
    if kind is not None:
        described["kind"] = kind
    return described


# --- validators ----------------------------------------------------------------------------
# One per kind: the problem with a decoded map of that kind, in words, or None if it is fine.
# Straight-line checks (replay runs one per step); type() is, not isinstance, so True is no
# step number and a subclass never gets in (decode makes only the exact types).

# Clock readings: finite, and a day inside datetime's range, so that a datetime of them in
# any time zone exists.
_EARLIEST = -62135596800.0 + 86400  # 0001-01-02 UTC
_LATEST = 253402300799.0 - 86400  # 9999-12-30 UTC

_Check = Callable[[Record], "str | None"]


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_time(value: Any) -> bool:
    return (type(value) is float or type(value) is int) and _EARLIEST <= value <= _LATEST


def _is_moment(value: Any) -> bool:  # a fire or retry time: inf allowed, NaN not
    return (type(value) is float and not math.isnan(value)) or type(value) is int


def _error_problem(error: Any) -> str | None:
    if type(error) is not dict:
        return "its error 'e' is not a map"
    if type(error.get("type")) is not str or type(error.get("msg")) is not str:
        return "its error 'e' lacks a text 'type' or 'msg'"
    if "tb" in error and type(error["tb"]) is not str:
        return "its error's traceback 'tb' is not text"
    kind = error.get("kind")
    if kind is not None and type(kind) is not str:
        return "its error's 'kind' is not text"
    if kind in CHILD_KINDS and type(error.get("id")) is not str:
        return "its child error names no child id"
    return _child_error_problem(error)


def _child_error_problem(error: dict[str, Any]) -> str | None:
    """The facts a child-id-in-use error keeps (text, when there)."""
    for key in ("was", "asked", "site"):
        if key in error and type(error[key]) is not str:
            return f"its error's {key!r} is not text"
    return None


def _names_problem(record: Record, required: bool) -> str | None:
    """The activity name `a` and argument digest `d` (required, or both or neither)."""
    name, digest = record.get("a"), record.get("d")
    if type(name) is str and type(digest) is str:
        return None
    if not required and "a" not in record and "d" not in record:
        return None
    return "its activity name 'a' or digest 'd' is missing or not text"


def _step_problem(record: Record) -> str | None:
    return None if _is_count(record.get("s")) else "its step 's' is not an int >= 0"


def _carrier_problem(carrier: Any) -> str | None:
    """A trace carrier: at most CARRIER_ENTRIES text keys and values, none too long."""
    if type(carrier) is not dict or len(carrier) > CARRIER_ENTRIES:
        return f"its trace carrier 'tc' is not a map of at most {CARRIER_ENTRIES} entries"
    for key, value in carrier.items():
        if (
            type(key) is not str
            or type(value) is not str
            or len(key) > CARRIER_TEXT
            or len(value) > CARRIER_TEXT
        ):
            return "its trace carrier 'tc' holds something other than short text"
    return None


def _site_problem(record: Record) -> str | None:
    """A step record's call site keys, when there: `w` a count; `wp`, `wl`, `wn` all or none."""
    if "w" in record and not _is_count(record["w"]):
        return "its call site 'w' is not an int >= 0"
    if ("wp" in record or "wl" in record or "wn" in record) and not (
        "w" in record
        and type(record.get("wp")) is str
        and _is_count(record.get("wl"))
        and type(record.get("wn")) is str
    ):
        return "its call site ('wp' path, 'wl' line, 'wn' function) is incomplete"
    return None


def _carry_problem(carry: Any) -> str | None:
    if type(carry) is not list:
        return "its 'carry' is not a list"
    for item in carry:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
            return "its 'carry' holds something other than [name, payload] pairs"
    return None


STREAM_OFFSETS_KEPT = 1000  # stream names whose counts a generation hands on (first ones)


def _stream_offsets_problem(offsets: Any) -> str | None:
    if type(offsets) is not dict or len(offsets) > STREAM_OFFSETS_KEPT:
        return f"its stream offsets 'so' are not a map of at most {STREAM_OFFSETS_KEPT} names"
    for name, count in offsets.items():
        if type(name) is not str or not _is_count(count):
            return "its stream offsets 'so' hold something other than name: count >= 0"
    return None


def _check_start(record: Record) -> str | None:
    for key, expected in (("wf", str), ("id", str), ("args", list), ("seed", int)):
        if type(record.get(key)) is not expected:
            return f"its {key!r} is missing or not {expected.__name__}"
    if not _is_time(record.get("t")):
        return "its start time 't' is missing or not a time"
    for key in ("gen", "q"):
        if key in record and not _is_count(record[key]):
            return f"its {key!r} is not an int >= 0"
    if ("parent" in record and type(record["parent"]) is not str) or (
        "dl" in record and not _is_moment(record["dl"])
    ):
        return "its 'parent' is not text, or its deadline 'dl' not a number"
    for key, problem_of in (
        ("tc", _carrier_problem),
        ("carry", _carry_problem),
        ("so", _stream_offsets_problem),
    ):
        if key in record and (problem := problem_of(record[key])) is not None:
            return problem
    return _origin_problem(record["from"]) if "from" in record else None


def _who_problem(record: dict[str, Any]) -> str | None:
    """An operator's `by` and `m` (reason): text, when there."""
    for key in ("by", "m"):
        if key in record and type(record[key]) is not str:
            return f"its {key!r} is not text"
    return None


def _origin_problem(made: Any) -> str | None:
    if type(made) is not dict:
        return "its 'from' is not a map"
    if type(made.get("id")) is not str or made.get("how") not in LINK_KINDS:
        return "its 'from' lacks a source id or a known 'how'"
    if not _is_time(made.get("t")):
        return "its 'from' has no time 't'"
    for key in ("s", "ov", "n"):
        if key in made and not _is_count(made[key]):
            return f"its 'from' has a {key!r} that is not an int >= 0"
    return _who_problem(made)


def _check_resume(record: Record) -> str | None:
    if type(record.get("at")) is not int or record["at"] < 1 or not _is_time(record.get("t")):
        return "its first record set aside 'at' (an int >= 1) or time 't' is missing or wrong"
    if "s" in record and not _is_count(record["s"]):
        return "its step 's' is not an int >= 0"
    if "id" in record and type(record["id"]) is not str:
        return "its request id 'id' is not text"
    return _who_problem(record)


def _check_link(record: Record) -> str | None:
    if record.get("how") not in LINK_KINDS or type(record.get("id")) is not str:
        return "its 'how' (fork or restart) or the new run's 'id' is missing or wrong"
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    return _who_problem(record)


def _check_scheduled(record: Record) -> str | None:
    if (
        not _is_count(record.get("s"))
        or not _is_count(record.get("n"))
        or not _is_time(record.get("t"))
    ):
        return "its step 's', attempt 'n' or time 't' is missing or of the wrong type"
    if "b" in record and not _is_time(record["b"]):
        return "its 'b' is not a time"
    if "id" in record and type(record["id"]) is not str:
        return "its child id 'id' is not text"
    if "dt" in record and (type(record["dt"]) is not int or record["dt"] not in (0, 1)):
        return "its 'dt' (detached) is not 0 or 1"
    if "dt" in record and "id" not in record:
        return "its 'dt' (detached) is on a step that names no child"
    return _names_problem(record, required=True) or _site_problem(record)


def _check_retry(record: Record) -> str | None:
    if (
        not _is_count(record.get("s"))
        or not _is_count(record.get("n"))
        or not _is_time(record.get("t"))
        or not _is_moment(record.get("at"))
        or ("b" in record and not _is_time(record["b"]))
    ):
        return "its step 's', attempt 'n' or a time ('t', 'at', 'b') is missing or wrong"
    return (
        _names_problem(record, required=False)
        or _error_problem(record.get("e"))
        or _site_problem(record)
    )


def _check_done(record: Record) -> str | None:
    # The record replay reads most: one pass of inline checks (no helper calls) when it is fine.
    step, now, attempt = record.get("s"), record.get("t"), record.get("n", 0)
    began = record.get("b", now)
    if not (
        type(step) is int
        and step >= 0
        and type(attempt) is int
        and attempt >= 0
        and (type(now) is float or type(now) is int)
        and _EARLIEST <= now <= _LATEST
        and (type(began) is float or type(began) is int)
        and _EARLIEST <= began <= _LATEST
    ):
        return "its step 's', attempt 'n' or a time ('t', 'b') is missing or wrong"
    if ("a" in record or "d" in record) and not (
        type(record.get("a")) is str and type(record.get("d")) is str
    ):
        return "its activity name 'a' or digest 'd' is missing or not text"
    if "w" in record:  # (a plain site number inline; a site's naming through the helper)
        site = record["w"]
        if (
            type(site) is not int or site < 0 or "wp" in record or "wl" in record or "wn" in record
        ) and (problem := _site_problem(record)) is not None:
            return problem
    if "e" in record:
        return _error_problem(record["e"])
    return None if "r" in record else "it has neither a result 'r' nor an error 'e'"


def _check_timer(record: Record) -> str | None:
    if not _is_moment(record.get("at")):
        return "its fire time 'at' is missing or not a number"
    return _step_problem(record) or _untimed_problem(record) or _site_problem(record)


def _untimed_problem(record: Record) -> str | None:
    """A kind without a time `t` may not have one of another type (readers use any `t`)."""
    return "its time 't' is not a time" if "t" in record and not _is_time(record["t"]) else None


def _check_fired(record: Record) -> str | None:
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    return _step_problem(record)


def _check_wait(record: Record) -> str | None:
    if type(record.get("n")) is not str:
        return "its event name 'n' is missing or not text"
    return _step_problem(record) or _untimed_problem(record) or _site_problem(record)


def _check_event(record: Record) -> str | None:
    if not _is_count(record.get("q")) or not _is_time(record.get("t")):
        return "its inbox position 'q' or time 't' is missing or of the wrong type"
    if "f" in record and record["f"] != 1:
        return "its 'f' (copied by a fork) is not 1"
    if type(record.get("n")) is not str or "p" not in record:
        return "its event name 'n' or payload 'p' is missing"
    if record.get("id") is not None and type(record["id"]) is not str:
        return "its event id 'id' is not text"
    return _carrier_problem(record["tc"]) if "tc" in record else None


def _check_cancel(record: Record) -> str | None:
    if not _is_count(record.get("q")) or not _is_time(record.get("t")):
        return "its inbox position 'q' or time 't' is missing or of the wrong type"
    if "f" in record and record["f"] != 1:
        return "its 'f' (copied by a fork) is not 1"
    if "id" in record and type(record["id"]) is not str:
        return "its request id 'id' is not text"
    if type(record.get("m")) is not str:
        return "its reason 'm' is missing or not text"
    return _carrier_problem(record["tc"]) if "tc" in record else None


def _check_skip(record: Record) -> str | None:
    if not _is_count(record.get("q")) or not _is_time(record.get("t")):
        return "its inbox position 'q' or time 't' is missing or of the wrong type"
    if "f" in record and record["f"] != 1:
        return "its 'f' (copied by a fork) is not 1"
    return None if type(record.get("reason")) is str else "its 'reason' is missing or not text"


def _check_status(record: Record) -> str | None:
    if not _is_time(record.get("t")) or "v" not in record:
        return "its value 'v' or time 't' is missing or of the wrong type"
    return _step_problem(record) or _site_problem(record)


def _check_run(record: Record) -> str | None:
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    return _carrier_problem(record.get("tc"))


def _check_stream(record: Record) -> str | None:
    if not _is_time(record.get("t")) or "v" not in record:
        return "its value 'v' or time 't' is missing or of the wrong type"
    if type(record.get("sn")) is not str:
        return "its stream name 'sn' is missing or not text"
    return _step_problem(record)


def _check_emit(record: Record) -> str | None:
    if not _is_count(record.get("n")) or not _is_count(record.get("i")):
        return "its attempt 'n' or its run's incarnation 'i' is missing or not an int >= 0"
    return _check_stream(record)


def _check_patch(record: Record) -> str | None:
    if type(record.get("id")) is not str:
        return "its patch id 'id' is missing or not text"
    return _step_problem(record) or _untimed_problem(record)


def _check_end(record: Record) -> str | None:
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    if "cont" in record:
        if type(record["cont"]) is not list:
            return "its next arguments 'cont' are not a list"
        if "q" in record and not _is_count(record["q"]):
            return "its inbox position 'q' is not an int >= 0"
        return _carry_problem(record["carry"]) if "carry" in record else None
    if "e" in record:
        return _error_problem(record["e"])
    return None if "r" in record else "it has no result 'r', error 'e' or 'cont'"


_CHECKS: dict[str, _Check] = {
    START: _check_start,
    SCHEDULED: _check_scheduled,
    RETRY: _check_retry,
    DONE: _check_done,
    TIMER: _check_timer,
    FIRED: _check_fired,
    WAIT: _check_wait,
    EVENT: _check_event,
    CANCEL: _check_cancel,
    SKIP: _check_skip,
    STATUS: _check_status,
    STREAM: _check_stream,
    EMIT: _check_emit,
    PATCH: _check_patch,
    END: _check_end,
    RESUME: _check_resume,
    LINK: _check_link,
    RUN: _check_run,
}


def _record_problem(record: Any, index: int) -> str | None:
    """What is wrong with the decoded record at `index` of a journal (None: nothing)."""
    if type(record) is not dict:
        return f"record {index} is a {type(record).__name__}, not a map"
    kind = record.get("k")
    if type(kind) is not str:
        return f"record {index} has no kind 'k'"
    if (kind == START) != (index == 0):
        return (
            f"record {index} is a start record (the first one only may be)"
            if index
            else f"the first record is a {kind!r} record, not a workflow start record"
        )
    check = _CHECKS.get(kind)
    if check is None:
        if kind in KNOWN:  # a kind added without a validator yet: its map is all we know
            return None
        return f"record {index} is of an unknown kind {kind[:40]!r} (written by a newer durable?)"
    problem = check(record)
    return None if problem is None else f"record {index} ({kind!r}) is malformed: {problem}"


def check_record(record: Any, *, path: Path | str, offset: int, index: int) -> Record:
    """`record`, the decoded record at `index` (byte `offset`) of journal `path`, validated.

    Raises:
        JournalCorrupted: it is not a record of this format (says which and why).
        UnsupportedJournalFormat: a start record of a newer format version.
    """
    if index == 0 and type(record) is dict and record.get("k") == START:
        version = record.get("v")
        if type(version) is not int or version < 1:
            raise JournalCorrupted(
                path=path, offset=offset, reason="the start record has no format version 'v'"
            )
        if version > FORMAT_VERSION:
            raise UnsupportedJournalFormat(path=path, found=version, supported=FORMAT_VERSION)
    problem = _record_problem(record, index)
    if problem is not None:
        raise JournalCorrupted(path=path, offset=offset, reason=_short(problem))
    return record  # type: ignore[no-any-return]


def read_journal(
    stored: Iterable[StoredRecord], *, path: Path | str, first_index: int = 0
) -> list[Record]:
    """A journal's records, decoded and validated (the start record first).

    `first_index`: the index of the first of `stored` in its journal (a page read from
    further on: the start record is record 0 only).

    Raises:
        JournalCorrupted: a record is not valid msgpack, or not a record of this format.
        UnsupportedJournalFormat: the journal was written by a newer durable.
    """
    found: list[Record] = []
    append, checks = found.append, _CHECKS
    for index, (offset, payload) in enumerate(stored, first_index):
        record = decode(payload, path=path, offset=offset)
        # The common case inline (replay reads one record per step); the rest below.
        if (
            index
            and type(record) is dict
            and type(kind := record.get("k")) is str
            and kind != START
            and (check := checks.get(kind)) is not None
            and check(record) is None
        ):
            append(record)
        else:
            append(check_record(record, path=path, offset=offset, index=index))
    return found


def message_problem(message: Any) -> str | None:  # noqa: PLR0911 (one return a problem)
    """What is wrong with a decoded inbox message (None: a valid event or cancel)."""
    if type(message) is not dict:
        return f"the message is a {type(message).__name__}, not a map"
    kind = message.get("k")
    if kind not in (EVENT, CANCEL):
        return f"the message is of an unknown kind {_short(repr(kind), 40)}"
    if not _is_time(message.get("t")):
        return "its time 't' is missing or not a time"
    if message.get("id") is not None and type(message["id"]) is not str:
        return "its id is not text"
    if kind == EVENT:
        if type(message.get("n")) is not str or "p" not in message:
            return "its event name 'n' or payload 'p' is missing"
    elif type(message.get("m")) is not str:
        return "its reason 'm' is missing or not text"
    return None


def read_message(stored: StoredRecord, *, path: Path | str) -> Record:
    """An inbox message, decoded and validated.

    Raises:
        JournalCorrupted: it is not valid msgpack, or not an event or cancel message.
    """
    message = decode(stored.payload, path=path, offset=stored.offset)
    problem = message_problem(message)
    if problem is not None:
        raise JournalCorrupted(path=path, offset=stored.offset, reason=_short(problem))
    return message  # type: ignore[no-any-return]


def moment(epoch: float) -> datetime:
    """An epoch time from a record as an aware UTC datetime, clamped to datetime's range.

    For fire times (`at`), which may be any number (inf: a timer armed for ever). The bounds
    are a day inside datetime's, so the result can be shown in any time zone.
    """
    return datetime.fromtimestamp(min(max(epoch, _EARLIEST), _LATEST), UTC)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."
