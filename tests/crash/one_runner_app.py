"""Several of these processes run, start, recover and follow the same workflow ids at once,
for the one-runner crash test (not a test module).

    python -m tests.crash.one_runner_app STORE LEDGER MODE ID...

STORE is a journal directory or a postgresql:// DSN; MODE is run, start or recover (recover,
then a handle to every id it did not resume). Each activity attempt writes "start" and "end"
lines with its step, idempotency key and pid to LEDGER (the outside world: it survives the
SIGKILLs and SIGSTOPs the test sends). Prints "RESULT <id> <value>" per id, or
"ERROR <id> <type> <message>", or "ABSENT <id>" (recover: no such workflow yet).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import durable
from durable import PostgresStore, Runtime
from tests.crash.ledger_app import attempt, drive

LEASE = 1.0


@durable.activity(name="one-runner-step")
async def step(name: str) -> str:
    return await attempt(name, 0.05)


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


async def main(store: str, mode: str, ids: list[str]) -> None:
    async with runtime_for(store) as runtime:
        await drive(runtime, flow, mode, ids)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[3], sys.argv[4:]))
