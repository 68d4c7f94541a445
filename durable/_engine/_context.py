"""How in-workflow and in-activity calls find what they run in, and what they are told of it.

Workflow code runs on its own WorkflowLoop, so the running loop *is* the current workflow
(`_workflow_run.current_run`, beside the class it returns). Activities run on the host
loop or in worker threads, so they are found by a ContextVar, which tasks and anyio's
worker threads copy.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class WorkflowInfo:
    """The running workflow, as workflow_info() reports it.

    Attributes:
        workflow_id: the workflow's id (its journal's name).
        workflow_name: the registered name of the workflow function.
        start_time: when the workflow first started (aware UTC; the same on every replay).
    """

    workflow_id: str
    workflow_name: str
    start_time: datetime


@dataclass(frozen=True)
class ActivityInfo:
    """The running activity attempt, as activity_info() reports it.

    Attributes:
        workflow_id: the workflow that called the activity.
        activity_name: the activity's registered name.
        step: the call's position in the workflow (stable across replays).
        attempt: 1 for the first attempt, then 2, 3, ...
        generation: 0, then one more per continue_as_new of the workflow.
        idempotency_key: `<workflow id>/<step>` (`<workflow id>/g<generation>/<step>` after
            a continue_as_new): the same for every attempt and after any crash, so a
            payment API given it charges once; different for every call.
    """

    workflow_id: str
    activity_name: str
    step: int
    attempt: int
    generation: int = 0

    @property
    def idempotency_key(self) -> str:
        if self.generation:
            return f"{self.workflow_id}/g{self.generation}/{self.step}"
        return f"{self.workflow_id}/{self.step}"


# (workflow id, activity name, step, attempt, generation, the runtime's clock): a tuple,
# built on every attempt, is cheaper than an ActivityInfo; activity_info() builds that only
# when asked. The clock is how durable.now() in an activity follows a test's virtual time.
current_activity: ContextVar[tuple[str, str, int, int, int, Callable[[], float]] | None] = (
    ContextVar("durable_current_activity", default=None)
)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ASYNCIO = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep


def user_call_site() -> str:
    """file:line of the innermost frame outside durable and asyncio: the user's call."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith(_PACKAGE) or filename.startswith(_ASYNCIO)):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"
