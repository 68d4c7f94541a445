"""Schedules probed as a user would (issue 19's review): in real time, from the CLI while a
runtime serves, with a workflow that raises, and each overlap policy on the wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import durable
from durable._cli import main as cli
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio

BEGAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    BEGAN.clear()


@durable.activity(name="adv-note")
async def note(what: str) -> None:
    BEGAN.append(what)


@durable.workflow(name="adv-explodes")
async def explodes(fire: datetime) -> None:
    await note(fire.isoformat())
    raise ValueError(f"the report of {fire:%H:%M} failed")


@durable.workflow(name="adv-plain")
async def plain(fire: datetime) -> str:
    await note(fire.isoformat())
    return "ok"


@durable.workflow(name="adv-slow")
async def slow(fire: datetime) -> str:
    await note(fire.isoformat())
    await durable.wait_for_event("finish")
    return "done"


async def until(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            met = condition()
            if met if isinstance(met, bool) else await met:
                return
            await asyncio.sleep(0.02)


async def test_a_schedule_whose_workflow_raises_goes_on_firing(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with TestRuntime(tmp_path, start_time=start) as runtime:
        handle = await durable.Schedule("boom", explodes, every="1 hour").start(runtime)
        await runtime.advance("3 hours")
        described = await handle.describe()
        assert len(BEGAN) == 3
        assert described.fires == 3
        assert [result.outcome for result in described.recent] == ["failed"] * 3
        assert "failed" in (described.recent[-1].detail or "")
        assert described.state is durable.WorkflowState.WAITING  # (not failed)
        first = described.recent[0].workflow_id
        assert first is not None
        with pytest.raises(durable.WorkflowFailed):
            await (await runtime.handle(first)).result()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def test_cli_commands_reach_a_schedule_another_runtime_serves(tmp_path: Path) -> None:
    """pause, trigger, resume and delete from the CLI (its own runtime on the directory)
    while this runtime serves the schedule; each fire starts once."""
    yearly = durable.Schedule("yearly", plain, cron="0 0 1 1 *")  # (no fire during the test)
    where = ["--dir", str(tmp_path)]
    async with durable.Runtime(tmp_path, workflows=[plain], event_poll_interval=0.05) as runtime:
        handle = await yearly.start(runtime)

        async def command(*args: str) -> str:
            return await asyncio.to_thread(_cli, "schedule", *args, "yearly", *where)

        async def described() -> durable.ScheduleDescription:
            return await handle.describe()

        await command("pause", "--note", "audit")
        await until(lambda: _is(described, paused=True))
        assert (await described()).note == "audit"
        await command("trigger")  # (fires now, paused or not)
        await until(lambda: _fired(described, 1))
        await command("resume")
        await until(lambda: _is(described, paused=False))
        assert "yearly" in await asyncio.to_thread(_cli, "schedule", "list", *where)
        await command("trigger")
        await until(lambda: _fired(described, 2))
        await command("delete", "--yes")
        await until(lambda: _is(described, deleted=True))
        await asyncio.sleep(0.2)
    assert len(BEGAN) == 2
    assert len(set(BEGAN)) == 2


async def _is(described: Callable[[], Awaitable[Any]], **expected: bool) -> bool:
    now = await described()
    return all(getattr(now, name) == value for name, value in expected.items())


async def _fired(described: Callable[[], Awaitable[Any]], count: int) -> bool:
    now = await described()
    return now.fires >= count and len([r for r in now.recent if r.outcome == "completed"]) >= count


@pytest.mark.parametrize("overlap", ["skip", "queue_one", "allow_all", "cancel_previous"])
async def test_overlap_policies_on_the_wall_clock(tmp_path: Path, overlap: Any) -> None:
    """Fires every 0.2 s meet the first, still running, in real time."""
    schedule = durable.Schedule("rt", slow, every="200 ms", overlap=overlap, catchup="skip")
    async with durable.Runtime(tmp_path, workflows=[slow]) as runtime:
        handle = await schedule.start(runtime)

        async def three_fires_due() -> bool:
            described = await handle.describe()
            return described.fires + len(described.recent) + len(described.pending) >= 4

        await until(three_fires_due)
        described = await handle.describe()
        first = datetime.fromisoformat(BEGAN[0])
        first_id = schedule.spec.fire_id(first.timestamp())
        if overlap == "skip":
            assert len(BEGAN) == 1
            assert described.running == [first_id]
            assert {result.outcome for result in described.recent} == {"skipped"}
        elif overlap == "queue_one":
            assert len(BEGAN) == 1
            assert len(described.pending) == 1
            waiting = described.pending[0]
            await runtime.send_event(first_id, "finish")
            await until(lambda: len(BEGAN) >= 2)
            assert datetime.fromisoformat(BEGAN[1]) == waiting
        elif overlap == "allow_all":
            assert len(described.running) >= 3
            assert len(set(described.running)) == len(described.running)
        else:
            assert len(described.running) == 1
            assert described.running[0] != first_id
            with pytest.raises(durable.WorkflowCancelled):
                await (await runtime.handle(first_id)).result()
        await handle.delete()


@pytest.mark.parametrize(
    "command",
    [
        {"op": "backfill", "start": float("nan"), "end": 1.0},
        {"op": "backfill", "start": float("-inf"), "end": float("inf")},
        {"op": "backfill", "start": -1e300, "end": 1e300},
        {"op": "backfill", "start": 1e18, "end": 2e18},
    ],
)
@pytest.mark.parametrize("when", [{"every": "1 hour"}, {"cron": "0 * * * *"}])
async def test_a_hostile_backfill_event_is_ignored_not_fatal(
    tmp_path: Path, command: dict[str, Any], when: dict[str, Any]
) -> None:
    """Commands are events: any process on the store can send one, bypassing
    ScheduleHandle's checks. Times no datetime can hold must not kill the schedule."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with TestRuntime(tmp_path, start_time=start) as runtime:
        handle = await durable.Schedule("hostile", plain, **when).start(runtime)
        await runtime.send_event(handle.id, "durable.schedule", command)
        await runtime.idle()
        described = await handle.describe()
        assert described.state is durable.WorkflowState.WAITING
        assert described.recent[-1].outcome == "ignored"
        await runtime.advance("1 hour")
        assert len(BEGAN) == 1  # (and it goes on firing)


async def test_backfills_piling_up_stay_bounded_and_fast(tmp_path: Path) -> None:
    """Fires a backfill queues behind a running one: each command adds at most 1000, fast
    (no quadratic look-up), and what waits is bounded (a command past it is ignored)."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    async with TestRuntime(tmp_path, start_time=start) as runtime:
        handle = await durable.Schedule("piles", slow, every="1 min").start(runtime)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for day in range(1, 14):  # (13 days of minutes: 1000 fires each, the cap is 10,000)
            await handle.backfill(
                datetime(2026, 5, day, tzinfo=UTC), datetime(2026, 5, day, 16, 40, tzinfo=UTC)
            )
        await runtime.idle()
        assert loop.time() - began < 20
        described = await handle.describe(next_fires=0)
        assert len(described.running) == 1  # (the first backfilled fire; the rest wait)
        assert len(described.pending) == 10_000
        assert [r.outcome for r in described.recent][-3:] == ["ignored"] * 3
        assert "10000 fires wait already" in (described.recent[-1].detail or "")
