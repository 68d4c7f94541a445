"""What a journal says about one workflow, read once before it replays.

Decodes and indexes the records (the start record, what each step recorded, the events to
deliver in order, a final outcome) and refuses what this version cannot read. Runs no
workflow code; `_workflow_run` compares what the code asks for with this index.
"""

from __future__ import annotations

import functools
import hashlib
import os
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Unpack

from .._encoding import decode, encode
from .._errors import (
    ChildIdInUse,
    ForkIncomplete,
    JournalCorrupted,
    NonDeterminismError,
    SerializationError,
    WorkflowDefinitionError,
)
from .._gc_pause import collector_paused
from .._storage._frames import StoredRecord
from . import _records as records
from ._loop import TASK_SALT_MASK
from ._set_aside import as_replayed, operated, replayed

# The record kinds that open a step of another kind than an activity, and that kind. An
# activity's first record (format 2: any of sched, retry, done; format 1: its sched) names it.
_STEP_KINDS = {
    records.TIMER: "timer",
    records.WAIT: "wait",
    records.STATUS: "status",
    records.STREAM: "stream",
}


new_digest = hashlib.blake2b(digest_size=8).copy
"""A new hash of a call's arguments: BLAKE2b with 8-byte digests, as "sched" records keep.

A copy of one never updated: a third cheaper than `hashlib.blake2b(digest_size=8)`,
which parses its ten keyword parameters on every call (replay makes one per step).
"""


def digest_of(encoded_arguments: bytes) -> str:
    """The digest of a call's encoded arguments, as "sched" records keep it.

    (request_activity computes it inline, a call less per step: change both or neither.)
    """
    hashing = new_digest()
    hashing.update(encoded_arguments)
    return hashing.hexdigest()


def start_record(
    workflow_name: str,
    workflow_id: str,
    arguments: list[Any],
    clock: Callable[[], float],
    *,
    execution_timeout: float | None = None,
    **fields: Unpack[records.StartFields],
) -> bytes:
    """A new journal's first record, encoded (`fields`: records.start()'s optional ones).

    `execution_timeout` (seconds) sets the deadline from the record's own time.
    """
    seed = int.from_bytes(os.urandom(8)) >> 1  # (63 bits, as SystemRandom().getrandbits(63))
    now = clock()
    if execution_timeout is not None:
        fields["deadline"] = now + execution_timeout
    fields.setdefault("task_salt", seed & TASK_SALT_MASK)
    start = records.start(workflow_name, workflow_id, arguments, now, seed, **fields)
    return encode(start, context=f"the arguments of workflow {workflow_name!r}")


_SHORT = reprlib.Repr()  # (argument lists shortened for an error message)
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 6
_SHORT.maxlevel = 3


def check_child(
    start: records.Record | dict[str, Any],
    *,
    workflow_id: str,
    workflow_name: str,
    arguments: list[Any] | None,
    parent: str,
) -> None:
    """Refuse a child id whose journal (its `start`) is not this parent's call of this child.

    Of another workflow, another parent (or none: started on its own), or, in its first
    generation, other arguments (a later one keeps no first arguments, as run()'s check).

    Raises:
        ChildIdInUse: naming the child id, the parent, and both sides.
    """
    name, recorded, owner = start["wf"], start["args"], start.get("parent")
    same = arguments is None or start.get("gen", 0) != 0 or _same_arguments(recorded, arguments)
    if name == workflow_name and owner == parent and same:
        return
    ran_by = f"child of {owner!r}" if owner is not None else "started on its own"
    shown = _SHORT.repr(arguments) if arguments is not None else "its recorded arguments"
    raise ChildIdInUse(
        workflow_id=workflow_id,
        parent=parent,
        recorded=f"workflow {name!r} {_SHORT.repr(recorded)}, {ran_by}",
        given=f"workflow {workflow_name!r} {shown}, child of {parent!r}",
    )


def _same_arguments(recorded: list[Any], given: list[Any]) -> bool:
    """One call's arguments: equal values, or equal encodings."""
    if recorded == given:
        return True
    try:
        return encode(recorded) == encode(given)
    except SerializationError:  # (both came from the journal's encoding: not expected)
        return False


def _check_copied(start: records.Record, have: int, workflow_id: str, path: str) -> None:
    """Refuse a fork whose copy of its source's records stopped half-way (a crash)."""
    made = start.get("from")
    if made is not None and have < made.get("n", 0):
        raise ForkIncomplete(
            path=path, workflow_id=workflow_id, source=made["id"], have=have, want=made["n"]
        )


def activity_description(name: str, digest: str) -> str:
    return f"activity {name!r} (arguments digest {digest})"


def iso(when: float) -> str:
    return records.moment(when).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class RecordedStep:
    """What the journal holds about one step."""

    kind: str  # "activity", "timer", "wait", "status" or "stream"
    name: str = ""
    digest: str = ""
    fire_at: float = 0.0
    attempt: int = 0  # of the last "sched" / "retry"
    retry_at: float | None = None  # set when the last record is a "retry"
    outcome: bool = False
    cancelled: bool = False  # a timer or wait the code let go of (an "x" record)
    child: str | None = None  # a child step: the child's id (its "sched" names it)
    detached: bool = False  # a child started detached (not cancelled when the parent ends)

    @property
    def description(self) -> str:
        if self.kind == "activity":
            return activity_description(self.name, self.digest)
        if self.kind == "wait":
            return f"a wait for event {self.name!r}"
        if self.kind == "status":
            return "a set_status() call"
        if self.kind == "stream":
            return f"an append to stream {self.name!r}"
        return f"a timer firing at {iso(self.fire_at)}"


_new_step = object.__new__


def _finished_activity(name: str, digest: str) -> RecordedStep:
    """RecordedStep("activity", name, digest, outcome=True), at a third of its cost.

    (Replay makes one per step from its "done" record; calling a class with a Python
    __init__ takes CPython 3.11's slow path, object.__new__ and the slots set here do not.)
    """
    step: RecordedStep = _new_step(RecordedStep)
    step.kind = "activity"
    step.name = name
    step.digest = digest
    step.fire_at = 0.0
    step.attempt = 0
    step.retry_at = None
    step.outcome = True
    step.cancelled = False
    step.child = None
    step.detached = False
    return step


class JournalIndex:
    """A workflow's journal, decoded and indexed by step.

    The records are validated by the schema (`_records.read_journal`); what it cannot see
    from one record alone is checked here: every step's records agree on its kind.

    Raises (from the constructor):
        JournalCorrupted: a record is not one this version understands.
        UnsupportedJournalFormat: the journal was written by a newer durable.
        WorkflowDefinitionError: the journal belongs to another workflow.
        ChildIdInUse: `parent` starts this id as its child, and the journal is not that
            child (another workflow, parent or arguments).
    """

    def __init__(
        self,
        stored: list[StoredRecord],
        *,
        workflow_id: str,
        workflow_name: str,
        arguments: list[Any] | None,
        clock: Callable[[], float],
        parent: str | None = None,
        path: str | None = None,
        execution_timeout: float | None = None,
        trace: dict[str, str] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self._execution_timeout = execution_timeout  # (a new journal's: sets its deadline)
        self._trace = trace  # (a new journal's start record: the starter's trace carrier)
        self._path = path or workflow_id  # the journal's location, for errors
        self._parent = parent
        self.workflow_name = workflow_name
        self.steps: dict[int, RecordedStep] = {}
        self.events: list[dict[str, Any]] = []  # delivered records, in journal order
        self.finished: dict[str, Any] | None = None  # the "end" record
        self.new_start_record: bytes | None = None  # to write, for a new journal
        self.last_run: dict[str, str] | None = None  # the last `run` record's trace carrier
        # The call sites the journal names: (file, line, function) -> number (`w`)
        self.sites: dict[tuple[str, int, str], int] = {}
        self.patches: dict[str, int] = {}  # patch id -> the step it was taken before
        if not stored:  # a new journal: its start record, made here (nothing to index)
            self.start = self._read_start([], arguments, clock)
            self.inbox_next: int = self.start.get("q", 0)  # the first inbox message not taken
            # Values each stream has had: those before this generation, then its own
            self.stream_counts: dict[str, int] = dict(self.start.get("so", {}))
            return
        with collector_paused():  # decoding builds many objects that all stay alive
            decoded = records.read_journal(stored, path=self._path)
            self.start = self._read_start(decoded, arguments, clock)
            _check_copied(self.start, len(decoded) - 1, workflow_id, self._path)
            self.inbox_next = self.start.get("q", 0)
            self.stream_counts = dict(self.start.get("so", {}))
            self._index(decoded, stored)

    @functools.cached_property
    def last_step(self) -> int:
        """The highest step the journal holds a record of (-1: none)."""
        return max(self.steps, default=-1)

    def _read_start(
        self,
        decoded: list[records.Record],
        arguments: list[Any] | None,
        clock: Callable[[], float],
    ) -> records.Record:
        if decoded:  # (read_journal checked it is a start record of a version we read)
            start = decoded[0]
            if self._parent is not None:  # a parent starts its child: is it this call's?
                check_child(
                    start,
                    workflow_id=self.workflow_id,
                    workflow_name=self.workflow_name,
                    arguments=arguments,
                    parent=self._parent,
                )
            elif start["wf"] != self.workflow_name:
                raise WorkflowDefinitionError(
                    f"workflow id {self.workflow_id!r} belongs to workflow "
                    f"{start['wf']!r}, not {self.workflow_name!r}: use another id"
                )
            return start
        if arguments is None:
            raise JournalCorrupted(
                path=self._path, offset=0, reason="the journal has no start record"
            )
        self.new_start_record = start_record(
            self.workflow_name,
            self.workflow_id,
            arguments,
            clock,
            execution_timeout=self._execution_timeout,
            parent=self._parent,
            trace=self._trace,
        )
        return decode(self.new_start_record, path=self.workflow_id, offset=0)  # type: ignore[no-any-return]

    def _index(self, decoded: list[records.Record], stored: list[StoredRecord]) -> None:
        steps, events, sites, done = self.steps, self.events, self.sites, records.DONE
        for (offset, _), record in self._replayed(decoded, stored):
            kind = record["k"]
            if kind == done:  # an activity's outcome, most records: first, inline
                step: int = record["s"]
                if "wp" in record:  # (the first step from a call site names it)
                    sites[(record["wp"], record["wl"], record["wn"])] = record["w"]
                recorded = steps.get(step)
                if recorded is None:
                    name, digest = record.get("a"), record.get("d")
                    if name is None or digest is None:  # (format 1: its "sched" came first)
                        raise self._unnamed(offset, step, kind)
                    recorded = steps[step] = _finished_activity(name, digest)
                elif recorded.kind == "activity":
                    recorded.outcome = True
                else:
                    raise self._mixed(offset, step, kind, recorded)
                events.append(record)
            else:
                self._index_other(offset, kind, record)

    def _index_other(self, offset: int, kind: str, record: records.Record) -> None:
        """A record other than a "done" (see _index)."""
        if kind == records.END:
            self.finished = record
        elif kind in records.FROM_INBOX:
            if "f" not in record:  # (a fork's copy: its q is the source's inbox's)
                self.inbox_next = max(self.inbox_next, record["q"] + 1)
            self.events.append(record)
        elif kind == records.PATCH:
            self.patches.setdefault(record["id"], record["s"])
        elif kind == records.EMIT:  # an activity's stream value: its outcome is replayed
            self.stream_counts[record["sn"]] = self.stream_counts.get(record["sn"], 0) + 1
        elif kind in records.NOTES:  # (a `run`; a `park`: nothing to replay)
            if kind == records.RUN:
                self.last_run = record["tc"]
        else:
            self._index_step(offset, kind, record)

    def _index_step(self, offset: int, kind: str, record: records.Record) -> None:
        """A step's record other than a "done" (see _index)."""
        step: int = record["s"]
        if "wp" in record:  # (the first step from a call site names it)
            self.sites[(record["wp"], record["wl"], record["wn"])] = record["w"]
        recorded = self.steps.get(step)
        if kind in _STEP_KINDS and record.get("x") and recorded is not None:  # let go of
            recorded.cancelled = True
            return
        if kind in _STEP_KINDS:  # a timer, wait, status or stream: its step's first record
            self._index_first_record(offset, step, record, recorded)
            return
        if recorded is None:
            if kind == records.FIRED:
                raise self._mixed(offset, step, kind, None)
            recorded = self.steps[step] = self._activity_step(offset, step, kind, record)
        elif recorded.kind != ("timer" if kind == records.FIRED else "activity"):
            raise self._mixed(offset, step, kind, recorded)
        if kind == records.FIRED:
            recorded.outcome = True
            self.events.append(record)
        elif kind in (records.SCHEDULED, records.RETRY):
            recorded.attempt = record["n"]
            recorded.retry_at = record["at"] if kind == records.RETRY else None
            if "id" in record:
                recorded.child = record["id"]
                recorded.detached = bool(record.get("dt"))
        else:  # a kind added to the schema that replay does not know
            raise JournalCorrupted(
                path=self._path,
                offset=offset,
                reason=f"a {kind!r} record, which this version cannot replay",
            )

    def _index_first_record(
        self, offset: int, step: int, record: records.Record, recorded: RecordedStep | None
    ) -> None:
        """A timer's, wait's, status's or stream value's step, from its first record."""
        kind = record["k"]
        if recorded is not None and recorded.kind != _STEP_KINDS[kind]:
            raise self._mixed(offset, step, kind, recorded)
        if kind == records.TIMER:
            self.steps[step] = RecordedStep(kind="timer", fire_at=record["at"])
        elif kind == records.WAIT:
            self.steps[step] = RecordedStep(kind="wait", name=record["n"])
        elif kind == records.STREAM:
            self.steps[step] = RecordedStep(kind="stream", name=record["sn"])
            self.stream_counts[record["sn"]] = self.stream_counts.get(record["sn"], 0) + 1
        else:
            self.steps[step] = RecordedStep(kind="status")

    def _replayed(
        self, decoded: list[records.Record], stored: list[StoredRecord]
    ) -> Iterable[tuple[StoredRecord, records.Record]]:
        """The records after the start that replay, with where each was stored."""
        if not operated(decoded):
            return zip(stored[1:], decoded[1:], strict=True)
        # (an operator resumed it: some records are set aside; links never replay)
        kept = replayed(decoded, path=self._path)[1:]
        shown = as_replayed(decoded, path=self._path)[1:]
        return zip([stored[index] for index in kept], shown, strict=True)

    def _mixed(
        self, offset: int, step: int, kind: str, recorded: RecordedStep | None
    ) -> JournalCorrupted:
        """A record of a kind its step's earlier records contradict."""
        what = f"a {recorded.kind} step" if recorded is not None else "a step with no timer"
        return JournalCorrupted(
            path=self._path,
            offset=offset,
            reason=f"a {kind!r} record for step {step}, which the journal recorded as {what}",
        )

    def _activity_step(
        self, offset: int, step: int, kind: str, record: records.Record
    ) -> RecordedStep:
        name, digest = record.get("a"), record.get("d")
        if name is None or digest is None:  # (format 1: its "sched" came first, naming it)
            raise self._unnamed(offset, step, kind)
        return RecordedStep("activity", name, digest)

    def _unnamed(self, offset: int, step: int, kind: str) -> JournalCorrupted:
        """A step's first record that does not name its activity (format 1 needs a sched)."""
        return JournalCorrupted(
            path=self._path,
            offset=offset,
            reason=f"step {step} has a {kind!r} record that names no activity",
        )

    def open_children(self) -> dict[int, str]:
        """The children this journal started, not detached, whose outcome it does not hold.

        step -> child id: the ones to cancel when this workflow ends.
        """
        return {
            step: recorded.child
            for step, recorded in self.steps.items()
            if recorded.child is not None and not recorded.outcome and not recorded.detached
        }

    def unasked(self, asked: int) -> NonDeterminismError | None:
        """After replay the code must have asked for every step the journal recorded.

        In the first run each recorded step was asked for before the last recorded event
        was delivered, so a replay that asked for fewer has diverged (and would otherwise
        drop an in-doubt step silently, or write records the old code never would).
        """
        missing = [step for step in self.steps if step >= asked]
        if not missing:
            return None
        step = min(missing)
        return NonDeterminismError(
            workflow_id=self.workflow_id,
            position=step,
            recorded=self.steps[step].description,
            requested=f"no step {step} (the code asked for {asked} steps)",
            call_site="the workflow's last await before it went idle or returned",
        )
