"""What a resume, a restart or a fork writes, decided from the source's records (pure).

No I/O and no workflow code: validated records in (the source's, read under its lock),
the records to append out. `_actions` does the reading, locking and writing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .._encoding import decode, encode
from .._engine import _records as records
from .._engine._set_aside import Cut, as_replayed, ending, failure_cut, replayed
from .._errors import ActionRefused, InvalidForkStep, InvalidOverride, SerializationError
from .._storage._frames import StoredRecord

RESUME, RESTART, FORK = "resume", "restart", "fork"


def state_of(journal: list[records.Record]) -> str:
    """The source's state in words, for refusals: completed, failed, cancelled, not ended."""
    end = ending(journal)
    if end is None or "cont" in end:
        return "not ended (running, sleeping, waiting, or stalled)"
    if "e" not in end:
        return "completed"
    return "cancelled" if end.get("c") else "failed"


def already_resumed(journal: list[records.Record]) -> bool:
    """Whether a resume since its last end stands (a retried resume writes nothing)."""
    for record in reversed(journal):
        if record["k"] == records.END:
            return False
        if record["k"] == records.RESUME:
            return True
    return False


def resume_record(
    workflow_id: str,
    journal: list[records.Record],
    now: float,
    *,
    by: str | None,
    reason: str | None,
    request_id: str | None = None,
) -> bytes:
    """The record that sets the failure (or cancellation) aside.

    Raises:
        ActionRefused: it completed, or has not ended.
    """
    cut = failure_cut(journal, path=workflow_id)
    if cut is None:
        state = state_of(journal)
        hint = (
            "A completed workflow has nothing to resume: restart it (a new run) or fork it"
            if state == "completed"
            else "It resumes by itself when a runtime runs it (recover(), serve(), run()); "
            "cancel it first to stop it"
        )
        raise ActionRefused(workflow_id=workflow_id, action=RESUME, state=state, hint=hint)
    resumed = records.resume(
        cut.first, now, step=cut.step, by=by, reason=reason, request_id=request_id
    )
    return encode(resumed)


def failed_child(workflow_id: str, journal: list[records.Record]) -> str | None:
    """The child whose failure ended the workflow (its resume resumes the child first).

    None: the failure was not a child's (an activity's, the code's own, a cancellation).
    """
    cut = failure_cut(journal, path=workflow_id)
    if cut is None or cut.step is None:
        return None
    record = journal[cut.first]
    error = record.get("e") if record["k"] == records.DONE else None
    if isinstance(error, dict) and error.get("kind") == "child":
        return str(error["id"])
    return None


def check_ended(workflow_id: str, journal: list[records.Record], action: str) -> None:
    """Refuse to restart or fork a workflow that has not ended (ActionRefused)."""
    end = ending(journal)
    if end is None or "cont" in end:
        raise ActionRefused(
            workflow_id=workflow_id,
            action=action,
            state=state_of(journal),
            hint="A fork or restart is made from an ended run: cancel it first, or wait for "
            "it to end",
        )


@dataclass(frozen=True)
class Plan:
    """A new run's journal: its start record and the records copied after it."""

    how: str
    start: bytes
    copied: list[bytes]
    origin: records.Origin

    @property
    def payloads(self) -> list[bytes]:
        return [self.start, *self.copied]


def plan_restart(
    source_id: str,
    new_id: str,
    journal: list[records.Record],
    now: float,
    *,
    by: str | None,
    reason: str | None,
) -> Plan:
    """A new run of the same workflow with the source's (current generation's) arguments."""
    check_ended(source_id, journal, RESTART)
    source = journal[0]
    made = records.origin(source_id, RESTART, now, by=by, reason=reason)
    # (no "parent": a new run is a run of its own, which no parent awaits)
    seed = random.SystemRandom().getrandbits(63)
    start = records.start(
        source["wf"],
        new_id,
        source["args"],
        now,
        seed,
        origin=made,
        deadline=_deadline(source, now),  # (the same execution_timeout, from the new start)
        generation=source.get("gen"),  # (its arguments are that generation's)
    )
    return Plan(RESTART, encode(start), [], made)


def plan_fork(
    source_id: str,
    new_id: str,
    journal: list[records.Record],
    stored: list[StoredRecord],
    now: float,
    *,
    at_step: int | None,
    override: tuple[int, Any] | None,
    by: str | None,
    reason: str | None,
) -> Plan:
    """A run whose journal starts with the source's records before step `at_step`.

    (None: before its failure.) It runs live from there; `override` replaces one step's
    result.

    Raises:
        ActionRefused: the source has not ended, or (from its failure) completed.
        InvalidForkStep: `at_step` is past the end of the source's journal.
        InvalidOverride: the override's step or value cannot be recorded there.
    """
    check_ended(source_id, journal, FORK)
    kept = replayed(journal, path=source_id)
    shown = as_replayed(journal, path=source_id)
    view = list(zip(kept, shown, strict=True))[1:]
    cut = _cut(source_id, view, journal, at_step)
    copied: list[bytes] = []
    overridden = override[0] if override is not None else None
    placed = False  # (the override's "done" is in the copied part: replaced where it was)
    for index, record in view:
        kind = record["k"]
        of_step = kind in records.STEPPED
        mine = of_step and record["s"] == overridden
        if kind in (records.END, records.PARK) or (
            not mine and (index >= cut.first or (of_step and record["s"] == cut.step))
        ):
            continue
        if mine and kind == records.DONE:
            if index >= cut.first:
                continue  # (the failed step's outcome: the override goes at the end)
            assert override is not None
            copied.append(_overridden(source_id, override, record, cut))
            placed = True
        elif kind in records.FROM_INBOX:
            copied.append(encode(records.forked_copy(record)))
        elif record is journal[index]:
            copied.append(stored[index].payload)  # (the bytes as recorded)
        else:
            copied.append(encode(record))
    if override is not None and not placed:
        done = next(
            (r for _, r in reversed(view) if r["k"] == records.DONE and r["s"] == overridden),
            None,
        )
        copied.append(_overridden(source_id, override, done, cut))
    source = journal[0]
    fields: dict[str, int] = {"s": cut.steps, "n": len(copied)}
    if overridden is not None:
        fields["ov"] = overridden
    made = records.origin(source_id, FORK, now, by=by, reason=reason, **fields)
    # The source's start time and seed: the copied part replays as it was recorded.
    start = records.start(
        source["wf"],
        new_id,
        source["args"],
        source["t"],
        source["seed"],
        origin=made,
        generation=source.get("gen"),  # (no "parent": see plan_restart)
        carry=source.get("carry"),
        deadline=_deadline(source, now),
    )
    return Plan(FORK, encode(start), copied, made)


def _deadline(source: records.Record, now: float) -> float | None:
    """A new run's deadline: as far from `now` as the source's was from its start (or none)."""
    return now + max(0.0, source["dl"] - source["t"]) if "dl" in source else None


def _cut(
    source_id: str,
    view: list[tuple[int, records.Record]],
    journal: list[records.Record],
    at_step: int | None,
) -> Cut:
    if at_step is None:
        cut = failure_cut(journal, path=source_id)
        if cut is None:
            raise ActionRefused(
                workflow_id=source_id,
                action="fork from the failure of",
                state="completed",
                hint="Nothing failed: fork it at a step (at_step=N) instead",
            )
        return Cut(cut.first, cut.step, cut.step if cut.step is not None else cut.steps)
    steps = max((r["s"] + 1 for _, r in view if r["k"] in records.STEPPED), default=0)
    if at_step < 0 or at_step > steps:
        raise InvalidForkStep(workflow_id=source_id, step=at_step, steps=steps)
    first = next(
        (
            index
            for index, record in view
            if record["k"] == records.END
            or (record["k"] in records.STEPPED and record["s"] >= at_step)
            or (record["k"] == records.PATCH and record["s"] >= at_step)
        ),
        len(journal),
    )
    return Cut(first, None, at_step)


def _overridden(
    source_id: str,
    override: tuple[int, Any],
    done: records.Record | None,
    cut: Cut,
) -> bytes:
    step, value = override
    if done is None or "a" not in done:
        raise InvalidOverride(
            workflow_id=source_id,
            step=step,
            problem="the source's journal has no outcome of an activity at that step",
        )
    if step >= cut.steps and step != cut.step:
        raise InvalidOverride(
            workflow_id=source_id,
            step=step,
            problem=f"it is not before the step the fork runs live from ({cut.steps})",
        )
    record = records.done(step, done["a"], done["d"], done.get("n", 1), now=done["t"], result=value)
    try:
        encoded = encode(records.overridden(record), context=f"the override of step {step}")
    except SerializationError as error:
        raise InvalidOverride(
            workflow_id=source_id, step=step, problem=f"the value does not encode ({error})"
        ) from None
    return encoded


def same_origin(start: records.Record, made: records.Origin) -> bool:
    """Whether a journal's start record is this plan's (a retried fork or restart)."""
    found = start.get("from")
    if not isinstance(found, dict):
        return False
    keys = ("id", "how", "s", "ov", "n")
    return all(found.get(key) == made.get(key) for key in keys)


def decoded_start(payload: bytes, where: str) -> records.Record:
    return records.check_record(
        decode(payload, path=where, offset=0), path=where, offset=0, index=0
    )
