"""An activity started at once inside the drain (Drain.run_now): what it sees, how it ends.

A sequential workflow's next activity starts inside the drain that delivered the previous
outcome; one that suspends goes on in the draining task after the drain, in the context
it started in. These pin what the activity's code can tell: its own context, its
activity_info across a suspension, its `finally` when the workflow lets go of it.
"""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path

import pytest

import durable
from durable import RetryPolicy, Runtime

pytestmark = pytest.mark.anyio

ONCE = RetryPolicy(maximum_attempts=1)

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


async def test_each_activity_starts_in_the_runs_context_and_keeps_its_own_across_awaits(
    journal_dir: Path,
) -> None:
    seen: list[tuple[str, str, int]] = []

    @durable.activity
    async def instant(index: int) -> int:
        seen.append(("instant", marker.get(), durable.activity_info().step))
        marker.set(f"set by {index}")  # (visible to no other activity)
        return index

    @durable.activity
    async def suspends(index: int) -> int:
        seen.append(("before", marker.get(), durable.activity_info().step))
        marker.set("mine")
        await asyncio.sleep(0.01)  # goes on in the draining task, after the drain
        seen.append(("after", marker.get(), durable.activity_info().step))
        return index * 10

    @durable.workflow
    async def flow() -> list[int]:
        return [await instant(0), await suspends(1), await instant(2), await suspends(3)]

    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="contexts") == [0, 10, 2, 30]
    assert seen == [
        ("instant", "unset", 0),
        ("before", "unset", 1),
        ("after", "mine", 1),
        ("instant", "unset", 2),
        ("before", "unset", 3),
        ("after", "mine", 3),
    ]
    async with Runtime(journal_dir) as runtime:  # (its journal replays: nothing runs again)
        assert await runtime.run(flow, id="contexts") == [0, 10, 2, 30]
    assert len(seen) == 6


async def test_a_started_activity_the_workflow_lets_go_of_is_cancelled_and_cleans_up(
    journal_dir: Path,
) -> None:
    cleaned: list[str] = []

    @durable.activity
    async def instant() -> str:
        return "ok"

    @durable.activity(retry=ONCE)
    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append(durable.activity_info().activity_name)
        return "too late"

    @durable.workflow
    async def flow() -> str:
        await instant()
        try:
            return await asyncio.wait_for(slow(), timeout=0.05)
        except TimeoutError:
            return f"gave up, then {await instant()}"

    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="let-go") == "gave up, then ok"
    assert cleaned == [slow.name]
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="let-go") == "gave up, then ok"
    assert cleaned == [slow.name]


async def test_a_failing_activity_started_at_once_is_retried_and_its_error_delivered(
    journal_dir: Path,
) -> None:
    calls: list[int] = []

    @durable.activity
    async def instant() -> int:
        return 1

    @durable.activity(retry=RetryPolicy(maximum_attempts=3, initial_interval=0.001))
    async def flaky() -> int:
        calls.append(len(calls))
        if len(calls) < 3:
            raise ValueError(f"attempt {len(calls)}")
        return len(calls)

    @durable.activity(retry=ONCE)
    async def broken() -> int:
        raise KeyError("never")

    @durable.workflow
    async def flow() -> str:
        first = await instant()
        attempts = await flaky()
        try:
            await broken()
        except durable.ActivityError as error:
            return f"{first} {attempts} {error.error_type}"
        return "no error"

    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="failing") == "1 3 KeyError"
    assert calls == [0, 1, 2]
