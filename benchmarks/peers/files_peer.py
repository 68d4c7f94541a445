"""The hand-written alternative: a msgpack record per step, fdatasync'd, one file per workflow.

What a careful engineer writes without a library: each step appends its result to the
workflow's file and fdatasyncs it before moving on (blocking, on the event loop); resuming
reads the file back. No retries, timers or determinism checks: a floor for cost, not a peer
in features.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import msgpack

from ._common import latency_summary, rss_mb

NAME = "files"


def unavailable() -> str | None:
    return None


async def _step(index: int) -> int:
    return index


async def _workflow(path: Path, steps: int, stamps: list[float] | None = None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for index in range(steps):
            result = await _step(index)
            os.write(fd, msgpack.packb({"step": index, "result": result}))
            os.fdatasync(fd)
            if stamps is not None:
                stamps.append(time.perf_counter())
            await asyncio.sleep(0)
    finally:
        os.close(fd)


async def sequential(directory: Path, steps: int) -> dict[str, Any]:
    stamps: list[float] = []
    started = time.perf_counter()
    await _workflow(directory / "sequential.msgpack", steps, stamps)
    elapsed = time.perf_counter() - started
    latencies = [after - before for before, after in zip([started, *stamps], stamps, strict=False)]
    return {"steps_per_s": steps / elapsed, **latency_summary(latencies)}


async def concurrent(directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    started = time.perf_counter()
    await asyncio.gather(
        *(_workflow(directory / f"c-{index}.msgpack", steps) for index in range(workflows))
    )
    return {"steps_per_s": workflows * steps / (time.perf_counter() - started)}


async def sleeping(directory: Path, workflows: int) -> dict[str, Any]:
    before = rss_mb()
    started = time.perf_counter()
    wake_at = time.time() + 3600
    tasks = []
    for index in range(workflows):
        fd = os.open(directory / f"s-{index}.msgpack", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, msgpack.packb({"sleep_until": wake_at}))
        os.fdatasync(fd)
        os.close(fd)
        tasks.append(asyncio.create_task(asyncio.sleep(3600)))
    await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    grown = rss_mb() - before
    for task in tasks:
        task.cancel()
    return {"start_s": elapsed, "rss_mb": grown}


async def replay(directory: Path, steps: int) -> dict[str, Any]:
    path = directory / "replay.msgpack"
    with open(path, "wb") as file:
        for index in range(steps):
            file.write(msgpack.packb({"step": index, "result": index}))
    started = time.perf_counter()
    with open(path, "rb") as file:
        results = [record["result"] for record in msgpack.Unpacker(file)]
    assert len(results) == steps
    return {"events_per_s": steps / (time.perf_counter() - started)}
