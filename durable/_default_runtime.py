"""The lazily created default Runtime, and the module-level `run`, `start` and `enqueue` on it.

The default Runtime is made on first use from `$DURABLE_DIR` (or ./.durable): the only
mutable module state in durable, kept here so that nothing else shares this module's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple, Unpack

from ._definitions import OMITTED, _Omitted
from ._durations import Duration
from ._handles import WorkflowHandle
from ._queue_service import OnDuplicate
from ._queues import DEFAULT_PRIORITY, Queue
from ._runtime import Runtime

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


_default_runtime: Runtime | None = None


def default_runtime() -> Runtime:
    """The runtime durable.run() and durable.start() use, created on first use."""
    global _default_runtime  # noqa: PLW0603 (the one lazily created default runtime)
    if _default_runtime is None:
        _default_runtime = Runtime()
    return _default_runtime


async def run(
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    attach: bool = False,
    execution_timeout: Duration | _Omitted | None = OMITTED,
) -> R:
    """Run a workflow on the default runtime ($DURABLE_DIR or ./.durable); see Runtime.run.

    The default runtime is made on first use (reading $DURABLE_DIR then); for a directory
    of your own, recover() or a long-running service, open a Runtime.

    ```python
    tracking = await durable.run(order_workflow, order, id="order-42")
    ```

    Running the same id again returns the recorded result (or resumes an unfinished run
    from its journal): choose an id that names the business thing, not the attempt.
    """
    return await default_runtime().run(
        workflow, *args, id=id, attach=attach, execution_timeout=execution_timeout
    )


async def start(
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    attach: bool = False,
    execution_timeout: Duration | _Omitted | None = OMITTED,
) -> WorkflowHandle[R]:
    """Start a workflow on the default runtime; see Runtime.start.

    ```python
    handle = await durable.start(order_workflow, order, id="order-42")
    await handle.send_event("warehouse-confirmed", {"packer": "Grace"})
    tracking = await handle.result()
    ```
    """
    return await default_runtime().start(
        workflow, *args, id=id, attach=attach, execution_timeout=execution_timeout
    )


async def enqueue(
    queue: Queue,
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    key: str | None = None,
    priority: int = DEFAULT_PRIORITY,
    dedup_id: str | None = None,
    delay: Duration | None = None,
    on_duplicate: OnDuplicate = "return",
) -> WorkflowHandle[R]:
    """Queue a workflow on the default runtime; see Runtime.enqueue.

    ```python
    orders = durable.Queue("orders", concurrency=10)
    handle = await durable.enqueue(orders, order_workflow, order, key=order.customer_id)
    ```

    A process that only enqueues need not declare the queue; a runtime that declares it
    (`Runtime(queues=[orders])`, in any process on the store) starts the work.
    """
    return await default_runtime().enqueue(
        queue,
        workflow,
        *args,
        id=id,
        key=key,
        priority=priority,
        dedup_id=dedup_id,
        delay=delay,
        on_duplicate=on_duplicate,
    )
