"""Schedules on PostgresStore, in real time: two runtimes on one database (as two hosts).

Both start the schedule, as every process of an application does; one runs it, the other
follows it and takes it over when the first closes. Each fire's activity notes its fire id
and idempotency key (the outside world): every fire time between the first and the last
ran exactly once, in one runtime. Pause and trigger go through a ScheduleHandle there.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

import durable
from durable import PostgresStore, Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RAN: list[tuple[str, str, str]] = []  # (fire id, idempotency key, which runtime)


@durable.activity
async def note_fire() -> None:
    info = durable.activity_info()
    RAN.append((info.workflow_id, info.idempotency_key, RUNNER[0]))


RUNNER = ["first"]  # which runtime runs the schedule now (set by the test at the takeover)


@durable.workflow(name="pg_tick")
async def pg_tick(fire: datetime) -> str:
    await note_fire()
    return fire.isoformat()


def ticks() -> durable.Schedule:
    return durable.Schedule("pg-ticks", pg_tick, every="1 s", catchup="all", catchup_limit=100)


def runtime(dsn: str) -> Runtime:
    return Runtime(store=PostgresStore(dsn), event_poll_interval=0.05)


async def until(condition: Callable[[], object], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def settled(handle: durable.ScheduleHandle, fires: int) -> durable.ScheduleDescription:
    """The description once `fires` fires started and none runs (a quiet moment)."""
    async with asyncio.timeout(20):
        while True:
            described = await handle.describe()
            if described.fires >= fires and not described.running:
                return described
            await asyncio.sleep(0.02)


def seconds_of(fire_ids: list[str]) -> list[datetime]:
    return sorted(
        datetime.strptime(fire_id.split("@")[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for fire_id in fire_ids
    )


async def test_fires_run_once_across_a_takeover_and_commands_work(postgres_dsn: str) -> None:
    RAN.clear()
    RUNNER[0] = "first"
    second = runtime(postgres_dsn)
    try:
        async with runtime(postgres_dsn) as first:
            handle = await ticks().start(first)
            await ticks().start(second)  # (follows the first's run)
            await settled(handle, 2)
            RUNNER[0] = "second"  # (set before the close: no fire runs at this quiet moment)
        # The first closed: the second takes the schedule over and fires on.
        follower = durable.ScheduleHandle(second, "pg-ticks")
        await until(lambda: sum(1 for _, _, who in RAN if who == "second") >= 2)
        described = await settled(follower, 4)
        fire_ids = [fire_id for fire_id, _, _ in RAN]
        assert all(count == 1 for count in Counter(fire_ids).values()), RAN
        gaps = [b - a for a, b in itertools.pairwise(seconds_of(fire_ids))]
        assert all(gap.total_seconds() == 1 for gap in gaps), fire_ids  # none missing
        assert {who for _, _, who in RAN} == {"first", "second"}
        assert described.fires == len(fire_ids)
        assert all(result.outcome == "completed" for result in described.recent), described

        # Pause: no scheduled fire runs; trigger still fires (now), once.
        await follower.pause("maintenance")
        async with asyncio.timeout(10):
            while not (paused := await follower.describe()).paused:
                await asyncio.sleep(0.02)
        assert paused.note == "maintenance"
        assert paused.next_fires == []
        before = len(RAN)
        await follower.trigger()
        await until(lambda: len(RAN) > before)
        described = await settled(follower, paused.fires + 1)
        assert described.recent[-1].kind == "trigger"
        assert described.recent[-1].outcome == "completed"
        await asyncio.sleep(1.1)  # (a scheduled fire time passes while paused: not run)
        assert len(RAN) == before + 1
        await follower.resume()
        await until(lambda: len(RAN) > before + 1)
        assert not (await follower.describe()).paused
        fire_ids = [fire_id for fire_id, _, _ in RAN]
        assert all(count == 1 for count in Counter(fire_ids).values()), RAN
    finally:
        await second.close()
