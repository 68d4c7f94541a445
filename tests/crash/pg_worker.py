"""A serving process on a PostgreSQL store, for the many-hosts crash test.

    python pg_worker.py DSN LEDGER

Every activity attempt writes "start <key> <pid> <time>" and "end <key> <pid> <time>" lines
to LEDGER (the outside world, which survives SIGKILL and SIGSTOP) and returns its pid, so
the test can tell which process's result each journal recorded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import durable
from durable import PostgresStore, Runtime

STEP_SECONDS = 0.3
LEASE = 2.0  # (short, so the test is quick; long enough for a loaded CI machine)


def ledger(event: str) -> None:
    key = durable.activity_info().idempotency_key
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {key} {os.getpid()} {time.time():.6f}\n")


@durable.activity(name="step")
async def step(number: int, index: int) -> int:
    ledger("start")
    await asyncio.sleep(STEP_SECONDS)
    ledger("end")
    return os.getpid()


@durable.workflow(name="job")
async def job(number: int) -> list[int]:
    return [await step(number, index) for index in range(3)]


async def main() -> None:
    store = PostgresStore(sys.argv[1], lease=LEASE)
    async with Runtime(store=store, workflows=[job], suspend_after=None) as runtime:
        print("serving", os.getpid(), flush=True)
        await runtime.serve(poll_interval=0.2)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    asyncio.run(main())
