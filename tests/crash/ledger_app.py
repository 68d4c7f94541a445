"""What the apps of the one-runner crash tests share (imported by them, not a test module).

Each activity attempt writes "start"/"end" lines with its step, idempotency key and pid to
the ledger (argv[2]); `drive` takes the ids as the process's mode says and prints one
"RESULT <id> <value>", "ERROR <id> <type> <message>" or "ABSENT <id>" line per id.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable
from typing import Any

import durable
from durable import Runtime


def ledger(event: str, step: str) -> None:
    info = durable.activity_info()
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {info.workflow_id} {step} {info.idempotency_key} {os.getpid()}\n")


async def attempt(name: str, seconds: float) -> str:
    """An activity's body: its start and end in the ledger, `seconds` apart."""
    ledger("start", name)
    await asyncio.sleep(seconds)
    ledger("end", name)
    return name


async def _outcome(workflow_id: str, waiting: Awaitable[Any]) -> str:
    try:
        return f"RESULT {workflow_id} {await waiting}"
    except durable.WorkflowNotFound:
        return f"ABSENT {workflow_id}"
    except Exception as error:  # (reported, for the test to fail on)
        return f"ERROR {workflow_id} {type(error).__name__} {error}"


async def drive(runtime: Runtime, flow: Any, mode: str, ids: list[str]) -> None:
    """`run`, `start` or `recover` (then a handle to every id not resumed) the ids; print."""
    waits: list[Awaitable[Any]]
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
    for line in await asyncio.gather(*(_outcome(i, w) for i, w in zip(ids, waits, strict=True))):
        print(line, flush=True)
