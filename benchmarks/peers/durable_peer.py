"""durable itself, in its default configuration (one journal per workflow, group commit)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import durable
from benchmarks.engine import _write_finished_steps, steps_workflow

from ._common import latency_summary, rss_mb

NAME = "durable"


def unavailable() -> str | None:
    return None


@durable.activity(name="step")
async def step(index: int) -> int:
    return index


@durable.workflow(name="few")
async def few_steps(count: int) -> int:
    for index in range(count):
        await step(index)
    return count


@durable.workflow(name="sleeper")
async def sleeper(index: int) -> int:
    await durable.sleep("1 hour")
    return index


async def _warm_up(runtime: durable.Runtime) -> None:
    """One tiny workflow first, as the peers launch first: the sync thread, the worker
    threads that open journals and first-call caches exist before timing starts."""
    await runtime.run(few_steps, 1, id="warm-up")


async def sequential(directory: Path, steps: int) -> dict[str, Any]:
    async with durable.Runtime(directory) as runtime:
        await _warm_up(runtime)
        started = time.perf_counter()
        stamps = await runtime.run(steps_workflow, steps, id="sequential")
        elapsed = time.perf_counter() - started
    latencies = [after - before for before, after in zip([started, *stamps], stamps, strict=False)]
    return {"steps_per_s": steps / elapsed, **latency_summary(latencies)}


async def concurrent(directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    async with durable.Runtime(directory) as runtime:
        await _warm_up(runtime)
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(runtime.start(few_steps, steps, id=f"c-{index}") for index in range(workflows))
        )
        await asyncio.gather(*(handle.result() for handle in handles))
        elapsed = time.perf_counter() - started
    return {"steps_per_s": workflows * steps / elapsed}


async def sleeping(directory: Path, workflows: int) -> dict[str, Any]:
    before = rss_mb()
    async with durable.Runtime(directory) as runtime:
        started = time.perf_counter()
        for index in range(workflows):
            await runtime.start(sleeper, index, id=f"s-{index}")
        while runtime._runs:  # until every one is unloaded: its sleep journaled and synced
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        grown = rss_mb() - before
    return {"start_s": elapsed, "rss_mb": grown}


async def replay(directory: Path, steps: int) -> dict[str, Any]:
    await _write_finished_steps(directory, steps)
    async with durable.Runtime(directory) as runtime:
        started = time.perf_counter()
        await runtime.run(steps_workflow, steps, id="replay")
        return {"events_per_s": steps / (time.perf_counter() - started)}
