"""WorkflowTasks: how a start takes its journal (here, at once, for a new one) and lets go."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import JournalDirectory
from durable._workflow_tasks import WorkflowTasks

pytestmark = pytest.mark.anyio


@durable.workflow(name="tasks_twice")
async def twice(value: int) -> int:
    return value * 2


async def test_a_new_journal_is_taken_by_its_starter_not_by_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken_by_task: list[str] = []
    original = WorkflowTasks._take

    async def take(self: WorkflowTasks, request: Any, *args: Any, **kwargs: Any) -> Any:
        taken_by_task.append(request.workflow_id)
        return await original(self, request, *args, **kwargs)

    monkeypatch.setattr(WorkflowTasks, "_take", take)
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(twice, 1, id="warm-up") == 2  # (the directory's first open)
        handles = [await runtime.start(twice, n, id=f"t-{n}") for n in range(3)]
        assert [await handle.result() for handle in handles] == [0, 2, 4]
    assert taken_by_task == ["warm-up"]


async def test_a_start_whose_task_is_cancelled_before_it_began_lets_go_of_the_journal(
    tmp_path: Path,
) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(twice, 1, id="warm-up") == 2

        def cancel_its_task() -> None:
            runtime._tasks._running["early"].cancel()

        # Queued before start() makes the task, so it runs before the task's first step.
        asyncio.get_running_loop().call_soon(cancel_its_task)
        with pytest.raises(asyncio.CancelledError):  # (as when its task takes the journal)
            await runtime.start(twice, 5, id="early")
        # The journal its starter opened is closed (its lock let go): it can be taken.
        async with JournalDirectory(tmp_path) as other:
            for _ in range(100):
                try:
                    journal = await other.open("early")
                    break
                except durable.JournalLocked:
                    await asyncio.sleep(0.01)
            else:
                pytest.fail("the journal of the cancelled start stayed locked")
            await journal.close()
        assert await runtime.run(twice, 5, id="early") == 10  # (it starts afresh here)
