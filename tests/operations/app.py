"""Workflows the operations tests act on: an order whose payment fails until it is fixed.

Also run as a subprocess by tests/crash/test_sigkill_operations.py. `BROKEN` (a set of
activity names) says which activities fail for now; `CALLS` counts what ran, here and, in a
subprocess, in the file $OPS_CALLS (a line per call, appended and synced before returning).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass

import durable

BROKEN: set[str] = set()
CALLS: list[str] = []


def _called(name: str) -> None:
    CALLS.append(name)
    path = os.environ.get("OPS_CALLS")
    if path:
        with open(path, "a") as log:
            log.write(f"{name}\n")
            log.flush()
            os.fsync(log.fileno())


@dataclass
class Receipt:
    amount: int
    reference: str


FAST = durable.RetryPolicy(initial_interval=0.01, maximum_attempts=2)


@durable.activity(retry=FAST)
async def reserve(order: str) -> str:
    _called("reserve")
    return f"reserved {order}"


@durable.activity(retry=FAST)
async def charge(order: str) -> Receipt:
    _called("charge")
    if "charge" in BROKEN:
        raise ConnectionError("the payment API is down")
    return Receipt(42, f"pay-{order}")


@durable.activity(retry=FAST)
async def ship(order: str, receipt: Receipt) -> str:
    _called("ship")
    return f"shipped {order} after {receipt.reference}"


@durable.workflow
async def order(name: str) -> list[str]:
    reserved = await reserve(name)
    receipt = await charge(name)
    shipped = await ship(name, receipt)
    return [reserved, receipt.reference, shipped]


@durable.workflow
async def waits(name: str) -> str:
    """Reserves, then waits for an event (to be cancelled there), then ships."""
    await reserve(name)
    approved = await durable.wait_for_event("approved")
    return await ship(name, Receipt(0, str(approved)))


async def _main(directory: str, action: str, workflow_id: str) -> None:
    """A subprocess's work: make the failed order, or act on it (and run what it made)."""
    async with durable.Runtime(directory, workflows=[order]) as runtime:
        if action == "fail":
            BROKEN.add("charge")
            with contextlib.suppress(durable.WorkflowFailed):
                await runtime.run(order, "o", id=workflow_id)
            return
        print("acting", flush=True)
        if action == "resume":
            handle = await runtime.resume(workflow_id, by="crash test", request_id="r-1")
        elif action == "restart":
            handle = await runtime.restart(workflow_id, by="crash test")
        else:
            handle = await runtime.fork(workflow_id, from_failure=True, by="crash test")
        print("result", await handle.result(), flush=True)


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:4]))
