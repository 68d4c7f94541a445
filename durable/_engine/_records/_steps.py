"""A step's records: an activity's, a durable timer's, an event wait's, a status.

scheduled, retry and done are an activity's attempts and outcome; timer and fired a
durable timer; wait an event wait (let_go: its unloaded form); status set_status.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from ._common import (
    _EARLIEST,
    _LATEST,
    DONE,
    FIRED,
    RETRY,
    SCHEDULED,
    STATUS,
    TIMER,
    WAIT,
    ErrorInfo,
    Record,
    Site,
    _error_problem,
    _is_count,
    _is_moment,
    _is_time,
    _names_problem,
    _site_problem,
    _step_problem,
)


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
    ov: NotRequired[int]  # 1: a fork's override of the source's outcome (see overridden)


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


class StatusRecord(TypedDict):
    k: str
    s: int
    v: Any
    t: float
    w: NotRequired[int]


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
    return record  # type: ignore[return-value]  # (no cast(): a call less per step)


def overridden(record: DoneRecord) -> DoneRecord:
    """A "done" a fork wrote in place of its source's outcome of that step: marked `ov: 1`.

    The result is the operator's, not one an attempt returned (the fork's start record's
    `from.ov` names the step too). Replay reads it as any "done".
    """
    return {**record, "ov": 1}


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


def status(step: int, value: Any, now: float, site: Site | None = None) -> StatusRecord:
    record: StatusRecord = {"k": STATUS, "s": step, "v": value, "t": now}
    if site is not None:
        record.update(site)  # type: ignore[typeddict-item]
    return record


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


def _check_status(record: Record) -> str | None:
    if not _is_time(record.get("t")) or "v" not in record:
        return "its value 'v' or time 't' is missing or of the wrong type"
    return _step_problem(record) or _site_problem(record)
