"""A process serving a concurrency-2 queue on a PostgreSQL store, for the queue kill test.

    python pg_queue_worker.py DSN LEDGER

Each queued workflow's one activity writes "start <n> <pid> <time>" and "end <n> <pid>
<time>" lines to LEDGER (the outside world, which survives SIGKILL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import durable
from durable import PostgresStore, Queue, Runtime

QUEUE = Queue("pg-kill", concurrency=2)
LEASE = 1.5  # (short, so the killed process's workflows are taken over soon)


def ledger(event: str, n: int) -> None:
    with open(sys.argv[2], "a") as file:
        file.write(f"{event} {n} {os.getpid()} {time.time():.6f}\n")


@durable.activity(name="queued_step")
async def queued_step(n: int) -> int:
    ledger("start", n)
    await asyncio.sleep(0.3)
    ledger("end", n)
    return os.getpid()


@durable.workflow(name="queued_job")
async def queued_job(n: int) -> int:
    return await queued_step(n)


async def main() -> None:
    store = PostgresStore(sys.argv[1], lease=LEASE)
    async with Runtime(store=store, queues=[QUEUE], workflows=[queued_job]) as runtime:
        await runtime.serve(poll_interval=0.2)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    asyncio.run(main())
