"""Virtual time: hours of sleeps, timeouts and back-offs take milliseconds, in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import durable
from durable import RetryPolicy, WorkflowState
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
SEEN: list[tuple[str, datetime]] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


@durable.activity
async def note(what: str) -> str:
    SEEN.append((what, durable.now()))  # an activity's now() follows virtual time too
    return what


@durable.workflow
async def order_flow() -> dict[str, object]:
    await note("charged")
    await durable.sleep("2 hours")
    await note("shipped")
    try:
        answer = await durable.wait_for_event("review", timeout="1 day")
    except durable.EventTimeout:
        answer = "no review"
    return {"answer": answer, "at": durable.now()}


async def test_a_flow_that_waits_two_hours_and_a_day_finishes_at_once(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        async with asyncio.timeout(10):  # (real time: a real wait would be 26 hours)
            result = await runtime.run(order_flow, id="o")
    assert result == {"answer": "no review", "at": START + timedelta(hours=26)}
    assert [("charged", START), ("shipped", START + timedelta(hours=2))] == SEEN
    assert runtime.now() == START + timedelta(hours=26)


async def test_advance_moves_time_step_by_step(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        handle = await runtime.start(order_flow, id="o")
        await runtime.advance("30 min")
        state = await runtime.describe("o")
        assert state.state is WorkflowState.SLEEPING
        assert [what for what, _ in SEEN] == ["charged"]
        await runtime.advance("90 min")
        assert SEEN[-1] == ("shipped", START + timedelta(hours=2))
        assert (await runtime.describe("o")).state is WorkflowState.WAITING
        await runtime.send_event("o", "review", "five stars")
        result = await handle.result()
    assert result == {"answer": "five stars", "at": START + timedelta(hours=2)}


async def test_an_event_sent_before_awaiting_is_not_overtaken_by_its_timeout(
    tmp_path: Path,
) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        handle = await runtime.start(order_flow, id="o")
        await runtime.advance("2 hours")
        await runtime.send_event("o", "review", "quick")
        assert (await handle.result())["answer"] == "quick"


async def test_without_auto_skip_time_moves_only_with_advance(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START, auto_skip=False) as runtime:
        handle = await runtime.start(order_flow, id="o")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(handle.result(), 0.2)
        assert runtime.now() == START
        await runtime.advance("26 hours")
        assert (await handle.result())["answer"] == "no review"


FLAKY_CALLS: list[datetime] = []


@durable.activity(retry=RetryPolicy(initial_interval="1 hour", maximum_attempts=3))
async def flaky() -> str:
    FLAKY_CALLS.append(durable.now())
    if len(FLAKY_CALLS) < 3:
        raise ConnectionError("down")
    return "up"


@durable.workflow
async def patient() -> str:
    return await flaky()


async def test_retry_back_offs_are_virtual(tmp_path: Path) -> None:
    FLAKY_CALLS.clear()
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        assert await runtime.run(patient, id="p") == "up"
    assert [START, START + timedelta(hours=1), START + timedelta(hours=3)] == FLAKY_CALLS


@durable.workflow
async def sleepy() -> list[str]:
    first = await note("before")
    await durable.sleep("3 days")
    return [first, await note("after")]


async def test_a_sleeper_is_unloaded_and_resumed_by_replay_in_virtual_time(
    tmp_path: Path,
) -> None:
    async with TestRuntime(tmp_path, start_time=START, suspend_after="1 min") as runtime:
        handle = await runtime.start(sleepy, id="s")
        await runtime.idle()
        assert "s" not in runtime._runs  # unloaded: no loop, no journal handle
        assert await handle.result() == ["before", "after"]
    assert [what for what, _ in SEEN] == ["before", "after"]  # "before" was replayed


async def test_timers_of_several_workflows_fire_in_time_order(tmp_path: Path) -> None:
    @durable.workflow
    async def wait_then_note(hours: int) -> None:
        await durable.sleep(timedelta(hours=hours))
        await note(f"{hours}h")

    async with TestRuntime(tmp_path, start_time=START) as runtime:
        handles = [
            await runtime.start(wait_then_note, hours, id=f"w{hours}") for hours in (5, 1, 3)
        ]
        for handle in handles:
            await handle.result()
    assert [(f"{hours}h", START + timedelta(hours=hours)) for hours in (1, 3, 5)] == SEEN
