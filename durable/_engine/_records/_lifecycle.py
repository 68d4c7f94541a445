"""A run's lifecycle records: start, end, run, patch, and an operator's resume and link."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from ._common import (
    END,
    FORMAT_VERSION,
    LINK,
    LINK_KINDS,
    PARK,
    PATCH,
    RESUME,
    RUN,
    START,
    ErrorInfo,
    Record,
    _carrier_problem,
    _error_problem,
    _is_count,
    _is_moment,
    _is_time,
    _step_problem,
    _who,
    _who_problem,
)
from ._steps import _untimed_problem


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


# A start record's `from` (a Python keyword: the one key a class-syntax TypedDict cannot name).
_FromKey = TypedDict("_FromKey", {"from": NotRequired[Origin]})


class StartRecord(_FromKey):
    k: str
    v: int
    wf: str
    id: str
    args: list[Any]
    t: float
    seed: int
    gen: NotRequired[int]  # the generation (continue-as-new): 0, or none, is the first
    q: NotRequired[int]  # a later generation's first inbox position
    parent: NotRequired[str]  # a child's parent workflow id
    carry: NotRequired[list[list[Any]]]  # events a generation received and handed on
    dl: NotRequired[float]  # the deadline: start time + execution_timeout (kept by generations)
    tc: NotRequired[dict[str, str]]  # the starter's trace carrier (kept by generations)
    so: NotRequired[dict[str, int]]  # values each stream had before this generation
    hs: NotRequired[int]  # its tasks' hash salt (none: 0, as every journal before it)


class StartFields(TypedDict, total=False):
    """start()'s optional fields by what they mean, for callers that hand them on (None: none)."""

    generation: int | None
    inbox_next: int | None
    carry: list[list[Any]] | None
    parent: str | None
    deadline: float | None
    trace: dict[str, str] | None
    stream_offsets: dict[str, int] | None
    origin: Origin | None
    task_salt: int | None


class RunRecord(TypedDict):
    """A traced run went live here: its context, for the next run's link."""

    k: str
    tc: dict[str, str]
    t: float


class ParkRecord(TypedDict):
    """The run was unloaded here, idle: nothing happens before `at` unless mail comes.

    Written as a sleeper is unloaded (with its last records, no sync of its own), last in
    its journal until it is loaded again: recover() parks a journal that ends with one as a
    row, without a replay. Replay skips it; a journal without one (older, or it was lost)
    is replayed to learn its wake-up.
    """

    k: str
    at: float  # the wake-up time (inf: only mail wakes it)
    qn: int  # the first inbox position its run had not taken (not `q`: it takes none)
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


def start(
    workflow_name: str,
    workflow_id: str,
    arguments: list[Any],
    now: float,
    seed: int,
    *,
    generation: int | None = None,
    inbox_next: int | None = None,
    carry: list[list[Any]] | None = None,
    parent: str | None = None,
    deadline: float | None = None,
    trace: dict[str, str] | None = None,
    stream_offsets: dict[str, int] | None = None,
    origin: Origin | None = None,
    task_salt: int | None = None,
    **keys: Any,
) -> StartRecord:
    """A journal's first record; each optional field is written only when given (not None).

    Args:
        workflow_name: `wf`, the workflow's name.
        workflow_id: `id`.
        arguments: `args`, the workflow's arguments.
        now: `t`, the start time.
        seed: `seed`, of durable.random().
        generation: `gen`, the generation a continue-as-new made (none: the first).
        inbox_next: `q`, the first inbox position a later generation has not taken.
        carry: `carry`, the [name, payload] events a generation hands on (an empty list
            is written as given).
        parent: `parent`, the id of the workflow a child belongs to.
        deadline: `dl`, when the execution_timeout ends (epoch seconds).
        trace: `tc`, the starter's trace carrier.
        stream_offsets: `so`, the values each stream had before this generation.
        origin: `from`, the run a fork or restart was made from (see origin()).
        task_salt: `hs`, added (shifted) to the hashes of the run's asyncio tasks, apart
            from other runs' (see _loop.OrderedTask); a journal without one replays with 0.
        **keys: the same fields by their record keys, as a journal spells them (gen, q,
            dl, tc, so; `from` as `**{"from": ...}`). Unchecked, for tests that build
            records, malformed ones included; durable's own writers use the names above.
    """
    record: StartRecord = {
        "k": START,
        "v": FORMAT_VERSION,
        "wf": workflow_name,
        "id": workflow_id,
        "args": arguments,
        "t": now,
        "seed": seed,
    }
    if generation is not None:
        record["gen"] = generation
    if inbox_next is not None:
        record["q"] = inbox_next
    if carry is not None:
        record["carry"] = carry
    if parent is not None:
        record["parent"] = parent
    if deadline is not None:
        record["dl"] = deadline
    if trace is not None:
        record["tc"] = trace
    if stream_offsets is not None:
        record["so"] = stream_offsets
    if origin is not None:
        record["from"] = origin
    if task_salt is not None:
        record["hs"] = task_salt
    if keys:
        record.update(keys)  # type: ignore[typeddict-item]
    return record


def run(carrier: dict[str, str], now: float) -> RunRecord:
    """A traced run went live: its own context (the next run's span links to it)."""
    return {"k": RUN, "tc": carrier, "t": now}


def park(wake_at: float, inbox_next: int, now: float) -> ParkRecord:
    """A sleeper unloaded: when it wakes, and where its inbox cursor stands."""
    return {"k": PARK, "at": wake_at, "qn": inbox_next, "t": now}


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
    for key in ("gen", "q", "hs"):
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


def _is_link_kind(how: Any) -> bool:
    """Whether `how` names a link ("fork", "restart"); a list or map from a file is not one.

    (`in` a frozenset hashes its operand: an unhashable value would raise TypeError.)
    """
    return type(how) is str and how in LINK_KINDS


def _origin_problem(made: Any) -> str | None:
    if type(made) is not dict:
        return "its 'from' is not a map"
    if type(made.get("id")) is not str or not _is_link_kind(made.get("how")):
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
    if not _is_link_kind(record.get("how")) or type(record.get("id")) is not str:
        return "its 'how' (fork or restart) or the new run's 'id' is missing or wrong"
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    return _who_problem(record)


def _check_run(record: Record) -> str | None:
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    return _carrier_problem(record.get("tc"))


def _check_park(record: Record) -> str | None:
    if not _is_moment(record.get("at")):
        return "its wake-up time 'at' is missing or not a time"
    if not _is_count(record.get("qn")):
        return "its inbox position 'qn' is missing or not a count"
    if not _is_time(record.get("t")):
        return "its time 't' is missing or not a time"
    return None


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
