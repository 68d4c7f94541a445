"""Schedules on a TestRuntime: fires in virtual time, commands, policies, crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import durable
from durable.testing import TestRuntime, check_crash_points

pytestmark = pytest.mark.anyio

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 1, 1, 12, tzinfo=UTC)
DONE: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    DONE.clear()


@durable.activity
async def record(what: str) -> str:
    DONE.append(what)
    return what


@durable.workflow
async def nightly(fire: datetime, label: str) -> str:
    return await record(f"{label} {fire.isoformat()}")


@durable.workflow
async def slow(fire: datetime) -> str:
    """Runs until told: overlap is about fires that meet this one still running."""
    await record(f"began {fire.isoformat()}")
    await durable.wait_for_event("finish")
    return await record(f"ended {fire.isoformat()}")


def outcomes(description: durable.ScheduleDescription) -> list[tuple[str, str]]:
    return [(result.kind, result.outcome) for result in description.recent]


async def test_a_month_of_nightly_fires_in_virtual_time(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        schedule = durable.Schedule(
            "nightly", nightly, args=("report",), cron="0 2 * * *", timezone="Europe/Berlin"
        )
        handle = await schedule.start(runtime)
        with runtime.count_calls(record) as calls:
            await runtime.advance("30 days")
        assert calls.count == 30
        assert DONE[0] == "report 2026-01-02T02:00:00+01:00"
        assert DONE[-1] == "report 2026-01-31T02:00:00+01:00"
        described = await handle.describe(next_fires=2)
        assert described.fires == 30
        assert described.missed == 0
        assert described.running == []
        assert [fire.isoformat() for fire in described.next_fires] == [
            "2026-02-01T02:00:00+01:00",
            "2026-02-02T02:00:00+01:00",
        ]
        last = described.recent[-1]
        assert last.workflow_id == "nightly@2026-01-31T01:00:00Z"
        assert (last.kind, last.outcome) == ("scheduled", "completed")
        assert last.detail == "'report 2026-01-31T02:00:00+01:00'"
        fire = await handle.fire_handle(datetime(2026, 1, 31, 2, tzinfo=BERLIN))
        assert await fire.result() == "report 2026-01-31T02:00:00+01:00"


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (  # spring: 02:30 does not exist on the 29th; it fires once, at 03:00
            datetime(2026, 3, 27, 12, tzinfo=BERLIN),
            ["2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        (  # autumn: 02:30 happens twice on the 25th; it fires once, the first time
            datetime(2026, 10, 23, 12, tzinfo=BERLIN),
            ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
    ],
)
async def test_dst_in_berlin(tmp_path: Path, start: datetime, expected: list[str]) -> None:
    async with TestRuntime(tmp_path, start_time=start) as runtime:
        schedule = durable.Schedule(
            "dst", nightly, args=("dst",), cron="30 2 * * *", timezone="Europe/Berlin"
        )
        handle = await schedule.start(runtime)
        await runtime.advance("3 days")
        assert [f"dst {fire}" for fire in expected] == DONE
        ids = [result.workflow_id for result in (await handle.describe()).recent]
        assert len(set(ids)) == 3


async def test_an_interval_with_jitter_fires_late_by_the_journaled_amount(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        schedule = durable.Schedule(
            "tick", nightly, args=("tick",), every="1 hour", jitter="10 min"
        )
        handle = await schedule.start(runtime)
        expected = (await handle.describe(next_fires=3)).next_fires
        await runtime.advance("3 hours 10 min")
        assert len(DONE) == 3
        results = (await handle.describe()).recent
        assert [result.at for result in results] == expected  # (ended when it began: no I/O)
        assert all(
            timedelta(0) <= result.at - result.fire < timedelta(minutes=10) for result in results
        )


async def test_pause_resume_trigger(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        schedule = durable.Schedule("p", nightly, args=("p",), cron="0 2 * * *")
        handle = await schedule.start(runtime)
        await runtime.advance("1 day")
        assert len(DONE) == 1
        await handle.pause("maintenance")
        await runtime.advance("3 days")
        described = await handle.describe()
        assert (described.paused, described.note, described.next_fires) == (
            True,
            "maintenance",
            [],
        )
        assert len(DONE) == 1  # (nothing while paused, nor after: no catch-up of a pause)
        await handle.trigger()  # (a trigger works while paused)
        await runtime.idle()
        assert DONE[-1] == f"p {runtime.now().isoformat()}"
        await handle.resume()
        await runtime.advance("1 day")
        assert len(DONE) == 3
        kinds = outcomes(await handle.describe())
        assert kinds == [("scheduled", "completed"), ("trigger", "completed")] * 1 + [
            ("scheduled", "completed")
        ]


async def test_backfill_runs_each_past_fire_once_in_order(tmp_path: Path) -> None:
    start = datetime(2026, 4, 15, tzinfo=UTC)
    async with TestRuntime(tmp_path, start_time=start) as runtime:
        schedule = durable.Schedule(
            "billing", nightly, args=("bill",), cron="0 2 1 * *", timezone="Europe/Berlin"
        )
        handle = await schedule.start(runtime)
        count = await handle.backfill(
            datetime(2026, 1, 1, tzinfo=BERLIN), datetime(2026, 4, 1, tzinfo=BERLIN)
        )
        assert count == 3
        await runtime.idle()
        assert DONE == [
            "bill 2026-01-01T02:00:00+01:00",
            "bill 2026-02-01T02:00:00+01:00",
            "bill 2026-03-01T02:00:00+01:00",
        ]
        # Again, over a range that overlaps: a fire time that ran is not run again.
        await handle.backfill(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC))
        await runtime.idle()
        assert DONE[3:] == ["bill 2026-04-01T02:00:00+02:00"]
        described = await handle.describe()
        assert [r.workflow_id for r in described.recent] == [
            "billing@2026-01-01T01:00:00Z",
            "billing@2026-02-01T01:00:00Z",
            "billing@2026-03-01T01:00:00Z",
            "billing@2026-03-01T01:00:00Z",  # (joined: its recorded outcome)
            "billing@2026-04-01T00:00:00Z",
        ]
        with pytest.raises(durable.InvalidSchedule, match="aware datetime"):
            await handle.backfill(datetime(2026, 1, 1), datetime(2026, 2, 1, tzinfo=UTC))
        with pytest.raises(durable.InvalidSchedule, match="start < end"):
            await handle.backfill(START, START)
        minutely = durable.Schedule("m", nightly, args=("m",), every=60)
        with pytest.raises(durable.InvalidSchedule, match="split it"):
            await (await minutely.start(runtime)).backfill(START, START + timedelta(days=1))


async def test_delete_then_start_again(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        schedule = durable.Schedule("d", nightly, args=("d",), cron="0 2 * * *")
        handle = await schedule.start(runtime)
        await handle.delete("not needed")
        await handle.trigger()  # (ignored: deleted)
        await runtime.advance("2 days")
        assert DONE == []
        described = await handle.describe()
        assert (described.deleted, described.next_fires) == (True, [])
        await schedule.start(runtime)  # (declared again: created again)
        await runtime.advance("1 day")
        assert DONE == ["d 2026-01-04T02:00:00+00:00"]


async def test_a_start_is_taken_after_the_commands_sent_before_it(tmp_path: Path) -> None:
    """A delete waiting in the inbox at a restart, then start(): created again, every time.

    start() once read the state and sent `create` only if it said deleted, so the outcome
    hung on whether the new run had taken the delete yet (a CI flake); now start sends
    `ensure`, ordered after the delete.
    """
    schedule = durable.Schedule("e", nightly, args=("e",), cron="0 2 * * *")
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        handle = await schedule.start(runtime)
        await runtime.advance("1 day")
        await handle.pause("audit")
        await runtime.advance("1 min")
    async with TestRuntime(tmp_path, start_time=runtime.now()) as offline:  # (no run of it)
        await durable.ScheduleHandle(offline, "e").delete("gone")
    for taken_first in (False, True):
        async with TestRuntime(
            tmp_path, workflows=[schedule.runner], start_time=runtime.now()
        ) as again:
            if taken_first:
                await again.recover()  # (the delete taken before start() reads anything)
                await again.advance("1 s")
                assert (await durable.ScheduleHandle(again, "e").describe()).deleted
            handle = await schedule.start(again)
            await again.advance("1 min")
            described = await handle.describe()
            assert (described.deleted, described.paused, described.note) == (False, False, "")
        if not taken_first:  # (the same again, the delete sent while nothing runs it)
            async with TestRuntime(tmp_path, start_time=runtime.now()) as offline:
                await durable.ScheduleHandle(offline, "e").delete("gone")


async def test_a_start_that_changes_nothing_sends_nothing_that_changes_fires(
    tmp_path: Path,
) -> None:
    """An unchanged start (every deploy's) keeps the cursor: the fires missed are caught up."""
    schedule = durable.Schedule("k", nightly, args=("k",), cron="0 2 * * *", catchup="all")
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await schedule.start(runtime)
        await runtime.advance("1 day")
    async with TestRuntime(tmp_path, start_time=runtime.now() + timedelta(days=2)) as again:
        handle = await schedule.start(again)
        await again.advance("1 min")
        described = await handle.describe()
        assert [r.outcome for r in described.recent if r.kind == "command"] == []
    assert DONE == [
        "k 2026-01-02T02:00:00+00:00",
        "k 2026-01-03T02:00:00+00:00",
        "k 2026-01-04T02:00:00+00:00",
    ]


async def test_a_start_of_a_schedule_whose_workflow_ended_warns_and_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its workflow cancelled by an operator: start() at the next boot says so, not raises."""
    schedule = durable.Schedule("c", nightly, args=("c",), cron="0 2 * * *")
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await schedule.start(runtime)
        await (await runtime.handle(schedule.id)).cancel("operator")
        await runtime.advance("1 min")
    async with TestRuntime(tmp_path, start_time=runtime.now()) as again:
        handle = await schedule.start(again)
        assert handle.name == "c"
    assert "schedule 'c' does not run" in caplog.text
    assert "schedule:c" in caplog.text


async def test_a_changed_definition_is_an_update(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await durable.Schedule("u", nightly, args=("old",), cron="0 2 * * *").start(runtime)
        await runtime.advance("1 day")
    async with TestRuntime(tmp_path, start_time=runtime.now()) as again:  # (a new deploy)
        changed = durable.Schedule("u", nightly, args=("new",), cron="0 5 * * *")
        handle = await changed.start(again)
        await again.advance("1 day")
        assert DONE == ["old 2026-01-02T02:00:00+00:00", "new 2026-01-03T05:00:00+00:00"]
        assert (await handle.describe()).spec.cron == "0 5 * * *"


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [
        ("skip", []),
        ("latest", ["c 2026-01-06T02:00:00+00:00"]),
        (
            "all",
            [
                "c 2026-01-04T02:00:00+00:00",
                "c 2026-01-05T02:00:00+00:00",
                "c 2026-01-06T02:00:00+00:00",
            ],
        ),
    ],
)
async def test_fires_missed_while_nothing_ran(
    tmp_path: Path, catchup: Any, expected: list[str]
) -> None:
    schedule = durable.Schedule(
        "c", nightly, args=("c",), cron="0 2 * * *", catchup=catchup, catchup_limit=3
    )
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await schedule.start(runtime)
        await runtime.advance("1 day")  # one fire; then the process is gone for five days
    assert DONE == ["c 2026-01-02T02:00:00+00:00"]
    DONE.clear()
    later = START + timedelta(days=5, hours=3)
    async with TestRuntime(tmp_path, start_time=later) as runtime:
        handle = await durable.Schedule(
            "c", nightly, args=("c",), cron="0 2 * * *", catchup=catchup, catchup_limit=3
        ).start(runtime)
        await runtime.idle()
        assert expected == DONE
        assert (await handle.describe()).missed == 4 - len(expected)


async def overlapping(tmp_path: Path, overlap: Any) -> tuple[TestRuntime, durable.ScheduleHandle]:
    runtime = TestRuntime(tmp_path, start_time=START)
    schedule = durable.Schedule("o", slow, cron="0 2 * * *", overlap=overlap)
    handle = await schedule.start(runtime)
    await runtime.advance("3 days")  # three fires meet the first, still running
    return runtime, handle


async def test_overlap_skip(tmp_path: Path) -> None:
    runtime, handle = await overlapping(tmp_path, "skip")
    async with runtime:
        assert DONE == ["began 2026-01-02T02:00:00+00:00"]
        assert outcomes(await handle.describe()) == [("scheduled", "skipped")] * 2


async def test_overlap_queue_one(tmp_path: Path) -> None:
    runtime, handle = await overlapping(tmp_path, "queue_one")
    async with runtime:
        described = await handle.describe()
        assert [fire.day for fire in described.pending] == [3]
        assert outcomes(described) == [("scheduled", "skipped")]  # (the 4th: one waits)
        await runtime.send_event("o@2026-01-02T02:00:00Z", "finish")
        await runtime.idle()
        assert DONE[-2:] == ["ended 2026-01-02T02:00:00+00:00", "began 2026-01-03T02:00:00+00:00"]


async def test_overlap_allow_all(tmp_path: Path) -> None:
    runtime, handle = await overlapping(tmp_path, "allow_all")
    async with runtime:
        assert len(DONE) == 3
        assert len((await handle.describe()).running) == 3


async def test_overlap_cancel_previous(tmp_path: Path) -> None:
    runtime, handle = await overlapping(tmp_path, "cancel_previous")
    async with runtime:
        assert len(DONE) == 3
        described = await handle.describe()
        assert described.running == ["o@2026-01-04T02:00:00Z"]
        assert outcomes(described) == [("scheduled", "cancelled")] * 2
        with pytest.raises(durable.WorkflowCancelled):
            await (await runtime.handle("o@2026-01-02T02:00:00Z")).result()


async def test_unknown_schedules_and_bad_commands(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        missing = durable.ScheduleHandle(runtime, "missing")
        with pytest.raises(durable.ScheduleNotFound, match="'missing'"):
            await missing.pause()
        with pytest.raises(durable.ScheduleNotFound):
            await missing.describe()
        handle = await durable.Schedule("b", nightly, args=("b",), every="1 hour").start(runtime)
        await runtime.send_event(handle.id, "durable.schedule", {"op": "explode"})
        await runtime.send_event(handle.id, "durable.schedule", "not a map")
        await runtime.send_event(handle.id, "durable.schedule", {"op": "update", "spec": 1})
        await runtime.idle()
        described = await handle.describe()
        assert [result.outcome for result in described.recent] == ["ignored"] * 3
        await runtime.advance("1 hour")
        assert len(DONE) == 1  # (and it goes on)


async def test_every_crash_point_of_a_schedule_fires_each_time_once(tmp_path: Path) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        DONE.clear()
        schedule = durable.Schedule("crash", nightly, args=("x",), cron="0 2 * * *")
        handle = await schedule.start(runtime)
        await runtime.advance("1 day")
        await handle.trigger()
        await runtime.idle()
        fires = {line.split(" ", 1)[1] for line in DONE}  # (at least once each, as activities)
        assert "2026-01-02T02:00:00+00:00" in fires
        assert len(fires) == 2
        described = await handle.describe()
        assert described.fires == 2  # exactly once each: two fire workflows, no more
        assert len({result.workflow_id for result in described.recent}) == 2

    report = await check_crash_points(scenario, tmp_path, start_time=START)
    assert report.crashed == len(report.points) > 20


async def test_a_long_lived_schedule_continues_as_new_and_keeps_its_state(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        schedule = durable.Schedule("hourly", nightly, args=("h",), every="1 hour")
        handle = await schedule.start(runtime)
        await handle.pause("brief")
        await handle.resume()
        await runtime.advance("104 hours")  # past 100 wake-ups: a new generation
        assert len(DONE) == len(set(DONE)) == 104
        described = await handle.describe()
        assert described.fires == 104
        assert (await runtime.describe(handle.id)).generation == 1
        assert described.next_fires[0] == START + timedelta(hours=105)
        assert len(described.recent) == 20  # (the latest kept across the generation)
