"""Resume, restart and fork, on a store: read under the journal's lock, then write.

Each action takes the source's journal (its lock, or lease) before it decides, so a
workflow that a runner holds (in this process or another) is refused, never acted on under
its runner's feet. Each is idempotent if retried: a resume that stands is not written
twice, and a fork or restart whose new journal exists is completed (a crash half-way), not
made again. Order of the writes for a new run: the new journal in full (its start record
says how many records it copies: a runner refuses it until they are all there), then the
"link" record in the source; a retry finishes whichever is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .._encoding import encode
from .._engine import _records as records
from .._errors import ActionRefused, JournalLocked, JournalNotFound, RecordTooLarge
from .._reading import read_workflow
from .._storage._frames import StoredRecord
from .._storage._interface import Journal, JournalStore
from ._plans import Plan, already_resumed, failed_child, resume_record, same_origin

# Runs the current code over a journal to be (NonDeterminismError, InvalidOverride):
# the workflow name and the payloads; None when the code is not known here.
Check = Callable[[str, list[bytes]], None] | None
# Resumes a failed child (by id) before its parent's resume record is written.
ResumeChild = Callable[[str], Awaitable[None]] | None


@dataclass(frozen=True)
class Acted:
    """What an action did: the run to follow, and whether this call wrote it."""

    workflow_id: str
    workflow_name: str
    written: bool


def _held(workflow_id: str, action: str) -> ActionRefused:
    return ActionRefused(
        workflow_id=workflow_id,
        action=action,
        state="held by a runner (its journal is locked, here or in another process)",
        hint="Wait for it to end, or cancel it and try again once it has",
    )


async def resume(
    store: JournalStore,
    workflow_id: str,
    now: float,
    *,
    by: str | None,
    reason: str | None,
    check: Check,
    request_id: str | None = None,
    resume_child: ResumeChild = None,
) -> Acted:
    """Set the failure (or cancellation) that ended the workflow aside, durably.

    `request_id`: a retry with it writes nothing once its record is there, even after the
    resumed run has ended again. `resume_child`: when a failed child's failure ended it,
    called with the child's id (under this workflow's lock, once the check passed) before
    its resume record is written: the step that runs the child again finds it resumed.

    Raises:
        WorkflowNotFound: no such workflow.
        ActionRefused: it completed, has not ended, or a runner holds it.
        NonDeterminismError: the current code would not replay what it keeps.
    """
    journal = await read_workflow(store, workflow_id)
    name = str(journal[0]["wf"])
    if _has_request(journal, request_id):
        return Acted(workflow_id, name, written=False)
    opened = await _open_to_resume(store, workflow_id, request_id)
    if opened is None:
        return Acted(workflow_id, name, written=False)
    try:
        held = records.read_journal(opened.records, path=store.location(workflow_id))
        if already_resumed(held) or _has_request(held, request_id):
            return Acted(workflow_id, name, written=False)
        payload = resume_record(workflow_id, held, now, by=by, reason=reason, request_id=request_id)
        if check is not None:
            check(name, [stored.payload for stored in opened.records] + [payload])
        child = failed_child(workflow_id, held)
        if child is not None and resume_child is not None:
            await resume_child(child)
        await opened.append(payload)
        await opened.note()  # (it wants a runner again: serve() may take it)
    finally:
        await opened.close()
    return Acted(workflow_id, name, written=True)


# How long a resume waits, re-reading, for a lock another resume holds while it writes.
BESIDE_WAIT, BESIDE_POLL = 0.5, 0.05


async def _open_to_resume(
    store: JournalStore, workflow_id: str, request_id: str | None
) -> Journal | None:
    """The journal, locked; None if a resume beside this one wrote its record meanwhile.

    A resume that ran at the same time (another process, another task) holds the lock
    while it checks and writes, then its run holds it: its record, read without the lock,
    makes this one a retry. A lock held longer, with no resume in the journal, is a runner's.

    Raises:
        ActionRefused: a runner holds it.
    """
    deadline = time.monotonic() + BESIDE_WAIT
    while True:
        try:
            return await store.open(workflow_id)
        except JournalLocked:
            journal = await read_workflow(store, workflow_id)
            if already_resumed(journal) or _has_request(journal, request_id):
                return None
            if time.monotonic() >= deadline:
                raise _held(workflow_id, "resume") from None
        await asyncio.sleep(BESIDE_POLL)


def _has_request(journal: list[records.Record], request_id: str | None) -> bool:
    """Whether a resume with this request id is in the journal already."""
    return request_id is not None and any(
        record["k"] == records.RESUME and record.get("id") == request_id for record in journal
    )


async def make_run(
    store: JournalStore,
    source_id: str,
    new_id: str,
    plan_of: Callable[[list[records.Record], Journal], Plan],
    *,
    by: str | None,
    reason: str | None,
    check: Check,
) -> Acted:
    """Write a new run (a restart or fork) planned from the source's records, and link it.

    Raises:
        WorkflowNotFound: no such source.
        ActionRefused: the source has not ended, or a runner holds it.
        WorkflowIdInUse: `new_id` names another run than this action's.
        ForkIncomplete: never (a half-written fork of this plan is completed).
        and what the plan or the check raise (InvalidForkStep, InvalidOverride,
        NonDeterminismError).
    """
    journal = await read_workflow(store, source_id)
    name = str(journal[0]["wf"])
    try:
        source = await store.open(source_id)
    except JournalLocked:
        raise _held(source_id, "fork or restart") from None
    try:
        held = records.read_journal(source.records, path=store.location(source_id))
        plan = plan_of(held, source)
        _fits(store, new_id, plan)
        existing = await _existing(store, new_id)
        same = bool(existing) and _same_plan(existing, plan, store.location(new_id))
        if not same and check is not None:
            check(name, plan.payloads)  # (a retry of this plan was checked the first time)
        if existing and not same:
            start = records.read_journal(existing[:1], path=store.location(new_id))[0]
            raise _taken(source_id, new_id, plan.how, _what(start))
        written = await _write_new(store, new_id, plan, len(existing))
        if not any(record["k"] == records.LINK and record["id"] == new_id for record in held):
            link = records.link(plan.how, new_id, plan.origin["t"], by=by, reason=reason)
            await source.append(encode(link))
            written = True
    finally:
        await source.close()
    return Acted(new_id, name, written=written)


def _fits(store: JournalStore, new_id: str, plan: Plan) -> None:
    """Refuse a plan with a record past the store's limit before its journal is created.

    Raises:
        RecordTooLarge: one of its records (an override's value, most likely) is too large.
    """
    for payload in plan.payloads:
        if len(payload) > store.max_record_size:
            raise RecordTooLarge(
                path=store.location(new_id), size=len(payload), limit=store.max_record_size
            )


def _taken(source_id: str, new_id: str, how: str, what: str) -> ActionRefused:
    return ActionRefused(
        workflow_id=source_id,
        action=how,
        state=f"not what the id {new_id!r} names: that is {what}, made another way (another "
        "step, override or source)",
        hint="Give the new run another id (new_id=...)",
    )


def _what(start: records.Record) -> str:
    made = start.get("from")
    if isinstance(made, dict):
        return f"a {made.get('how')} of {made.get('id')!r}"
    return f"workflow {start.get('wf')!r}"


async def _existing(store: JournalStore, new_id: str) -> list[StoredRecord]:
    try:
        return await store.read(new_id)
    except JournalNotFound:
        return []


def _same_plan(existing: list[StoredRecord], plan: Plan, where: str) -> bool:
    """Whether the journal at the new id is this plan's: same origin, same copied records."""
    start = records.read_journal(existing[:1], path=where)[0]
    if not same_origin(start, plan.origin):
        return False
    return all(got.payload == want for got, want in zip(existing[1:], plan.copied, strict=False))


async def _write_new(store: JournalStore, new_id: str, plan: Plan, seen: int) -> bool:
    """The new journal, completed from what a crash left (`seen`: it had a start record)."""
    payloads = plan.payloads
    try:
        journal = await store.open(new_id)
    except JournalLocked:
        if seen:
            return False  # (a runner has it: it is complete, or that runner refuses it)
        raise
    try:
        have = len(journal.records)
        if have and not same_origin(
            records.read_journal(journal.records[:1], path=new_id)[0], plan.origin
        ):
            raise _taken(new_id, new_id, plan.how, "another run")
        missing = payloads[have:] if have else payloads
        if have and have > len(payloads):
            return False  # (it ran on from the copy: nothing to complete)
        for payload in missing:
            journal.write(payload)
        await journal.flush()
        return bool(missing)
    finally:
        await journal.close()
