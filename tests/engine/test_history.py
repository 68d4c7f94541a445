"""A workflow's history as `durable show` and the web UI draw it, from real runs' journals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable._catalog import Catalog
from durable._engine._history import History

pytestmark = pytest.mark.anyio


@durable.workflow
async def approval(timeout: float) -> str:
    try:
        answer = await durable.wait_for_event("approved", timeout=timeout)
    except durable.EventTimeout:
        answer = "no answer"
    await durable.sleep(0.01)
    return str(answer)


async def history_of(journal_dir: Path, workflow_id: str) -> History:
    async with Catalog(journal_dir) as catalog:
        return await catalog.history(workflow_id)


async def test_an_event_timeout_is_part_of_its_wait_not_a_timer_step(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(approval, 0.05, id="late") == "no answer"
        await runtime.start(approval, 3600.0, id="answered")
        while (await runtime.describe("answered")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        waiting = await history_of(journal_dir, "answered")
        await runtime.send_event("answered", "approved", "yes")
        assert await runtime.run(approval, 3600.0, id="answered") == "yes"
    late = await history_of(journal_dir, "late")
    assert [(step.kind, step.state) for step in late.steps] == [
        ("wait", "timed out"),
        ("timer", "fired"),  # (the code's own sleep: a step of its own)
    ]
    wait = late.steps[0]
    assert wait.timeout_at is not None
    assert wait.began is not None
    assert wait.ended is not None
    assert wait.timeout_at == pytest.approx(wait.began + 0.05, abs=0.01)
    assert [step.step for step in late.steps] == [0, 2]  # (step 1 was the timeout's timer)
    assert [(step.kind, step.state) for step in waiting.steps] == [("wait", "waiting")]
    assert waiting.steps[0].timeout_at is not None
    answered = await history_of(journal_dir, "answered")
    assert [(step.kind, step.state) for step in answered.steps] == [
        ("wait", "received"),
        ("timer", "fired"),
    ]
    assert answered.steps[0].result == "yes"


@durable.workflow
async def nap() -> None:
    await durable.sleep(0.01)
    await durable.sleep(0.01)


async def test_sleeps_stay_timer_steps(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.run(nap, id="nap")
    steps = (await history_of(journal_dir, "nap")).steps
    assert [(step.kind, step.state, step.timeout_at) for step in steps] == [
        ("timer", "fired", None),
        ("timer", "fired", None),
    ]
