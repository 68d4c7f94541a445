"""A start of an id holds the journal to what it recorded: the same workflow, the same arguments.

run()/start() of an id that exists joins its run only if the caller asks for the workflow
the journal recorded, with the arguments it recorded (compared encoded, then decoded: a
set may encode in another order); else WorkflowIdInUse or WorkflowDefinitionError.
"""

from __future__ import annotations

import reprlib
from typing import Any

from ._definitions import Workflow
from ._encoding import decode, encode
from ._engine._workflow_run import WorkflowRun
from ._errors import WorkflowDefinitionError, WorkflowIdInUse


def check_same_workflow(recorded: str, definition: Workflow[..., Any], workflow_id: str) -> None:
    if recorded != definition.name:
        raise WorkflowDefinitionError(
            f"workflow id {workflow_id!r} belongs to workflow {recorded!r}, not "
            f"{definition.name!r}: use another id"
        )


SHORT = reprlib.Repr()  # argument lists shortened for an error message (not changed after)
SHORT.maxstring = SHORT.maxother = 60
SHORT.maxlist = SHORT.maxdict = SHORT.maxtuple = SHORT.maxset = 6
SHORT.maxlevel = 3


def check_arguments(run: WorkflowRun, given: bytes, arguments: list[Any] | None) -> None:
    """Refuse a run()/start() whose arguments are not those its id's journal recorded.

    A later generation's start record holds the arguments continue_as_new passed, not the
    caller's: the first generation's are gone, so such a run is never refused.
    """
    if run.generation != 0:
        return
    recorded = encode(run.arguments, context="the recorded arguments")
    if recorded == given:  # (the digests the journal names calls by, byte for byte)
        return
    # A set encodes in its iteration order, which a set of equal values in another process
    # (or built in another order) may not share: equal decoded values are the same call.
    if decode(given, path=run.workflow_id, offset=0) == run.arguments:
        return
    raise WorkflowIdInUse(
        workflow_id=run.workflow_id,
        recorded=SHORT.repr(run.arguments),
        given=SHORT.repr(arguments),
    )
