"""The web UI's resume, restart and fork: a request body validated once, then the Runtime.

POST /api/workflows/{id}/resume   {reason?}
POST /api/workflows/{id}/restart  {reason?, new_id?}
POST /api/workflows/{id}/fork     {reason?, new_id?, at_step: int >= 0 | from_failure: true,
                                   override?: {step: int >= 0, value: JSON}}

The page asks for confirmation first (a dialog naming the workflow and what happens). Each
action only writes (Runtime(...).resume(..., start=False)), and a process that runs the
workflow's code runs what it made. The UI's runtime knows the code `durable ui --code`
(create_app(workflows=...)) gave it: with it, what a resume or fork keeps is replayed
first, and an override is checked against the activity's return annotation (InvalidOverride,
400, says why); without it, an override is refused (400) saying to give the code. `by` is
journaled as "web UI" and the caller's address. Refusals are the Runtime's durable errors
(ActionRefused: 409, InvalidForkStep: 400, WorkflowNotFound: 404), mapped by the app.
"""

from __future__ import annotations

from typing import Any

from .._runtime import Runtime

TEXT_LIMIT = 1000  # characters of a reason or a new id
ACTIONS = ("resume", "restart", "fork")


class BadOperation(ValueError):
    """A request body the action cannot take (400), in words."""


def _text(body: dict[str, Any], key: str, what: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > TEXT_LIMIT:
        raise BadOperation(f"{key} must be text of at most {TEXT_LIMIT} characters ({what})")
    return value


def _step(body: dict[str, Any], what: str) -> tuple[int | None, bool]:
    at_step, from_failure = body.get("at_step"), body.get("from_failure", False)
    if from_failure is not True and from_failure is not False:
        raise BadOperation(f"from_failure must be true or false ({what})")
    if at_step is not None and (type(at_step) is not int or at_step < 0):
        raise BadOperation(f"at_step must be an integer >= 0 ({what})")
    if (at_step is None) == (not from_failure):
        raise BadOperation(f"give at_step or from_failure, one of them ({what})")
    return at_step, from_failure


def _override(body: dict[str, Any], what: str) -> dict[int, Any] | None:
    """A fork's {"override": {"step": N, "value": V}} as Runtime.fork takes it ({N: V})."""
    given = body.get("override")
    if given is None:
        return None
    if not isinstance(given, dict) or set(given) != {"step", "value"}:
        raise BadOperation(
            f'override must be {{"step": N, "value": <JSON>}}, both and nothing else ({what})'
        )
    step = given["step"]
    if type(step) is not int or step < 0:
        raise BadOperation(f"override's step must be an integer >= 0 ({what})")
    return {step: given["value"]}


async def operate(
    runtime: Runtime, workflow_id: str, action: str, body: dict[str, Any], caller: str
) -> dict[str, Any]:
    """Do `action` on the workflow as the request body says; the answer (the run's id).

    Raises:
        BadOperation: an unknown action, or a body it cannot take.
        and the Runtime's durable errors.
    """
    what = f"{action} of workflow {workflow_id!r}"
    if action not in ACTIONS:
        raise BadOperation(f"unknown action {action!r}: resume, restart or fork")
    reason = _text(body, "reason", what)
    by = f"web UI ({caller})"
    if action == "resume":
        handle = await runtime.resume(workflow_id, by=by, reason=reason, start=False)
    elif action == "restart":
        new_id = _text(body, "new_id", what)
        handle = await runtime.restart(
            workflow_id, new_id=new_id, by=by, reason=reason, start=False
        )
    else:
        new_id = _text(body, "new_id", what)
        at_step, from_failure = _step(body, what)
        override = _override(body, what)
        handle = await runtime.fork(
            workflow_id,
            at_step=at_step,
            from_failure=from_failure,
            override=override,
            new_id=new_id,
            by=by,
            reason=reason,
            start=False,
        )
    return {"action": action, "workflow_id": str(handle.id)}
