"""Processes that hold many unloaded sleepers by their name locks alone, for the sleeper
lock crash test (not a test module).

    python -m tests.crash.sleeper_lock_app DIRECTORY LEDGER MODE ID...

MODE is start (start every id, then wait for the results) or recover (recover, then a
handle to every id it did not resume). Each workflow runs an activity, sleeps twice (each
sleep unloads it: its journal's descriptor is closed, its runtime holds it by the name's
lock; the second sleep begins right after a wake-up reopened the journal), then runs
another. Activity attempts write "start"/"end" lines to LEDGER, as one_runner_app's do, and
the output is the same: "RESULT <id> <value>", "ERROR ..." or "ABSENT <id>".
"""

from __future__ import annotations

import asyncio
import sys

import durable
from durable import Runtime
from tests.crash.ledger_app import attempt, drive


@durable.activity(name="sleeper-lock-step")
async def step(name: str) -> str:
    return await attempt(name, 0.02)


@durable.workflow(name="sleeper-lock-flow")
async def flow(tag: str) -> str:
    first = await step("a")
    await durable.sleep(0.4)  # unloaded (suspend_after=0): held by its name's lock only
    await durable.sleep(0.3)  # reopened at the wake-up, unloaded again at once
    second = await step("b")
    return f"{tag}:{first}{second}"


async def main(directory: str, mode: str, ids: list[str]) -> None:
    async with Runtime(
        directory, workflows=[flow], suspend_after=0, event_poll_interval=0.05
    ) as runtime:
        await drive(runtime, flow, mode, ids)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[3], sys.argv[4:]))
