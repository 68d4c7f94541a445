"""The fields a log record gets from where it was logged: workflow, activity, step, attempt.

durable's own loggers are `durable_logger()` adapters, which add them as `extra`; the
public `durable.LogContext` filter (`_log_context`) adds them to any record. A workflow's
fields come from the running workflow loop, an activity's from its ContextVar, and the
runtime's task of a workflow sets `current_workflow` in its context (what it logs, and
the tasks it starts, carry the id). Storage and the workflow loop log without them (below).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

from .._asyncio_private import our_running_loop
from ._context import current_activity
from ._loop import WorkflowLoop

# The workflow a runtime's task runs (set in that task's context: its activities, children's
# starts and logs inherit it). (workflow id, workflow name)
current_workflow: ContextVar[tuple[str, str] | None] = ContextVar(
    "durable_current_workflow", default=None
)

FIELDS = ("workflow_id", "workflow_name", "activity", "step", "attempt")


def context_fields() -> dict[str, Any]:
    """The durable fields of the code running now ({} outside workflows and activities)."""
    activity = current_activity.get()
    if activity is not None:
        workflow_id, name, step, attempt, generation, _ = activity
        fields: dict[str, Any] = {
            "workflow_id": workflow_id,
            "activity": name,
            "step": step,
            "attempt": attempt,
        }
        if generation:
            fields["generation"] = generation
        running = current_workflow.get()
        if running is not None and running[0] == workflow_id:
            fields["workflow_name"] = running[1]
        return fields
    loop = our_running_loop()
    if isinstance(loop, WorkflowLoop):
        run: Any = loop.owner  # (a WorkflowRun: this module is below it)
        fields = {"workflow_id": run.workflow_id, "workflow_name": run.spec.name}
        if run.generation:
            fields["generation"] = run.generation
        return fields
    running = current_workflow.get()
    if running is not None:
        return {"workflow_id": running[0], "workflow_name": running[1]}
    return {}


class ContextAdapter(logging.LoggerAdapter[logging.Logger]):
    """durable's own loggers: the fields of the code logging, as `extra` (no filter needed)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        fields = context_fields()
        if fields:
            given = kwargs.get("extra")
            kwargs["extra"] = fields if not given else {**fields, **given}
        return msg, kwargs


def durable_logger(name: str = "durable") -> ContextAdapter:
    """The logger of a durable module (its records carry the workflow's fields)."""
    return ContextAdapter(logging.getLogger(name), {})
