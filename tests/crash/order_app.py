"""The order workflow as a crash test runs it in a child process (not a test module).

    python order_app.py JOURNAL_DIR LEDGER ORDER_ID

Each activity writes "start" and "end" lines, with its idempotency key, to LEDGER: the
outside world, which survives the SIGKILLs the parent sends at random moments.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

import durable
from durable import RetryPolicy


@dataclass
class Order:
    id: str
    amount: int


def ledger(event: str, step: str) -> None:
    key = durable.activity_info().idempotency_key
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {step} {key} {os.getpid()}\n")
        file.flush()


async def effect(step: str) -> None:
    ledger("start", step)
    await asyncio.sleep(0.02)
    ledger("end", step)


@durable.activity(retry=RetryPolicy(maximum_attempts=3))
async def charge_payment(order: Order) -> str:
    await effect("charge_payment")
    return f"pay_{order.id}"


@durable.activity
def update_inventory(order: Order) -> int:
    ledger("start", "update_inventory")
    ledger("end", "update_inventory")
    return order.amount // 10


@durable.activity
async def create_shipment(order: Order, payment: str) -> str:
    await effect("create_shipment")
    return f"track_{payment}"


@durable.activity
async def send_email(order: Order, tracking: str) -> None:
    await effect("send_email")


@durable.workflow(name="order")
async def order_workflow(order: Order) -> str:
    payment = await charge_payment(order)
    reserved = await update_inventory(order)
    await durable.sleep(0.15)
    tracking, _ = await asyncio.gather(create_shipment(order, payment), asyncio.sleep(0.01))
    await send_email(order, tracking)
    return f"{tracking}:{reserved}:{durable.workflow_info().workflow_id}"


STEPS = ["charge_payment", "update_inventory", "create_shipment", "send_email"]


async def main() -> None:
    async with durable.Runtime(sys.argv[1]) as runtime:
        order_id = sys.argv[3]
        result = await runtime.run(order_workflow, Order(order_id, 420), id=order_id)
    print("RESULT", result, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
