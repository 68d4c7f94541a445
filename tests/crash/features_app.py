"""A workflow using events, a child, continue-as-new and a saga, run by a crash test.

    python features_app.py JOURNAL_DIR LEDGER ORDER_ID

Every activity writes "start" and "end" lines with its idempotency key to LEDGER (the
outside world, which survives the SIGKILLs). The test sends the "go" event from its own
process while this one runs, or while none does.
"""

from __future__ import annotations

import asyncio
import os
import sys

import durable
from durable import RetryPolicy


def ledger(event: str, step: str) -> None:
    key = durable.activity_info().idempotency_key
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {step} {key} {os.getpid()}\n")


@durable.activity(name="effect")
async def effect(step: str) -> str:
    ledger("start", step)
    await asyncio.sleep(0.02)
    ledger("end", step)
    return step


class Refused(Exception):
    pass


@durable.activity(name="ship", retry=RetryPolicy(maximum_attempts=1))
async def ship() -> None:
    ledger("start", "ship")
    await asyncio.sleep(0.02)
    ledger("end", "ship")
    raise Refused("the carrier refuses")


@durable.workflow(name="packer")
async def packer(order: str) -> str:
    return await effect("pack")


@durable.workflow(name="feature-order")
async def feature_order(order: str, generation: int) -> str:
    if generation == 0:
        await effect("charge")
        await durable.run_child(packer, order)
        go = await durable.wait_for_event("go", timeout="60 s")
        durable.continue_as_new(order, go)
    try:
        async with durable.Saga() as saga:
            await effect("reserve")
            saga.add(effect, "release")
            await ship()
    except durable.ActivityError:
        await effect("notify")
    return f"{order} done in generation {durable.workflow_info().workflow_id}:{generation}"


async def main() -> None:
    async with durable.Runtime(sys.argv[1], event_poll_interval="50 ms") as runtime:
        order_id = sys.argv[3]
        result = await runtime.run(feature_order, order_id, 0, id=order_id)
    print("RESULT", result, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
