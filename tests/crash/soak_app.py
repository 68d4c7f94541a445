"""A serving process for the PostgreSQL soak and the server-restart test.

    python -m tests.crash.soak_app DSN LEDGER LEASE [STEP_SECONDS]

Each step's activity runs for a random 0.05 to STEP_SECONDS (default 0.25) seconds.
Serves "soak-parent" and "soak-child" until SIGTERM (then it stops cleanly: its runtime
closes, its leases are given back). Every activity attempt appends to LEDGER (the outside
world: it survives SIGKILL and SIGSTOP) one line when it starts and one when it ends:

    start <key> <pid> <attempt> <time> <prev>
    end   <key> <pid> <attempt> <time> ok|fail|cancel

<prev> is "<key>=<result>" of the workflow's previous step as this attempt's workflow saw
it (a workflow sees only committed results, so every attempt of a step must see the same
one: the one recorded), or "-". A result is "<pid>:<attempt>" of the attempt that made it.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import random
import signal
import sys
import time

import durable
from durable import PostgresStore, RetryPolicy, Runtime

FAILING = "fail"  # a step named so fails its first attempt (and is retried)


def ledger(line: str) -> None:
    with open(sys.argv[2], "a") as file:  # (one short write: whole lines, even across processes)
        file.write(line + "\n")


@durable.activity(name="soak-step", retry=RetryPolicy(initial_interval=0.05, maximum_attempts=0))
async def step(kind: str, prev: str) -> list[str]:
    """[its key, "<pid>:<attempt>"]; the first attempt of a FAILING step fails."""
    info = durable.activity_info()
    key, pid, attempt = info.idempotency_key, os.getpid(), info.attempt
    ledger(f"start {key} {pid} {attempt} {time.time():.6f} {prev}")
    outcome = "cancel"
    try:
        await asyncio.sleep(random.uniform(0.05, longest_step()))
        if kind == FAILING and attempt == 1:
            outcome = "fail"
            raise RuntimeError("the first attempt of this step fails")
        outcome = "ok"
        return [key, f"{pid}:{attempt}"]
    finally:
        ledger(f"end {key} {pid} {attempt} {time.time():.6f} {outcome}")


def longest_step() -> float:
    """STEP_SECONDS, this serving process's fourth argument (default 0.25)."""
    return float(sys.argv[4]) if len(sys.argv) > 4 else 0.25


async def steps(kinds: list[str], results: list[list[str]]) -> None:
    """Run one step per kind, each told the result before it; append their [key, result]s."""
    for kind in kinds:
        prev = f"{results[-1][0]}={results[-1][1]}" if results else "-"
        results.append(await step(kind, prev))


@durable.workflow(name="soak-child")
async def child(number: int) -> list[list[str]]:
    results: list[list[str]] = []
    await steps(["plain", FAILING], results)
    await durable.sleep(0.2)
    await steps(["plain"], results)
    return results


@durable.workflow(name="soak-parent")
async def parent(number: int, generation: int, carried: list[list[str]]) -> list[list[str]]:
    """Steps, a child, an event, a retried step; then once more as a new generation."""
    results = list(carried)
    await steps(["plain"], results)
    if generation == 0:
        child_id = f"{durable.workflow_info().workflow_id}-child"
        results += await durable.run_child(child, number, id=child_id)
        await durable.wait_for_event("go")
    await steps([FAILING, "plain"], results)
    if generation == 0:
        durable.continue_as_new(number, 1, results)
    return results


def tasks_said() -> None:
    """On SIGUSR1 (the soak, when this process does not stop): every task and where it waits."""
    for task in asyncio.all_tasks():
        print(f"--- {task!r}", file=sys.stderr)
        task.print_stack(limit=30, file=sys.stderr)
    sys.stderr.flush()


async def main() -> None:
    store = PostgresStore(sys.argv[1], lease=float(sys.argv[3]))
    async with Runtime(
        store=store, workflows=[parent, child], suspend_after=None, event_poll_interval=0.2
    ) as runtime:
        serving = asyncio.ensure_future(runtime.serve(poll_interval=0.2))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, serving.cancel)
        loop.add_signal_handler(signal.SIGUSR1, tasks_said)
        print("serving", os.getpid(), flush=True)
        try:
            await serving
        except asyncio.CancelledError:
            logging.getLogger("durable").info("soak_app: SIGTERM, stopping")
    logging.getLogger("durable").info("soak_app: runtime closed")


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR2)  # (every thread's stack, even with the loop blocked)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(process)d %(message)s"
    )
    asyncio.run(main())
