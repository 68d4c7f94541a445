"""A named stream's values: stream (from workflow code, a step) and emit (from an activity)."""

from __future__ import annotations

from typing import Any, TypedDict

from ._common import EMIT, STREAM, Record, _is_count, _is_time, _step_problem


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


def stream_value(step: int, name: str, value: Any, now: float) -> StreamRecord:
    """Workflow code appended `value` to stream `name` (step `step`)."""
    return {"k": STREAM, "s": step, "sn": name, "v": value, "t": now}


def emitted(
    step: int, attempt: int, name: str, value: Any, *, incarnation: int, now: float
) -> EmitRecord:
    """Attempt `attempt` of activity step `step` appended `value`, in run `incarnation`."""
    return {"k": EMIT, "s": step, "n": attempt, "i": incarnation, "sn": name, "v": value, "t": now}


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
