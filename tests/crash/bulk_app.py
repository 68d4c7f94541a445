"""A bulk cancel or resume to SIGKILL half-way (test_sigkill_bulk.py).

    python bulk_app.py DIR make N        N workflows "napper", each asleep for an hour
    python bulk_app.py DIR cancel ID     bulk-cancel them (bulk id ID); print its result
    python bulk_app.py DIR fail N        N workflows "payer", each failed (card declined)
    python bulk_app.py DIR resume ID     bulk-resume them (bulk id ID); print its result
    python bulk_app.py DIR fork ID       bulk-fork them from their failure (bulk id ID)

The action is the real one, then a pause of 0.3 s before the step's outcome is journaled:
a kill then lands after a workflow's cancellation was posted (or its resume record
written) and before the bulk recorded it, the case where a retry would act twice if the
action were not idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import durable
from durable import BulkAction, BulkRequest, WorkflowFilter
from durable._bulk import CANCEL, FORK, RESUME, BulkHost


@durable.workflow(name="napper")
async def napper(number: int) -> None:
    await durable.sleep("1 hour")


@durable.activity(retry=durable.RetryPolicy(maximum_attempts=1))
async def pay(number: int) -> str:
    raise ValueError(f"card {number} declined")


@durable.workflow(name="payer")
async def payer(number: int) -> str:
    return await pay(number)


def slowed(action: BulkAction) -> BulkAction:
    """The action, then a pause: what it did is durable; the step's outcome is not yet."""

    async def act(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
        outcome = await action.act(runtime, workflow_id, request)
        await asyncio.sleep(0.3)
        return outcome

    return BulkAction(
        name=action.name,
        act=act,
        refuses=action.refuses,
        verb=action.verb,
        refuses_held=action.refuses_held,
    )


async def main(directory: Path, command: str, argument: str) -> None:
    workflows: list[durable.Workflow[..., Any]] = [napper, payer]
    async with durable.Runtime(directory, workflows=workflows, suspend_after="0 s") as runtime:
        if command == "fail":
            for number in range(int(argument)):
                handle = await runtime.start(payer, number, id=f"pay-{number:03d}")
                with contextlib.suppress(durable.WorkflowFailed):
                    await handle.result()
            return
        if command in ("resume", "fork"):
            action = RESUME if command == "resume" else FORK
            done = await runtime.bulk(
                command,
                WorkflowFilter(workflow_name="payer"),
                by="bulk_app",
                bulk_id=argument,
                actions={command: slowed(action)},
            )
            print(json.dumps({"outcomes": done.outcomes, "resumed": done.resumed}), flush=True)
            return
        if command == "make":
            for number in range(int(argument)):
                await runtime.start(napper, number, id=f"nap-{number:03d}")
            where = WorkflowFilter(workflow_name="napper", state="sleeping")
            while (await runtime.list_workflows(where)).total < int(argument):
                await asyncio.sleep(0.02)
            return
        done = await runtime.bulk(
            "cancel",
            WorkflowFilter(workflow_name="napper"),
            by="bulk_app",
            bulk_id=argument,
            actions={"cancel": slowed(CANCEL)},
        )
        print(json.dumps({"outcomes": done.outcomes, "resumed": done.resumed}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
