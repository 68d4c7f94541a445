"""What a journal says about one workflow, read once before it replays.

Decodes and indexes the records (the start record, what each step recorded, the events to
deliver in order, a final outcome) and refuses what this version cannot read. Runs no
workflow code; `_workflow_run` compares what the code asks for with this index.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._encoding import decode, encode
from .._errors import (
    JournalCorrupted,
    NonDeterminismError,
    UnsupportedJournalFormat,
    WorkflowDefinitionError,
)
from .._storage._collector import collector_paused
from .._storage._frames import StoredRecord
from . import _records as records

# Records that name their activity (format 2): the first one seen for a step creates it. In
# format 1 only "sched" did, and it always came first.
_NAMES_ACTIVITY = frozenset({records.SCHEDULED, records.RETRY, records.DONE})


def digest_of(encoded_arguments: bytes) -> str:
    """The digest of a call's encoded arguments, as "sched" records keep it."""
    return hashlib.blake2b(encoded_arguments, digest_size=8).hexdigest()


def start_record(
    workflow_name: str,
    workflow_id: str,
    arguments: list[Any],
    clock: Callable[[], float],
    **extra: Any,
) -> bytes:
    """A new journal's first record (extra: gen, q, parent)."""
    start = {
        "k": records.START,
        "v": records.FORMAT_VERSION,
        "wf": workflow_name,
        "id": workflow_id,
        "args": arguments,
        "t": clock(),
        "seed": random.SystemRandom().getrandbits(63),
        **extra,
    }
    return encode(start, context=f"the arguments of workflow {workflow_name!r}")


def activity_description(name: str, digest: str) -> str:
    return f"activity {name!r} (arguments digest {digest})"


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


@dataclass
class RecordedStep:
    """What the journal holds about one step."""

    kind: str  # "activity", "timer", "wait" or "status"
    name: str = ""
    digest: str = ""
    fire_at: float = 0.0
    attempt: int = 0  # of the last "sched" / "retry"
    retry_at: float | None = None  # set when the last record is a "retry"
    outcome: bool = False
    cancelled: bool = False  # a timer or wait the code let go of (an "x" record)

    @property
    def description(self) -> str:
        if self.kind == "activity":
            return activity_description(self.name, self.digest)
        if self.kind == "wait":
            return f"a wait for event {self.name!r}"
        if self.kind == "status":
            return "a set_status() call"
        return f"a timer firing at {iso(self.fire_at)}"


class JournalIndex:
    """A workflow's journal, decoded and indexed by step.

    Raises (from the constructor):
        JournalCorrupted: a record is not one this version understands.
        UnsupportedJournalFormat: the journal was written by a newer durable.
        WorkflowDefinitionError: the journal belongs to another workflow.
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
    ) -> None:
        self.workflow_id = workflow_id
        self._parent = parent
        self.workflow_name = workflow_name
        self.steps: dict[int, RecordedStep] = {}
        self.events: list[dict[str, Any]] = []  # delivered records, in journal order
        self.finished: dict[str, Any] | None = None  # the "end" record
        self.new_start_record: bytes | None = None  # to write, for a new journal
        with collector_paused():  # decoding builds many objects that all stay alive
            decoded = [
                (record.offset, decode(record.payload, path=workflow_id, offset=record.offset))
                for record in stored
            ]
            self.start = self._read_start(decoded, arguments, clock)
            self.inbox_next: int = self.start.get("q", 0)  # the first inbox message not taken
            self.patches: dict[str, int] = {}  # patch id -> the step it was taken before
            self._index(decoded[1:])

    def _read_start(
        self,
        decoded: list[tuple[int, Any]],
        arguments: list[Any] | None,
        clock: Callable[[], float],
    ) -> dict[str, Any]:
        if decoded:
            offset, start = decoded[0]
            if not isinstance(start, dict) or start.get("k") != records.START:
                raise JournalCorrupted(
                    path=self.workflow_id,
                    offset=offset,
                    reason="the first record is not a workflow start record",
                )
            version = start.get("v")
            if not isinstance(version, int) or version > records.FORMAT_VERSION:
                raise UnsupportedJournalFormat(
                    path=self.workflow_id,
                    found=version if isinstance(version, int) else -1,
                    supported=records.FORMAT_VERSION,
                )
            if start.get("wf") != self.workflow_name:
                raise WorkflowDefinitionError(
                    f"workflow id {self.workflow_id!r} belongs to workflow "
                    f"{start.get('wf')!r}, not {self.workflow_name!r}: use another id"
                )
            return start
        if arguments is None:
            raise JournalCorrupted(
                path=self.workflow_id, offset=0, reason="the journal has no start record"
            )
        extra = {"parent": self._parent} if self._parent is not None else {}
        self.new_start_record = start_record(
            self.workflow_name, self.workflow_id, arguments, clock, **extra
        )
        return decode(self.new_start_record, path=self.workflow_id, offset=0)  # type: ignore[no-any-return]

    def _index(self, decoded: list[tuple[int, Any]]) -> None:
        for offset, record in decoded:
            kind = record.get("k") if isinstance(record, dict) else None
            if kind == records.END:
                self.finished = record
                continue
            if kind in records.FROM_INBOX:
                self.inbox_next = max(self.inbox_next, record["q"] + 1)
                self.events.append(record)
                continue
            if kind == records.PATCH:
                self.patches.setdefault(record["id"], record["s"])
                continue
            step = record.get("s") if isinstance(record, dict) else None
            if kind not in records.KNOWN or not isinstance(step, int):
                raise JournalCorrupted(
                    path=self.workflow_id,
                    offset=offset,
                    reason=f"unknown record {str(record)[:80]!r} (written by a newer durable?)",
                )
            if record.get("x") and step in self.steps:  # a timer or wait let go of
                self.steps[step].cancelled = True
                continue
            if kind == records.TIMER:
                self.steps[step] = RecordedStep(kind="timer", fire_at=record["at"])
                continue
            if kind == records.WAIT:
                self.steps[step] = RecordedStep(kind="wait", name=record["n"])
                continue
            if kind == records.STATUS:
                self.steps[step] = RecordedStep(kind="status")
                continue
            recorded = self.steps.get(step)
            if recorded is None and kind in _NAMES_ACTIVITY:
                recorded = self.steps[step] = self._activity_step(offset, step, kind, record)
            if kind in (records.SCHEDULED, records.RETRY):
                assert recorded is not None
                recorded.attempt = record["n"]
                recorded.retry_at = record["at"] if kind == records.RETRY else None
            elif kind in records.DELIVERED:
                if recorded is not None:
                    recorded.outcome = True
                self.events.append(record)

    def _activity_step(
        self, offset: int, step: int, kind: str, record: dict[str, Any]
    ) -> RecordedStep:
        name, digest = record.get("a"), record.get("d")
        if not isinstance(name, str) or not isinstance(digest, str):
            raise JournalCorrupted(
                path=self.workflow_id,
                offset=offset,
                reason=f"step {step} has a {kind!r} record that names no activity",
            )
        return RecordedStep("activity", name, digest)

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
