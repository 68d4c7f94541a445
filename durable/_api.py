"""Calls workflow code makes: sleep, now, random, uuid4, events, status, patches, children...

Inside a workflow they read the workflow's loop (logical clock, seeded randomness), so they
replay identically; elsewhere they fall back to the real clock and randomness, so shared
helpers also work in activities and tests.
"""

from __future__ import annotations

import asyncio
import random as _random
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from types import CodeType
from typing import Any, NoReturn, TypeVar, TypeVarTuple, Unpack

from ._definitions import Workflow
from ._durations import Duration, to_seconds
from ._engine._context import ActivityInfo, WorkflowInfo, current_activity
from ._engine._loop import in_order
from ._engine._steps import ContinueAsNew, RecordedOutcome
from ._engine._workflow_run import WorkflowRun, current_run
from ._errors import EventTimeout, OutsideWorkflowError, WorkflowDefinitionError

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


def _workflow_run(call: str) -> WorkflowRun:
    run = current_run()
    if run is None:
        raise OutsideWorkflowError(
            f"durable.{call}() was called outside workflow code; call it in a function "
            "decorated with @durable.workflow"
        )
    return run


def wait_for_event(name: str, *, timeout: Duration | None = None) -> Coroutine[Any, Any, Any]:
    """Wait for the next event `name` sent to this workflow (Runtime.send_event); its payload.

    Events sent before the wait are kept, in order, for it. The timeout is a durable timer:
    a restart does not extend it.

    Raises:
        EventTimeout: (a TimeoutError) no such event within `timeout`.
        OutsideWorkflowError: not called from workflow code.
    """
    caller = sys._getframe(1)  # (the call site, journaled with the step)
    waiting = _wait_for_event(name, timeout, caller.f_code, caller.f_lasti)
    return in_order(waiting)  # sets of calls iterate in call order


async def _wait_for_event(
    name: str,
    timeout: Duration | None,  # noqa: ASYNC109 (a durable timer, not the caller's)
    code: CodeType,
    offset: int,
) -> Any:
    run = _workflow_run("wait_for_event")
    seconds = None if timeout is None else to_seconds(timeout, what="event timeout")
    waiting = run.request_event(name, code, offset)
    if isinstance(waiting, RecordedOutcome):
        return waiting.unwrap()
    if seconds is None:
        return await waiting
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await waiting
    except TimeoutError:
        if not deadline.expired():
            raise
        raise EventTimeout(workflow_id=run.workflow_id, event=name, timeout=seconds) from None


def set_status(value: Any) -> None:
    """Publish a value (progress, a phase name, a dict) for Runtime.describe() to read.

    Journaled with the workflow's next step; the latest value wins.
    """
    caller = sys._getframe(1)  # (the call site, journaled with the step)
    _workflow_run("set_status").set_status(value, caller.f_code, caller.f_lasti)


def patched(patch_id: str) -> bool:
    """Whether this workflow may take the new code path named `patch_id`.

    True for workflows that reach this point under the new code (recorded in the journal),
    False for those whose journal shows the old code went past this point without it: so
    `if durable.patched("charge-v2"): new() else: old()` keeps old workflows replaying.

    One id may be checked at several places (a change that touches several): the first
    check in a run decides, and every later one returns the same answer, as in Temporal.
    """
    return _workflow_run("patched").patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark a patch as the only path: once no workflow from before it can replay.

    Replace `if durable.patched(id): new() else: old()` by `durable.deprecate_patch(id);
    new()` once every workflow journaled without the patch has finished; then remove it.
    """
    _workflow_run("deprecate_patch")
    if not isinstance(patch_id, str) or not patch_id:
        raise WorkflowDefinitionError(f"a patch id is a non-empty string, not {patch_id!r}")


def continue_as_new(*args: Any) -> NoReturn:
    """End this run and start the workflow again with `args`, on a fresh journal.

    For long loops (billing every month): the journal stays small. The id stays the same;
    Runtime.describe shows the generation. Events not taken yet carry over.
    """
    run = _workflow_run("continue_as_new")
    raise ContinueAsNew(run.next_arguments(list(args)))


def run_child(
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    detached: bool = False,
) -> Coroutine[Any, Any, R]:
    """Run another workflow as a child: its own journal, linked to this one; its result.

    A replay never runs a finished child again. Children are structured: cancelling this
    workflow cancels the child it awaits, and when this workflow ends (returns, fails, is
    cancelled, or continues as new) every child it started that is still running is
    cancelled, durably (journaled in the child; a child running nowhere takes it when it
    resumes), at any depth, even a child in a task nobody awaited.

    Args:
        workflow: a function decorated with @durable.workflow.
        *args: its arguments, journaled.
        id: the child's workflow id (default `<this id>.<step>`, always this workflow's
            own). An id that already names a run of another workflow, of other arguments,
            or not started by this workflow is refused (ChildIdInUse), never joined.
        detached: the child outlives this workflow: its end does not cancel it (default
            False; Temporal's parent-close policy ABANDON). Journaled with the step.

    Raises:
        WorkflowFailed: the child failed (its recorded failure).
        WorkflowCancelled: the child was cancelled.
        ChildIdInUse: `id` names another run; nothing was started or joined. Journaled as
            this step's outcome, so a replay raises it again.
    """
    caller = sys._getframe(1)  # (the call site, journaled with the step)
    child = _run_child(workflow, args, id, detached, code=caller.f_code, offset=caller.f_lasti)
    return in_order(child)  # sets iterate in call order


async def _run_child(
    workflow: Any,
    args: tuple[Any, ...],
    id: str | None,
    detached: bool,
    *,
    code: CodeType,
    offset: int,
) -> Any:
    run = _workflow_run("run_child")
    if not isinstance(workflow, Workflow):
        raise WorkflowDefinitionError(
            f"{workflow!r} is not a durable workflow: decorate it with @durable.workflow"
        )
    waiting = run.request_child(
        workflow, workflow.spec, args, id, detached=detached, code=code, offset=offset
    )
    if isinstance(waiting, RecordedOutcome):
        return waiting.unwrap()
    return await waiting


def sleep(duration: Duration) -> Coroutine[Any, Any, None]:
    """Sleep durably: the fire time is journaled, so a restart wakes at the original time.

    Args:
        duration: seconds, a timedelta, or a string such as "30s", "2 hours", "1h30m".
    """
    seconds = to_seconds(duration, what="sleep duration")
    caller = sys._getframe(1)  # (the call site, journaled with the timer)
    return in_order(_sleep(seconds, caller.f_code, caller.f_lasti))


async def _sleep(seconds: float, code: CodeType, offset: int) -> None:
    run = current_run()
    if run is not None and seconds > 0:  # (asyncio.sleep(0) arms no timer)
        run.hint_timer_site(code, offset)  # (taken by the timer asyncio.sleep asks for now)
    await asyncio.sleep(seconds)


def now() -> datetime:
    """The current time (aware UTC); in a workflow, the journaled time of the latest event.

    In a workflow or an activity it is the runtime's clock, which a durable.testing runtime
    makes virtual; elsewhere the system clock.
    """
    run = current_run()
    if run is not None:
        return datetime.fromtimestamp(run.loop.time(), UTC)
    activity = current_activity.get()
    if activity is not None:
        return datetime.fromtimestamp(activity[5](), UTC)
    return datetime.now(UTC)


def random() -> float:
    """A float in [0, 1), like random.random(); in a workflow, the same on every replay."""
    run = current_run()
    return run.random.random() if run is not None else _random.random()


def uuid4() -> uuid.UUID:
    """A random UUID; in a workflow, the same on every replay."""
    run = current_run()
    if run is None:
        return uuid.uuid4()
    return uuid.UUID(int=run.random.getrandbits(128), version=4)


def workflow_info() -> WorkflowInfo:
    """The running workflow's id, name and start time.

    Raises:
        OutsideWorkflowError: not called from workflow code.
    """
    run = current_run()
    if run is None:
        raise OutsideWorkflowError(
            "durable.workflow_info() was called outside workflow code; call it in a function "
            "decorated with @durable.workflow (activities use durable.activity_info())"
        )
    return run.info


def activity_info() -> ActivityInfo:
    """The running activity attempt, with its stable idempotency_key.

    Raises:
        OutsideWorkflowError: not called from an activity run by a workflow.
    """
    info = current_activity.get()
    if info is None:
        raise OutsideWorkflowError(
            "durable.activity_info() was called outside an activity run by a workflow; "
            "call it inside an @durable.activity function awaited from a workflow"
        )
    workflow_id, name, step, attempt, generation, _ = info
    return ActivityInfo(
        workflow_id=workflow_id,
        activity_name=name,
        step=step,
        attempt=attempt,
        generation=generation,
    )
