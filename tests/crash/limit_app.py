"""A process whose workflows call an activity that shares a Limit(concurrency=2), for
tests/crash/test_sigkill_limits.py.

    python limit_app.py DIR MARKERS hold N   run N workflows whose activity holds until killed
    python limit_app.py DIR MARKERS work N   run N workflows whose activity holds 0.1 s

Each activity call marks itself running with a file `MARKERS/<pid>-<n>` and counts the
marks of live processes: more than the limit writes `MARKERS/violation`; the most it saw
goes to `MARKERS/peak-<pid>`. A SIGKILLed process leaves its marks behind; they do not count
once it is dead (or a zombie), which is when the kernel has let go of its slots.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import durable

LIMIT = 2
api = durable.Limit("shared-api", concurrency=LIMIT)
MARKERS = Path(sys.argv[2])
HOLD = 60.0 if sys.argv[3] == "hold" else 0.1
seen = {"peak": 0}  # (the most live marks this process saw)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _live_marks() -> list[str]:
    return [
        name
        for name in os.listdir(MARKERS)
        if "-" in name and name.split("-")[0].isdigit() and _alive(int(name.split("-")[0]))
    ]


@durable.activity(limit=api)
def call_api(n: int) -> int:
    mark = MARKERS / f"{os.getpid()}-{n}"
    mark.touch()
    try:
        deadline = time.monotonic() + HOLD
        while time.monotonic() < deadline:
            live = _live_marks()
            seen["peak"] = max(seen["peak"], len(live))
            if len(live) > LIMIT:
                (MARKERS / "violation").write_text(f"{sorted(live)}\n")
            time.sleep(0.01)
    finally:
        mark.unlink()
    return n


@durable.workflow
async def order(n: int) -> int:
    return await call_api(n)


async def main() -> None:
    directory, count = sys.argv[1], int(sys.argv[4])
    async with durable.Runtime(directory, workflows=[order]) as runtime:
        pid = os.getpid()
        results = await asyncio.gather(
            *(runtime.run(order, n, id=f"order-{pid}-{n}") for n in range(count))
        )
    assert results == list(range(count))
    (MARKERS / f"peak-{pid}").write_text(str(seen["peak"]))


if __name__ == "__main__":
    asyncio.run(main())
