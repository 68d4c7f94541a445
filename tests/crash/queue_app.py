"""A process serving one queue (concurrency 2), for tests/crash/test_sigkill_queues.py.

    python queue_app.py DIR MARKERS serve     serve the queue until killed
    python queue_app.py DIR MARKERS enqueue N enqueue N workflows, print their ids

Each workflow's activity marks itself running with a file `MARKERS/<pid>-<n>` and counts
the marks of live processes: more than the limit writes `MARKERS/violation`. A process that
was SIGKILLed leaves its marks behind; they do not count once it is dead (or a zombie),
which is when the kernel has let go of its slots.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import durable

LIMIT = 2
queue = durable.Queue("kill-test", concurrency=LIMIT)
MARKERS = Path(sys.argv[2])


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@durable.activity
def hold(n: int) -> int:
    mark = MARKERS / f"{os.getpid()}-{n}"
    mark.touch()
    try:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            live = [
                name
                for name in os.listdir(MARKERS)
                if "-" in name and name.split("-")[0].isdigit() and _alive(int(name.split("-")[0]))
            ]
            if len(live) > LIMIT:
                (MARKERS / "violation").write_text(f"{sorted(live)}\n")
            time.sleep(0.01)
    finally:
        mark.unlink()
    with (MARKERS / "done").open("a") as done:
        done.write(f"{n}\n")
    return n


@durable.workflow
async def job(n: int) -> int:
    return await hold(n)


async def main() -> None:
    directory, role = sys.argv[1], sys.argv[3]
    if role == "enqueue":
        async with durable.Runtime(directory) as runtime:
            for n in range(int(sys.argv[4])):
                handle = await runtime.enqueue(queue, job, n, id=f"job-{n}")
                print(handle.id, flush=True)
        return
    async with durable.Runtime(directory, queues=[queue], workflows=[job]) as runtime:
        print("serving", flush=True)
        await runtime.serve(poll_interval=0.1)


if __name__ == "__main__":
    asyncio.run(main())
