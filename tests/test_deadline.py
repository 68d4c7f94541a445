"""execution_timeout: a journaled deadline that cancels the workflow, in virtual time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import durable
from durable import JournalDirectory
from durable._cli import main
from durable._engine import _records as records
from durable.testing import TestRuntime, check_crash_points
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLEANED: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    CLEANED.clear()


@durable.activity
async def clean_up(what: str) -> None:
    CLEANED.append(what)


@durable.workflow(execution_timeout="1 hour")
async def sleeper() -> str:
    try:
        await durable.sleep("2 hours")
    except asyncio.CancelledError:
        await clean_up("sleeper")  # a cancelled workflow may still clean up
        raise
    return "woke"


@durable.workflow(execution_timeout=timedelta(hours=1))
async def waiter() -> str:
    return str(await durable.wait_for_event("go"))


@durable.workflow(execution_timeout=3600)
async def monthly(generation: int) -> int:
    await durable.sleep("25 min")
    durable.continue_as_new(generation + 1)


@durable.workflow
async def child_sleeper() -> str:
    await durable.sleep("3 hours")
    return "child woke"


@durable.workflow(execution_timeout="1 hour")
async def parent() -> str:
    return await durable.run_child(child_sleeper, id="the-child")


@durable.workflow(execution_timeout="1 hour")
async def slow_cleaner() -> None:
    try:
        await durable.wait_for_event("never")
    except asyncio.CancelledError:
        await durable.sleep("2 hours")  # past the deadline: its cancel does not interrupt this
        await clean_up("slow")
        raise


async def journal(directory: Path, workflow_id: str) -> list[dict[str, Any]]:
    async with JournalDirectory(directory) as store:
        stored = await store.read(workflow_id)
    return records.read_journal(stored, path=workflow_id)


@pytest.mark.parametrize("suspend_after", ["1 min", None])
async def test_a_deadline_cancels_a_sleeping_workflow_in_virtual_time(
    tmp_path: Path, suspend_after: str | None
) -> None:
    # Unloaded after a minute ("1 min"), or kept loaded (None): the deadline reaches both.
    async with TestRuntime(tmp_path, start_time=START, suspend_after=suspend_after) as runtime:
        async with asyncio.timeout(10):  # (real time: a real wait would take an hour)
            with pytest.raises(durable.WorkflowTimedOut) as caught:
                await runtime.run(sleeper, id="s")
        assert runtime.now() == START + HOUR
    assert isinstance(caught.value, durable.WorkflowCancelled)
    assert "execution_timeout" in caught.value.reason
    assert str(caught.value).startswith("workflow 's' was cancelled: its execution_timeout passed")
    assert caught.value.workflow_id == "s"
    assert CLEANED == ["sleeper"]
    found = await journal(tmp_path, "s")
    assert found[0]["dl"] == (START + HOUR).timestamp()
    cancels = [record for record in found if record["k"] == records.CANCEL]
    assert [cancel["id"] for cancel in cancels] == [records.DEADLINE_CANCEL_ID]
    assert found[-1]["c"] == 1
    assert found[-1]["e"]["kind"] == records.TIMED_OUT
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        description = await runtime.describe("s")
    assert description.deadline == START + HOUR
    assert description.state is durable.WorkflowState.CANCELLED


async def test_the_outcome_stays_timed_out_when_read_again(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        with pytest.raises(durable.WorkflowTimedOut):
            await runtime.run(sleeper, id="s")
    async with TestRuntime(tmp_path, start_time=START + 5 * HOUR) as runtime:
        with pytest.raises(durable.WorkflowTimedOut):  # from the end record: nothing runs
            await runtime.run(sleeper, id="s")
        with pytest.raises(durable.WorkflowFinished):
            await runtime.cancel("s")
    assert CLEANED == ["sleeper"]


async def test_a_crash_anywhere_still_ends_timed_out_at_the_deadline(tmp_path: Path) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        CLEANED.clear()
        with pytest.raises(durable.WorkflowTimedOut):
            await runtime.run(sleeper, id="s")
        assert runtime.now() == START + HOUR
        assert CLEANED[:1] == ["sleeper"]  # (at least once: a crash may repeat it)

    report = await check_crash_points(scenario, tmp_path, start_time=START)
    assert report.crashed == len(report.points) >= 10  # every point: a kill, a resume


async def test_the_deadline_survives_a_restart_and_is_not_extended(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await runtime.start(waiter, id="w")
        await runtime.advance("30 min")
    # A new process 45 minutes after the start: the deadline is still START + 1 hour.
    async with TestRuntime(tmp_path, start_time=START + timedelta(minutes=45)) as runtime:
        async with asyncio.timeout(10):
            with pytest.raises(durable.WorkflowTimedOut):
                await runtime.run(waiter, id="w")
        assert runtime.now() == START + HOUR


async def test_a_deadline_that_passed_while_nothing_ran_cancels_at_once(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await runtime.start(waiter, id="w")
        await runtime.advance("10 min")
    async with TestRuntime(tmp_path, start_time=START + 3 * HOUR, workflows=[waiter]) as runtime:
        (handle,) = await runtime.recover()
        async with asyncio.timeout(10):
            with pytest.raises(durable.WorkflowTimedOut):
                await handle.result()
        assert runtime.now() == START + 3 * HOUR  # no time had to pass


async def test_the_deadline_spans_continue_as_new(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        async with asyncio.timeout(10):
            with pytest.raises(durable.WorkflowTimedOut):
                await runtime.run(monthly, 0, id="m")
        assert runtime.now() == START + HOUR  # in its third generation (50 to 75 min)
        description = await runtime.describe("m")
    assert description.generation == 2
    found = await journal(tmp_path, "m")
    assert found[0]["gen"] == 2
    assert found[0]["dl"] == (START + HOUR).timestamp()


async def test_a_per_start_timeout_overrides_the_decorator(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        with pytest.raises(durable.WorkflowTimedOut):
            await runtime.run(sleeper, id="short", execution_timeout="10 min")
        assert runtime.now() == START + timedelta(minutes=10)
        assert await runtime.run(sleeper, id="unlimited", execution_timeout=None) == "woke"
        assert runtime.now() == START + timedelta(hours=2, minutes=10)
    assert "dl" not in (await journal(tmp_path, "unlimited"))[0]


async def test_resuming_keeps_the_journaled_deadline_whatever_the_call_says(
    tmp_path: Path,
) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        handle = await runtime.start(waiter, id="w")
        await runtime.advance("1 min")
        await runtime.close()
    with pytest.raises(durable.WorkflowStopped):
        await handle.result()
    async with TestRuntime(tmp_path, start_time=START + timedelta(minutes=2)) as runtime:
        with pytest.raises(durable.WorkflowTimedOut):
            await runtime.run(waiter, id="w", execution_timeout="1 day")
        assert runtime.now() == START + HOUR


async def test_a_parent_past_its_deadline_cancels_its_child(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        async with asyncio.timeout(10):
            with pytest.raises(durable.WorkflowTimedOut):
                await runtime.run(parent, id="p")
        assert runtime.now() == START + HOUR

        async def child_cancelled() -> bool:
            child = await runtime.describe("the-child")
            return child.state is durable.WorkflowState.CANCELLED

        await wait_until(child_cancelled)
        assert runtime.now() == START + HOUR


async def test_a_cancellation_before_the_deadline_stays_a_plain_cancellation(
    tmp_path: Path,
) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        handle = await runtime.start(slow_cleaner, id="c")
        await runtime.advance("10 min")
        await runtime.cancel("c", "changed my mind")
        with pytest.raises(durable.WorkflowCancelled) as caught:
            await handle.result()  # its cleanup sleeps past the deadline, uninterrupted
    assert not isinstance(caught.value, durable.WorkflowTimedOut)
    assert caught.value.reason == "changed my mind"
    assert CLEANED == ["slow"]
    found = await journal(tmp_path, "c")
    cancels = [record.get("id") for record in found if record["k"] == records.CANCEL]
    assert cancels == [None, records.DEADLINE_CANCEL_ID]  # journaled, not applied


@pytest.mark.parametrize("value", ["soon", -1, 0, "0s", float("nan"), True])
def test_a_bad_execution_timeout_is_refused_at_decoration(value: Any) -> None:
    with pytest.raises(durable.InvalidDuration, match="execution_timeout"):
        durable.workflow(execution_timeout=value)(sleeper.fn)


async def test_a_bad_per_start_timeout_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        with pytest.raises(durable.InvalidDuration, match="execution_timeout"):
            await runtime.run(sleeper, id="bad", execution_timeout="two hours-ish")
        with pytest.raises(durable.WorkflowNotFound):
            await runtime.describe("bad")


def test_a_start_record_with_a_malformed_deadline_is_refused() -> None:
    now = START.timestamp()
    good = records.start("wf", "id", [], now, 1, dl=now + 3600)
    assert records.check_record(good, path="j", offset=8, index=0) == good
    marked = records.cancel(1, "why", now, records.DEADLINE_CANCEL_ID)
    assert (
        records.check_record(marked, path="j", offset=8, index=1)["id"]
        == "durable:execution-timeout"
    )
    start = records.start("wf", "id", [], START.timestamp(), 1, dl="tomorrow")
    with pytest.raises(durable.JournalCorrupted, match="deadline"):
        records.check_record(start, path="j", offset=8, index=0)
    cancel = {**records.cancel(1, "why", START.timestamp()), "id": 5}
    with pytest.raises(durable.JournalCorrupted, match="request id"):
        records.check_record(cancel, path="j", offset=8, index=1)


async def test_submit_journals_the_deadline_too(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await runtime.submit(waiter, id="default")
        await runtime.submit(waiter, id="override", execution_timeout="10 min")
        with pytest.raises(durable.InvalidDuration):
            await runtime.submit(waiter, id="bad", execution_timeout=-5)
    assert (await journal(tmp_path, "default"))[0]["dl"] == (START + HOUR).timestamp()
    override = (await journal(tmp_path, "override"))[0]["dl"]
    assert override == (START + timedelta(minutes=10)).timestamp()


RELEASE: list[asyncio.Event] = []


@durable.activity
async def charge(order: str) -> str:
    await RELEASE[0].wait()  # (held: the runtime closes while it runs)
    return f"charged {order}"


@durable.workflow(execution_timeout="1 hour")
async def checkout(order: str) -> str:
    return await charge(order)


async def test_past_its_deadline_a_resumed_workflow_starts_no_activity(tmp_path: Path) -> None:
    # Stopped while an activity ran; resumed after its deadline: the activity, in doubt,
    # would run again at once. The deadline's cancellation is taken before anything starts.
    RELEASE[:] = [asyncio.Event()]
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        with runtime.count_calls(charge) as first:
            await runtime.start(checkout, "o-1", id="c")
            await wait_until(lambda: asyncio.sleep(0, bool(first.calls)))
    async with TestRuntime(tmp_path, start_time=START + 2 * HOUR) as runtime:
        RELEASE[0].set()  # (were it started again, it would finish at once)
        with runtime.count_calls(charge) as again, pytest.raises(durable.WorkflowTimedOut):
            await runtime.run(checkout, "o-1", id="c")
        assert again.calls == []


async def test_durable_show_prints_the_deadline(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        with pytest.raises(durable.WorkflowTimedOut):
            await runtime.run(sleeper, id="s")
    show = ["show", "s", "--dir", str(tmp_path)]
    result = await asyncio.to_thread(CliRunner().invoke, main, show)  # (it runs its own loop)
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("deadline")]
    assert "its execution_timeout" in line
    assert "cancelled" in result.output
