"""A parent -> child -> grandchild chain and a detached child, run by a crash test.

    python children_app.py JOURNAL_DIR

"top" starts "middle" in a task it never awaits, and "audit" detached; "middle" awaits
"grandchild", which waits for an event nobody sends. So only structured children end the
chain: "top" returns, which cancels "middle", which cancels "grandchild"; "audit" finishes
on its own. Each process resumes what others left, killed or stopped (recover(), again
and again: another process may hold a journal for a while), until all four have ended; then
it prints DONE.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import durable

IDS = ("top", "middle", "grandchild", "audit")


@durable.activity(name="mark")
async def mark(what: str) -> str:
    await asyncio.sleep(0.01)
    return what


@durable.workflow(name="grandchild")
async def grandchild() -> str:
    await mark("grandchild")
    await durable.wait_for_event("never")
    return "grandchild finished"


@durable.workflow(name="middle")
async def middle() -> str:
    await mark("middle")
    return await durable.run_child(grandchild, id="grandchild")


@durable.workflow(name="audit")
async def audit() -> str:
    await durable.sleep(0.3)
    return await mark("audit")


@durable.workflow(name="top")
async def top() -> str:
    asyncio.create_task(durable.run_child(middle, id="middle"))  # noqa: RUF006
    asyncio.create_task(durable.run_child(audit, id="audit", detached=True))  # noqa: RUF006
    await mark("top")
    await durable.sleep(0.3)
    return "top finished"


async def never_started_grandchild(runtime: durable.Runtime) -> bool:
    """Whether "middle" ended before it started "grandchild" (then none ever exists).

    After a restart "top"'s timer may have passed already: "top" returns at once and
    cancels "middle" while its first step still runs (durable timers keep their time).
    """
    try:
        middle_now = await runtime.describe("middle")
    except durable.WorkflowNotFound:
        return False
    return middle_now.ended is not None and middle_now.steps < 2  # (its mark alone, no child)


async def all_ended(runtime: durable.Runtime) -> bool:
    for workflow_id in IDS:
        try:
            if (await runtime.describe(workflow_id)).ended is None:
                return False
        except durable.WorkflowNotFound:
            if workflow_id != "grandchild" or not await never_started_grandchild(runtime):
                return False
    return True


async def main() -> None:
    workflows = [top, middle, grandchild, audit]
    async with durable.Runtime(
        sys.argv[1], workflows=workflows, event_poll_interval="50 ms"
    ) as runtime:
        while True:
            await runtime.recover()
            with contextlib.suppress(durable.WorkflowAlreadyRunning):  # (running: here or not)
                await runtime.start(top, id="top")
            if await all_ended(runtime):
                break
            await asyncio.sleep(0.05)
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
