"""What every record family shares: kinds, format version, shared fields and their checks.

The kinds and the format version; errors and call sites as fields; the checks of clock
readings, counts, names and trace carriers every family's validators use.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

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


PARK = "park"  # a sleeper unloaded here: when it wakes, its inbox cursor (recover() reads it)


SKIP_REASON_LIMIT = 500  # characters of a skip's reason


DELIVERED = frozenset({DONE, FIRED, EVENT, CANCEL})


FROM_INBOX = frozenset({EVENT, CANCEL, SKIP})  # take an inbox position; no step's outcome


STEPPED = frozenset({SCHEDULED, RETRY, DONE, TIMER, FIRED, WAIT, STATUS, STREAM})  # of a step `s`


STREAMED = frozenset({STREAM, EMIT})  # a value of a named stream (`sn`)


NOTES = frozenset({RUN, PARK})  # for readers only: no step, no inbox position; replay skips


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
        PARK,
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


Site = dict[str, Any]  # a step's call site keys: {w} or {w, wp, wl, wn} (the first step's)


def _who(record: Any, by: str | None, reason: str | None) -> None:
    if by is not None:
        record["by"] = by
    if reason is not None:
        record["m"] = reason


def trace_carrier(value: Any) -> dict[str, str] | None:
    """`value` if it is a trace carrier this schema takes (else None: a sender's, dropped)."""
    return value if _carrier_problem(value) is None else None


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


def _who_problem(record: dict[str, Any]) -> str | None:
    """An operator's `by` and `m` (reason): text, when there."""
    for key in ("by", "m"):
        if key in record and type(record[key]) is not str:
            return f"its {key!r} is not text"
    return None


def moment(epoch: float) -> datetime:
    """An epoch time from a record as an aware UTC datetime, clamped to datetime's range.

    For fire times (`at`), which may be any number (inf: a timer armed for ever). The bounds
    are a day inside datetime's, so the result can be shown in any time zone.
    """
    return datetime.fromtimestamp(min(max(epoch, _EARLIEST), _LATEST), UTC)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."
