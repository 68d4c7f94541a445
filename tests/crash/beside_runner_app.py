"""A process that holds workflows while another acts on them (test_operations_beside_a_runner).

python beside_runner_app.py DIR run      run "busy-0" and "busy-1" (each blocked in an
                                         activity until DIR/../release exists); print
                                         "running" once both are in it
python beside_runner_app.py DIR hold ID  hold ID's journal (as a runner's lock does);
                                         print "holding"; let go when stdin closes
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import durable
from durable._storage._directory import JournalDirectory

RELEASE = "release"


@durable.activity(name="blocked")
async def blocked(marker: str) -> str:
    Path(marker).touch()
    release = Path(marker).parent / RELEASE
    while not release.exists():
        await asyncio.sleep(0.02)
    return "released"


@durable.workflow(name="busy")
async def busy(marker: str) -> str:
    return await blocked(marker)


async def run(directory: Path) -> None:
    scratch = directory.parent
    async with durable.Runtime(directory, workflows=[busy]) as runtime:
        handles = [
            await runtime.start(busy, str(scratch / f"busy-{n}.in"), id=f"busy-{n}")
            for n in range(2)
        ]
        while not all((scratch / f"busy-{n}.in").exists() for n in range(2)):
            await asyncio.sleep(0.02)
        print("running", flush=True)
        for handle in handles:
            with contextlib.suppress(durable.WorkflowCancelled):
                print(handle.id, await handle.result(), flush=True)


async def hold(directory: Path, workflow_id: str) -> None:
    async with JournalDirectory(directory) as store:
        journal = await store.open(workflow_id)
        print("holding", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await journal.close()


if __name__ == "__main__":
    where = Path(sys.argv[1])
    if sys.argv[2] == "run":
        asyncio.run(run(where))
    else:
        asyncio.run(hold(where, sys.argv[3]))
