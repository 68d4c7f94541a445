"""A runner of one workflow that waits for an event, for the post-then-die crash test.

    python pg_waiter_app.py DSN WORKFLOW_ID

Prints "started" once the workflow's first records are committed (a sender in another
process may post to it from then on), then runs it until killed. Its lease is short, so
a serving process takes the workflow over soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import durable
from durable import PostgresStore, Runtime

LEASE = 0.5


@durable.activity(name="waiter-ship")
async def ship(approval: str) -> str:
    return f"shipped ({approval})"


@durable.workflow(name="waiter")
async def waiter() -> str:
    await ship("a first step: its record commits the start record")
    approval = await durable.wait_for_event("go")  # (suspends at once: suspend_after=0)
    return await ship(approval)


async def main(dsn: str, workflow_id: str) -> None:
    store = PostgresStore(dsn, lease=LEASE)
    note = store.note

    async def slow_note(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)  # (widens the window in which a post races the note)
        await note(*args, **kwargs)

    store.note = slow_note  # type: ignore[method-assign]
    async with Runtime(store=store, suspend_after=0, event_poll_interval=0.05) as runtime:
        handle = await runtime.start(waiter, id=workflow_id)
        while True:  # (a sender elsewhere sees it once its first records are committed)
            with contextlib.suppress(durable.WorkflowNotFound):
                await runtime.describe(workflow_id)
                break
            await asyncio.sleep(0.001)
        print("started", flush=True)
        await handle.result()
        print("finished", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
