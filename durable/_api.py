"""Calls workflow code makes: sleep, now, random, uuid4, workflow_info, activity_info.

Inside a workflow they read the workflow's loop (logical clock, seeded randomness), so they
replay identically; elsewhere they fall back to the real clock and randomness, so shared
helpers also work in activities and tests.
"""

from __future__ import annotations

import asyncio
import random as _random
import uuid
from datetime import UTC, datetime

from ._durations import Duration, to_seconds
from ._engine._context import ActivityInfo, WorkflowInfo, current_activity, current_run
from ._errors import OutsideWorkflowError


async def sleep(duration: Duration) -> None:
    """Sleep durably: the fire time is journaled, so a restart wakes at the original time.

    Args:
        duration: seconds, a timedelta, or a string such as "30s", "2 hours", "1h30m".
    """
    await asyncio.sleep(to_seconds(duration, what="sleep duration"))


def now() -> datetime:
    """The current time (aware UTC); in a workflow, the journaled time of the latest event."""
    run = current_run()
    if run is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(run.loop.time(), UTC)


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
    workflow_id, name, step, attempt = info
    return ActivityInfo(workflow_id=workflow_id, activity_name=name, step=step, attempt=attempt)
