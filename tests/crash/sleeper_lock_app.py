"""Processes that hold many unloaded sleepers by their name locks alone, for the sleeper
lock crash test (not a test module).

    python sleeper_lock_app.py DIRECTORY LEDGER MODE ID...

MODE is start (start every id, then wait for the results) or recover (recover, then a
handle to every id it did not resume). Each workflow runs an activity, sleeps twice (each
sleep unloads it: its journal's descriptor is closed, its runtime holds it by the name's
lock; the second sleep begins right after a wake-up reopened the journal), then runs
another. Activity attempts write "start"/"end" lines to LEDGER, as one_runner_app's do, and
the output is the same: "RESULT <id> <value>", "ERROR ..." or "ABSENT <id>".
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import durable
from durable import Runtime


def ledger(event: str, step: str) -> None:
    info = durable.activity_info()
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {info.workflow_id} {step} {info.idempotency_key} {os.getpid()}\n")


@durable.activity(name="sleeper-lock-step")
async def step(name: str) -> str:
    ledger("start", name)
    await asyncio.sleep(0.02)
    ledger("end", name)
    return name


@durable.workflow(name="sleeper-lock-flow")
async def flow(tag: str) -> str:
    first = await step("a")
    await durable.sleep(0.4)  # unloaded (suspend_after=0): held by its name's lock only
    await durable.sleep(0.3)  # reopened at the wake-up, unloaded again at once
    second = await step("b")
    return f"{tag}:{first}{second}"


async def outcome(workflow_id: str, waiting: Any) -> str:
    try:
        return f"RESULT {workflow_id} {await waiting}"
    except durable.WorkflowNotFound:
        return f"ABSENT {workflow_id}"
    except Exception as error:  # (reported, for the test to fail on)
        return f"ERROR {workflow_id} {type(error).__name__} {error}"


async def main(directory: str, mode: str, ids: list[str]) -> None:
    options: dict[str, Any] = {"suspend_after": 0, "event_poll_interval": 0.05}
    async with Runtime(directory, workflows=[flow], **options) as runtime:
        if mode == "start":
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
