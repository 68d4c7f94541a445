"""How a run ends, as a value: Finished, Suspended, ContinuedAsNew (_engine/_outcomes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import durable
from durable import JournalDirectory, WorkflowCancelled, WorkflowFailed, WorkflowTimedOut
from durable._engine import _records as records
from durable._engine._outcomes import ContinuedAsNew, Finished, Suspended
from durable._engine._workflow_run import WorkflowRun

pytestmark = pytest.mark.anyio


@durable.workflow(name="napper")
async def napper() -> str:
    await durable.sleep(3600)
    return "rested"


@durable.workflow(name="counter")
async def counter(count: int) -> int:
    if count < 2:
        durable.continue_as_new(count + 1)
    return count


@durable.workflow(name="failing")
async def failing() -> None:
    raise ValueError("no")


async def execute(directory: Path, workflow: Any, workflow_id: str, arguments: list[Any]) -> Any:
    async with JournalDirectory(directory) as store:
        journal = await store.open(workflow_id)
        try:
            run = WorkflowRun(
                spec=workflow.spec,
                workflow_id=workflow_id,
                journal=journal,
                arguments=arguments,
                suspend_after=60,
            )
            return await run.execute()
        finally:
            await journal.close()


async def test_a_run_that_only_sleeps_returns_when_to_wake_it(journal_dir: Path) -> None:
    outcome = await execute(journal_dir, napper, "nap", [])
    assert isinstance(outcome, Suspended)
    assert outcome.inbox_next == 0
    start = (await describe(journal_dir, "nap"))[0]
    assert outcome.wake_at == pytest.approx(start["t"] + 3600, abs=1)


async def test_a_generation_that_continues_as_new_returns_the_next_ones_arguments(
    journal_dir: Path,
) -> None:
    outcome = await execute(journal_dir, counter, "count", [0])
    assert outcome == ContinuedAsNew([1], generation=0, inbox_next=0, carried=[])
    again = await execute(journal_dir, counter, "count", [0])  # (read from its end record)
    assert again == outcome


async def test_a_failed_run_returns_the_error_run_raises_its_cause_the_codes(
    journal_dir: Path,
) -> None:
    outcome = await execute(journal_dir, failing, "fails", [])
    assert isinstance(outcome, Finished)
    assert isinstance(outcome.error, WorkflowFailed)
    assert isinstance(outcome.error.__cause__, ValueError)
    with pytest.raises(WorkflowFailed) as raised:
        outcome.unwrap()
    assert raised.value.__suppress_context__
    replayed = await execute(journal_dir, failing, "fails", [])  # (from its end record)
    assert isinstance(replayed.error, WorkflowFailed)
    assert replayed.error.__cause__ is None


def test_finished_from_end_records() -> None:
    spec = counter.spec
    assert Finished.of("w", spec, records.end_result(7, 1.0), None).unwrap() == 7
    cancelled = records.end_failure(
        {"type": "asyncio.CancelledError", "msg": "stop", "tb": ""}, 1.0, cancelled=True
    )
    error = Finished.of("w", spec, cancelled, None).error
    assert type(error) is WorkflowCancelled
    timed_out = records.end_failure(
        {"type": "asyncio.CancelledError", "msg": "late", "tb": "", "kind": records.TIMED_OUT},
        1.0,
        cancelled=True,
    )
    assert type(Finished.of("w", spec, timed_out, None).error) is WorkflowTimedOut


async def describe(directory: Path, workflow_id: str) -> list[Any]:
    async with JournalDirectory(directory) as store:
        return records.read_journal(await store.read(workflow_id), path=workflow_id)
