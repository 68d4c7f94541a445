"""A small fleet of workflows in every state, for the query and bulk-action tests.

    python -m tests.query_fleet JOURNAL_DIR    make it there (used by the subprocess tests)

`make_fleet(runtime)` runs them and leaves: pay-00..pay-05 ("charge": even ones completed,
pay-01 and pay-03 failed with Declined, pay-05 sleeping an hour), ship-0..ship-2 ("ship":
waiting for the event "go"), and parent-0 ("parent") whose child kid-0 ("kid") sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import durable
from durable import RetryPolicy


class Declined(Exception):
    pass


@durable.activity(retry=RetryPolicy(maximum_attempts=1))
async def debit(number: int) -> str:
    if number in (1, 3):
        raise Declined(f"card {number} declined")
    return f"paid {number}"


@durable.workflow(name="charge")
async def charge(number: int) -> str:
    paid = await debit(number)
    if number == 5:
        await durable.sleep("1 hour")
    return paid


@durable.workflow(name="ship")
async def ship(number: int) -> str:
    return str(await durable.wait_for_event("go"))


@durable.workflow(name="kid")
async def kid() -> None:
    await durable.sleep("1 hour")


@durable.workflow(name="parent")
async def parent() -> None:
    await durable.run_child(kid, id="kid-0")


WORKFLOWS: list[durable.Workflow[..., Any]] = [charge, ship, kid, parent]
UNFINISHED = {"pay-05", "ship-0", "ship-1", "ship-2", "parent-0", "kid-0"}


async def make_fleet(runtime: durable.Runtime) -> None:
    """Start the fleet and wait until each is where the docstring says."""
    for number in range(6):
        handle = await runtime.start(charge, number, id=f"pay-{number:02d}")
        if number != 5:
            with contextlib.suppress(durable.WorkflowFailed):
                await handle.result()
    for number in range(3):
        await runtime.start(ship, number, id=f"ship-{number}")
    await runtime.start(parent, id="parent-0")
    async with asyncio.timeout(20):
        while True:
            where = durable.WorkflowFilter(workflow_id=sorted(UNFINISHED))
            page = await runtime.list_workflows(where)
            states = {d.workflow_id: str(d.state) for d in page.workflows}
            if len(states) == len(UNFINISHED) and all(
                state in ("sleeping", "waiting for event") or workflow_id == "parent-0"
                for workflow_id, state in states.items()
            ):
                return
            await asyncio.sleep(0.02)


async def make_directory(directory: Path) -> None:
    async with durable.Runtime(directory, suspend_after="0 s", workflows=WORKFLOWS) as runtime:
        await make_fleet(runtime)


if __name__ == "__main__":
    asyncio.run(make_directory(Path(sys.argv[1])))
