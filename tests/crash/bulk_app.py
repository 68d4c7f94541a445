"""A bulk cancel to SIGKILL half-way (test_sigkill_bulk.py).

    python bulk_app.py DIR make N        N workflows "napper", each asleep for an hour
    python bulk_app.py DIR cancel ID     bulk-cancel them (bulk id ID); print its result

The action is the real cancel, then a pause of 0.3 s before the step's outcome is
journaled: a kill then lands after a workflow's cancellation was posted and before the bulk
recorded it, the case where a retry would cancel twice if the post were not idempotent.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import durable
from durable import BulkAction, BulkRequest, WorkflowFilter
from durable._bulk import CANCEL, BulkHost


@durable.workflow(name="napper")
async def napper(number: int) -> None:
    await durable.sleep("1 hour")


async def slow_cancel(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
    outcome = await CANCEL.act(runtime, workflow_id, request)
    await asyncio.sleep(0.3)  # (the posted cancellation is durable; the step's outcome is not)
    return outcome


SLOW = BulkAction(name="cancel", act=slow_cancel, refuses=CANCEL.refuses, verb="cancel")


async def main(directory: Path, command: str, argument: str) -> None:
    async with durable.Runtime(directory, workflows=[napper], suspend_after="0 s") as runtime:
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
            actions={"cancel": SLOW},
        )
        print(json.dumps({"outcomes": done.outcomes, "resumed": done.resumed}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
