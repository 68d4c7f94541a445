"""Workflows in every state, made by real runs, for the CLI, catalog and web UI tests.

    python sample_app.py JOURNAL_DIR     resume the unfinished ones and run until they end

`make_directory(path)` runs them in-process: a completed order (with a flaky step retried
twice), a failed one, one waiting for an event, one sleeping 2 hours, and a cancelled one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

import durable
from durable import RetryPolicy

RUNNING = durable.WorkflowState.RUNNING
FAST_RETRY = RetryPolicy(initial_interval=0.01, maximum_attempts=3)


@dataclass
class Order:
    number: int
    amount: float


class CardDeclined(Exception):
    pass


@durable.activity(retry=FAST_RETRY)
async def charge_payment(order: Order) -> str:
    info = durable.activity_info()
    if order.number == 7 and info.attempt < 3:  # fails twice, then succeeds
        raise ConnectionError(f"payment API timed out (attempt {info.attempt})")
    if order.amount > 1000:
        raise CardDeclined(f"card declined for {order.amount}")
    return f"pay-{order.number}"


@durable.activity
async def reserve_stock(order: Order) -> list[str]:
    return [f"sku-{order.number}-a", f"sku-{order.number}-b"]


@durable.workflow
async def order_workflow(order: Order) -> str:
    payment = await charge_payment(order)
    durable.set_status({"paid": payment})
    await reserve_stock(order)
    decision = (
        await durable.wait_for_event("approved", timeout="1 day")
        if order.number in (3, 5)
        else "auto"
    )
    await durable.sleep("2 hours" if order.number == 4 else 0.01)
    return f"shipped {order.number} ({decision})"


WORKFLOW_IDS = {
    "completed": "order-7",
    "failed": "order-2",
    "waiting": "order-3",
    "sleeping": "order-4",
    "cancelled": "order-5",
}
STATES = {  # what make_directory leaves each workflow in
    "order-7": "completed",
    "order-2": "failed",
    "order-3": "waiting for event",
    "order-4": "sleeping",
    "order-5": "cancelled",
}
ORDERS = {
    "order-7": Order(7, 20.0),
    "order-2": Order(2, 5000.0),
    "order-3": Order(3, 30.0),
    "order-4": Order(4, 40.0),
    "order-5": Order(5, 50.0),
}


def _runtime(source: Path | str) -> durable.Runtime:
    if isinstance(source, str) and source.startswith("postgresql://"):
        return durable.Runtime(store=durable.PostgresStore(source), suspend_after=None)
    return durable.Runtime(source, suspend_after=None)


async def make_directory(directory: Path | str) -> None:
    """Leave a journal directory (or a PostgreSQL DSN's store) with a workflow in each state."""
    async with _runtime(directory) as runtime:
        await runtime.run(order_workflow, ORDERS["order-7"], id="order-7")
        with contextlib.suppress(durable.WorkflowFailed):
            await runtime.run(order_workflow, ORDERS["order-2"], id="order-2")
        waiting = await runtime.start(order_workflow, ORDERS["order-3"], id="order-3")
        sleeping = await runtime.start(order_workflow, ORDERS["order-4"], id="order-4")
        cancelled = await runtime.start(order_workflow, ORDERS["order-5"], id="order-5")
        for workflow_id in ("order-3", "order-4", "order-5"):
            while True:
                with contextlib.suppress(durable.WorkflowNotFound):  # (PostgreSQL: committed)
                    if (await runtime.describe(workflow_id)).state is not RUNNING:
                        break
                await asyncio.sleep(0.01)
        await runtime.cancel("order-5", "customer changed their mind")
        with contextlib.suppress(durable.WorkflowCancelled):
            await cancelled.result()
        del waiting, sleeping


async def resume(directory: Path) -> None:
    """What a long-running service does: resume every unfinished workflow, run to the end."""
    async with durable.Runtime(
        directory, workflows=[order_workflow], event_poll_interval=0.1
    ) as runtime:
        handles = await runtime.recover()
        print("resumed", len(handles), flush=True)
        await asyncio.gather(*(handle.result() for handle in handles), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(resume(Path(sys.argv[1])))
