"""A schedule served by a process that a crash test runs (and kills), several at once.

    python schedule_app.py JOURNAL_DIR LEDGER SECONDS

Starts the schedule "ticks" (every second, overlap allow_all, missed fires all caught up)
on a Runtime over JOURNAL_DIR, as every process of an application would at start-up, then
runs for SECONDS and closes. While another process runs the schedule, this one follows it
and takes it over when that one stops or dies. Each fire's workflow appends to LEDGER,
from its activities: "began <fire id> <idempotency key> <pid>", then, after a durable
sleep, "ended <fire id> <idempotency key> <pid>".
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime

import durable

LEDGER = sys.argv[2] if len(sys.argv) > 2 else os.devnull


@durable.activity
async def note(what: str) -> None:
    key = durable.activity_info().idempotency_key
    workflow_id = durable.activity_info().workflow_id
    line = f"{what} {workflow_id} {key} {os.getpid()}\n".encode()
    descriptor = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)  # (one write of one line: lines never interleave)
    finally:
        os.close(descriptor)


@durable.workflow(name="tick")
async def tick(fire: datetime) -> str:
    await note("began")
    await durable.sleep(0.4)
    await note("ended")
    return fire.isoformat()


SCHEDULE = durable.Schedule(
    "ticks", tick, every="1 s", overlap="allow_all", catchup="all", catchup_limit=100
)


async def main(directory: str, seconds: float) -> None:
    async with durable.Runtime(directory, event_poll_interval="0.1 s") as runtime:
        await SCHEDULE.start(runtime)
        print("started", os.getpid(), flush=True)
        await asyncio.sleep(seconds)  # (the schedule runs meanwhile)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[3])))
