"""A process serving one queue that may SIGKILL itself at a chosen moment (test_queue_kill_points).

    python queue_kill_app.py DIR LOG serve [POINT N]
    python queue_kill_app.py DIR LOG recover     recover() once a line arrives on stdin

Serves the queue `kill-points` (concurrency 2, at most 1 per key) until killed. With POINT
and N, the process kills itself with SIGKILL the N-th time it reaches POINT:

    admitting   under the queue's lock, holding a slot, before the request moves to admitted/
    admitted    right after that move, before the workflow's journal exists
    activity    mid-activity (after its "start" line)
    giving-back while giving a slot back (a workflow ended, or an admission round found
                nothing to start)
    finishing   a workflow ended and its slots are given back, its admission not removed

The activity appends "start <id> <pid>" and "end <id> <pid>" to LOG (O_APPEND: one write per
line, whole lines, in order across processes); a process about to kill itself appends
"dead <pid>" first, while it still holds its slots, so the log orders each death before any
start its freed slot allows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import durable
from durable._queue_state import QueueState
from durable._storage._queue_files import QueueFiles

LIMIT = 2
queue = durable.Queue("kill-points", concurrency=LIMIT, concurrency_per_key=1)


def note(line: str) -> None:
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


class KillPoint:
    """Counts the times a point is reached; the N-th time, the process dies."""

    def __init__(self, point: str, nth: int) -> None:
        self.point, self.nth, self.seen = point, nth, 0

    def reached(self, point: str) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen == self.nth:
            note(f"dead {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)


kill = KillPoint("", 0)  # (armed by main(): the test imports this module too)


def arm() -> None:
    if len(sys.argv) > 5:
        kill.point, kill.nth = sys.argv[4], int(sys.argv[5])
    claim, give_back, finish = QueueFiles.claim, QueueState.give_back, QueueFiles.finish

    def claiming(self: QueueFiles, workflow_id: str) -> bool:
        kill.reached("admitting")
        taken = claim(self, workflow_id)
        if taken:
            kill.reached("admitted")
        return taken

    def giving_back(self: QueueState, slot: Any, key: Any, key_slot: Any) -> None:
        if slot is not None:
            kill.reached("giving-back")
        give_back(self, slot, key, key_slot)

    def finishing(self: QueueFiles, workflow_id: str) -> None:
        kill.reached("finishing")
        finish(self, workflow_id)

    QueueFiles.claim = claiming  # type: ignore[method-assign]
    QueueState.give_back = giving_back  # type: ignore[method-assign]
    QueueFiles.finish = finishing  # type: ignore[method-assign]


@durable.activity
def hold(n: int) -> int:
    workflow_id = durable.activity_info().workflow_id
    note(f"start {workflow_id} {os.getpid()}")
    kill.reached("activity")
    time.sleep(0.15)
    note(f"end {workflow_id} {os.getpid()}")
    return n


@durable.workflow
async def job(n: int) -> int:
    return await hold(n)


async def main() -> None:
    arm()
    async with durable.Runtime(sys.argv[1], queues=[queue], workflows=[job]) as runtime:
        if sys.argv[3] == "recover":  # (once, when the test says go: a line on stdin)
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            handles = await runtime.recover()
            print(" ".join(sorted(handle.id for handle in handles)), flush=True)
            for handle in handles:
                await handle.result()
            return
        print("serving", flush=True)
        await runtime.serve(poll_interval=0.1)


if __name__ == "__main__":
    asyncio.run(main())
