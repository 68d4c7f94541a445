"""Several of these processes run, start, recover and follow the same workflow ids at once,
for the one-runner crash test (not a test module).

    python one_runner_app.py STORE LEDGER MODE ID...

STORE is a journal directory or a postgresql:// DSN; MODE is run, start or recover (recover,
then a handle to every id it did not resume). Each activity attempt writes "start" and "end"
lines with its step, idempotency key and pid to LEDGER (the outside world: it survives the
SIGKILLs and SIGSTOPs the test sends). Prints "RESULT <id> <value>" per id, or
"ERROR <id> <type> <message>", or "ABSENT <id>" (recover: no such workflow yet).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import durable
from durable import PostgresStore, Runtime

LEASE = 1.0


def ledger(event: str, step: str) -> None:
    info = durable.activity_info()
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {info.workflow_id} {step} {info.idempotency_key} {os.getpid()}\n")


@durable.activity(name="one-runner-step")
async def step(name: str) -> str:
    ledger("start", name)
    await asyncio.sleep(0.05)
    ledger("end", name)
    return name


@durable.workflow(name="one-runner-flow")
async def flow(tag: str) -> str:
    first = await step("a")
    await durable.sleep(0.3)  # unloaded (suspend_after=0.1): its runtime keeps the journal
    second = await step("b")
    return f"{tag}:{first}{second}"


def runtime_for(store: str) -> Runtime:
    options: dict[str, Any] = {"suspend_after": 0.1, "event_poll_interval": 0.05}
    if store.startswith("postgresql://"):
        return Runtime(store=PostgresStore(store, lease=LEASE), workflows=[flow], **options)
    return Runtime(store, workflows=[flow], **options)


async def outcome(workflow_id: str, waiting: Any) -> str:
    try:
        return f"RESULT {workflow_id} {await waiting}"
    except durable.WorkflowNotFound:
        return f"ABSENT {workflow_id}"
    except Exception as error:  # (reported, for the test to fail on)
        return f"ERROR {workflow_id} {type(error).__name__} {error}"


async def main(store: str, mode: str, ids: list[str]) -> None:
    async with runtime_for(store) as runtime:
        if mode == "run":
            waits = [runtime.run(flow, i, id=i) for i in ids]
        elif mode == "start":
            handles = [await runtime.start(flow, i, id=i) for i in ids]
            waits = [handle.result() for handle in handles]
        else:
            resumed = {handle.id: handle for handle in await runtime.recover()}

            async def result(workflow_id: str) -> Any:
                handle = resumed.get(workflow_id) or await runtime.handle(workflow_id)
                return await handle.result()

            waits = [result(i) for i in ids]
        for line in await asyncio.gather(*(outcome(i, w) for i, w in zip(ids, waits, strict=True))):
            print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[3], sys.argv[4:]))
