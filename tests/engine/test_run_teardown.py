"""A run that ended is freed by reference counting, not left to the cyclic collector."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._engine import _workflow_run

pytestmark = pytest.mark.anyio


@durable.activity(name="teardown_add")
async def add(a: int, b: int) -> int:
    return a + b


@durable.workflow(name="teardown_steps")
async def steps(count: int) -> float:
    total = 0
    for index in range(count):
        total = await add(total, index)
    both = await asyncio.gather(add(1, 2), add(3, 4))  # (tasks of the workflow's own)
    await asyncio.sleep(0.001)  # (a durable timer)
    return total + sum(both) + durable.random()


async def test_an_ended_run_and_its_loop_are_freed_without_a_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[weakref.ref[Any]] = []
    original = _workflow_run.WorkflowRun.__init__

    def tracked(self: _workflow_run.WorkflowRun, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(weakref.ref(self))
        made.append(weakref.ref(self.loop))

    monkeypatch.setattr(_workflow_run.WorkflowRun, "__init__", tracked)
    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(steps, 1, id="warm-up")  # (first-use caches, worker threads)
        gc.collect()
        made.clear()
        gc.disable()
        try:
            assert await runtime.run(steps, 3, id="freed") >= 13
            await asyncio.sleep(0)  # (its task's done callbacks)
            alive = [ref() for ref in made if ref() is not None]
        finally:
            gc.enable()
    assert len(made) == 2
    assert alive == []
