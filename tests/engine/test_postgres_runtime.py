"""The engine, unchanged, on PostgresStore: replay, retries, events between runtimes (as
between hosts), continue-as-new, and a takeover after a runner's lease expired."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import pytest

import durable
from durable import PostgresStore, RetryPolicy, Runtime
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio

calls: dict[str, int] = {}


async def wait_for_state(runtime: Runtime, workflow_id: str, state: durable.WorkflowState) -> None:
    """(Until its start record is committed, a new workflow is not found: PostgreSQL shows
    only committed records, where the file store also shows the page cache.)"""
    while True:
        try:
            if (await runtime.describe(workflow_id)).state is state:
                return
        except durable.WorkflowNotFound:
            pass
        await asyncio.sleep(0.01)


@durable.activity(retry=RetryPolicy(initial_interval=0.01, maximum_attempts=3))
async def charge(order: int) -> str:
    calls[f"charge {order}"] = calls.get(f"charge {order}", 0) + 1
    if calls[f"charge {order}"] < 2:
        raise ConnectionError("payment API timed out")
    return f"pay-{order}"


@durable.activity
async def ship(order: int, decision: str) -> str:
    calls[f"ship {order}"] = calls.get(f"ship {order}", 0) + 1
    return f"shipped {order} ({decision})"


@durable.workflow
async def order_flow(order: int) -> str:
    payment = await charge(order)
    decision = await durable.wait_for_event("approved", timeout="1 day")
    await durable.sleep(0.01)
    return f"{payment}, " + await ship(order, decision)


@durable.workflow
async def counting(count: int) -> int:
    if count < 3:
        durable.continue_as_new(count + 1)
    return count


async def test_a_workflow_runs_stops_and_resumes_from_postgres(postgres_dsn: str) -> None:
    calls.clear()
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        handle = await runtime.start(order_flow, 1, id="order-1")
        await wait_for_state(runtime, "order-1", durable.WorkflowState.WAITING)
    assert calls == {"charge 1": 2}  # (one retry)
    # Another runtime, as on another host, sends the event while nothing runs it...
    async with Runtime(store=PostgresStore(postgres_dsn)) as sender:
        assert await sender.send_event("order-1", "approved", "by phone")
    # ...and a third resumes it: the charge replays from the journal, the event is taken.
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        assert await runtime.run(order_flow, 1, id="order-1") == "pay-1, shipped 1 (by phone)"
    assert calls == {"charge 1": 2, "ship 1": 1}
    del handle


async def test_an_event_reaches_a_workflow_running_in_another_runtime(postgres_dsn: str) -> None:
    calls.clear()
    async with Runtime(store=PostgresStore(postgres_dsn), event_poll_interval=0.05) as runner:
        handle = await runner.start(order_flow, 2, id="order-2")
        async with Runtime(store=PostgresStore(postgres_dsn)) as sender:
            await wait_for_state(sender, "order-2", durable.WorkflowState.WAITING)
            await sender.send_event("order-2", "approved", "yes")
        assert await asyncio.wait_for(handle.result(), 10) == "pay-2, shipped 2 (yes)"


async def test_continue_as_new_rotates_generations(postgres_dsn: str) -> None:
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        assert await runtime.run(counting, 0, id="counter") == 3
        assert (await runtime.describe("counter")).generation == 3
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        assert await runtime.run(counting, 0, id="counter") == 3  # the recorded outcome


async def test_one_runner_per_workflow_across_runtimes(postgres_dsn: str) -> None:
    """A second runtime's start of a held id follows the first's run: one runner, and
    every handle gets the real outcome."""
    calls.clear()
    async with (
        Runtime(store=PostgresStore(postgres_dsn), event_poll_interval=0.05) as first,
        Runtime(store=PostgresStore(postgres_dsn), event_poll_interval=0.05) as second,
    ):
        mine = await first.start(order_flow, 3, id="order-3")
        await wait_for_state(first, "order-3", durable.WorkflowState.WAITING)
        follower = await second.start(order_flow, 3, id="order-3")
        watcher = await second.handle("order-3")
        assert not follower.done()
        assert await second.recover() == []  # (it follows order-3 already)
        await second.send_event("order-3", "approved", "yes")
        results = await asyncio.wait_for(
            asyncio.gather(mine.result(), follower.result(), watcher.result()), 10
        )
        assert list(results) == ["pay-3, shipped 3 (yes)"] * 3
        assert calls == {"charge 3": 2, "ship 3": 1}
        with pytest.raises(durable.WorkflowIdInUse):
            await second.start(order_flow, 4, id="order-3")


async def test_a_runner_whose_lease_expired_is_fenced_and_another_takes_over(
    postgres_dsn: str,
) -> None:
    calls.clear()
    paused_store = PostgresStore(postgres_dsn, lease=0.5)
    async with Runtime(store=paused_store, suspend_after=None) as paused:
        handle = await paused.start(order_flow, 4, id="order-4")
        await wait_for_state(paused, "order-4", durable.WorkflowState.WAITING)
        assert paused_store._heartbeat is not None
        paused_store._heartbeat.cancel()  # (as if the process were SIGSTOPped)
        await asyncio.sleep(0.7)
        async with Runtime(store=PostgresStore(postgres_dsn)) as survivor:
            resumed = await survivor.start(order_flow, 4, id="order-4")
            await survivor.send_event("order-4", "approved", "after takeover")
            assert await asyncio.wait_for(resumed.result(), 10) == (
                "pay-4, shipped 4 (after takeover)"
            )
        # The paused runner wakes: what it journals next is refused (fenced), and its run
        # follows the survivor's: its handle gets the workflow's real outcome.
        # (its poller may have seen the survivor's event first, and its run been fenced then:
        # the send finds the workflow completed)
        with contextlib.suppress(durable.WorkflowFinished):
            await paused.send_event("order-4", "approved", "too late")
        assert await asyncio.wait_for(handle.result(), 10) == "pay-4, shipped 4 (after takeover)"
    assert calls["charge 4"] == 2  # charged (with its retry) once, not again by the survivor


async def test_the_testing_kit_runs_on_postgres(postgres_dsn: str) -> None:
    """Virtual time skips a day-long wait on a PostgreSQL store too."""
    started = asyncio.get_running_loop().time()
    async with TestRuntime(store=PostgresStore(postgres_dsn)) as runtime:
        handle = await runtime.start(order_flow, 5, id="order-5")
        with pytest.raises(durable.WorkflowFailed, match="EventTimeout"):
            await handle.result()  # (a retry back-off, then a day's wait: virtual, at once)
    assert asyncio.get_running_loop().time() - started < 10


@durable.workflow
async def napper(seconds: float) -> str:
    await durable.sleep(seconds)
    return "rested"


async def test_a_sleeper_wakes_in_whichever_process_serves_then(postgres_dsn: str) -> None:
    """A sleep outlives the process that began it: another serving process resumes it."""
    first = Runtime(store=PostgresStore(postgres_dsn), workflows=[napper], suspend_after=0.1)
    async with first:
        serving = asyncio.ensure_future(first.serve(poll_interval=0.1))
        await first.submit(napper, 1.5, id="nap")
        await wait_for_state(first, "nap", durable.WorkflowState.SLEEPING)
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    # The first process is gone; a second one serves from now on.
    second = Runtime(store=PostgresStore(postgres_dsn), workflows=[napper])
    async with second:
        serving = asyncio.ensure_future(second.serve(poll_interval=0.1))
        try:
            async with asyncio.timeout(10):
                while (await second.describe("nap")).state is not durable.WorkflowState.COMPLETED:
                    await asyncio.sleep(0.05)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    async with Runtime(store=PostgresStore(postgres_dsn)) as third:  # (the recorded outcome)
        assert await third.run(napper, 1.5, id="nap") == "rested"


async def test_a_damaged_row_is_refused_naming_the_workflow(postgres_dsn: str) -> None:
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        assert await runtime.run(counting, 3, id="damaged") == 3
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(
            "UPDATE durable_records SET payload = '\\xc1c1c1'::bytea WHERE name = 'damaged' "
            "AND seq = 0"
        )
    finally:
        await connection.close()
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        with pytest.raises(durable.JournalCorrupted, match="journal 'damaged'"):
            await runtime.describe("damaged")


@durable.activity(name="pg-once")
async def once(n: int) -> int:
    calls[f"once {n}"] = calls.get(f"once {n}", 0) + 1
    return n


@durable.workflow(name="pg-once-flow")
async def once_flow(n: int) -> int:
    return await once(n)


async def test_concurrent_starts_of_one_id_in_one_process_give_one_run(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a slow first claim, a start at the same moment joins the first's run: the
    store is opened once, the activity runs once (it ran twice, both handles claiming)."""
    calls.clear()
    store = PostgresStore(postgres_dsn)
    async with Runtime(store=store) as runtime:
        await store.connect()
        real = store.open

        async def slow_open(name: str) -> Any:
            await asyncio.sleep(0.3)
            return await real(name)

        monkeypatch.setattr(store, "open", slow_open)
        first, second = await asyncio.gather(
            runtime.start(once_flow, 1, id="same"), runtime.start(once_flow, 1, id="same")
        )
        assert first._task is second._task
        assert await first.result() == await second.result() == 1
    assert calls == {"once 1": 1}
