"""What a queued request holds: built once from an enqueue, read back once to launch it.

Shared by the file store's queue service and PostgreSQL's, so both refuse the same bad
calls with the same errors and store the same payload ({"wf": name, "args": [...]}).
"""

from __future__ import annotations

import uuid
from typing import Any

from ._definitions import Workflow
from ._encoding import convert, decode, encode
from ._engine._records import trace_carrier
from ._errors import InvalidQueue
from ._queues import Queue


def new_request(
    queue: Queue,
    declared: Queue | None,
    definition: Workflow[..., Any],
    arguments: list[Any],
    *,
    workflow_id: str | None,
    on_duplicate: str,
    trace: dict[str, str] | None = None,
) -> tuple[str, bytes]:
    """The workflow id (given, or the workflow's name and a random suffix) and the payload.

    `trace`: the enqueuer's trace carrier (OpenTelemetry on), kept as the payload's "tc".

    Raises:
        InvalidQueue: a bad on_duplicate, or `queue` differs from the one this runtime
            declares under its name (`declared`).
        SerializationError: an argument cannot be journaled.
    """
    if on_duplicate not in ("return", "raise"):
        raise InvalidQueue(
            queue=queue.name,
            option="on_duplicate",
            value=on_duplicate,
            expected='"return" or "raise"',
        )
    if declared is not None and declared != queue:
        raise InvalidQueue(
            queue=queue.name,
            option="queue",
            value=queue,
            expected=f"the queue this runtime declares ({declared!r})",
        )
    request: dict[str, Any] = {"wf": definition.name, "args": arguments}
    if trace is not None:
        request["tc"] = trace
    payload = encode(request, context=f"the arguments of workflow {definition.name!r}")
    if workflow_id is None:
        workflow_id = f"{definition.name}-{uuid.uuid4().hex}"
    return workflow_id, payload


def launch_arguments(
    workflows: dict[str, Workflow[..., Any]], payload: bytes, workflow_id: str
) -> tuple[Workflow[..., Any], list[Any], dict[str, str] | None]:
    """The workflow a request names, its arguments (rebuilt) and the enqueuer's trace carrier.

    KeyError: the workflow is unknown here. The carrier is None when there is none, or
    what is there is not one (a request is a file: anyone's).

    Raises:
        KeyError, JournalCorrupted, SerializationError: the request cannot be started.
    """
    decoded = decode(payload, path=workflow_id, offset=0)
    definition = workflows[str(decoded["wf"])]
    types = definition.spec.parameter_types
    context = f"an argument of workflow {definition.name!r}"
    arguments = [
        convert(value, types[index] if index < len(types) else Any, context=context)
        for index, value in enumerate(decoded["args"])
    ]
    return definition, arguments, trace_carrier(decoded.get("tc"))
