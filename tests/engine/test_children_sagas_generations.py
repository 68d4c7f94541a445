"""Child workflows, sagas, continue-as-new and patches (versioning)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import RetryPolicy, Runtime, WorkflowState
from durable.testing import TestRuntime, check_crash_points
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@durable.activity(name="record")
async def record(text: str) -> str:
    RAN.append(text)
    return text


# -- child workflows -------------------------------------------------------------------------


@durable.workflow(name="pack")
async def pack(box: int) -> str:
    await record(f"pack {box}")
    if box < 0:
        raise ValueError("no such box")
    return f"box-{box}"


@durable.workflow(name="shipment")
async def shipment(boxes: list[int]) -> list[str]:
    packed = [await durable.run_child(pack, box) for box in boxes]
    await record("shipped")
    return packed


async def test_children_run_with_their_own_journals_and_never_twice(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(shipment, [1, 2], id="s") == ["box-1", "box-2"]
        child = await runtime.describe("s.0")
        assert (child.parent, child.state) == ("s", WorkflowState.COMPLETED)
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(shipment, [1, 2], id="s") == ["box-1", "box-2"]
    assert RAN == ["pack 1", "pack 2", "shipped"]


@durable.workflow(name="careful-shipment")
async def careful_shipment() -> str:
    try:
        await durable.run_child(pack, -1, id="bad-box")
    except durable.WorkflowFailed as failed:
        return f"{failed.workflow_id}: {failed.error_type}"
    return "no error"


async def test_a_failed_child_raises_workflow_failed_in_the_parent(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(careful_shipment, id="careful") == "bad-box: ValueError"
        with pytest.raises(durable.WorkflowFailed, match="no such box"):
            await runtime.run(pack, -1, id="bad-box")


@durable.workflow(name="long-child")
async def long_child() -> str:
    try:
        await durable.wait_for_event("never")
    except asyncio.CancelledError:
        await record("child cleaned up")
        raise
    return "unreachable"


@durable.workflow(name="parent-of-long")
async def parent_of_long() -> str:
    return await durable.run_child(long_child, id="the-child")


async def test_cancelling_a_parent_cancels_its_child(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(parent_of_long, id="parent")

        async def child_waits() -> bool:
            try:
                return (await runtime.describe("the-child")).waiting_for == "never"
            except durable.WorkflowNotFound:
                return False

        await wait_until(child_waits)
        await runtime.cancel("parent", "order withdrawn")
        with pytest.raises(durable.WorkflowCancelled):
            await handle.result()

        async def child_cancelled() -> bool:
            return (await runtime.describe("the-child")).state == WorkflowState.CANCELLED

        await wait_until(child_cancelled)
    assert RAN == ["child cleaned up"]


# -- sagas -----------------------------------------------------------------------------------


@durable.activity(name="refund", retry=RetryPolicy(initial_interval=0.01))
async def refund(payment: str) -> None:
    RAN.append(f"refund {payment}")


@durable.activity(name="release", retry=RetryPolicy(initial_interval=0.01))
async def release(item: str) -> None:
    RAN.append(f"release {item}")
    if Gate.event is not None:
        await Gate.event.wait()


@durable.activity(name="ship-it", retry=RetryPolicy(maximum_attempts=1))
async def ship_it(order: str) -> str:
    RAN.append("ship")
    raise ConnectionError("carrier down")


class Gate:
    """Holds release() in flight while a test stops the runtime."""

    event: asyncio.Event | None = None


@durable.workflow(name="saga-order")
async def saga_order(order: str) -> str:
    async with durable.Saga() as saga:
        payment = await record(f"pay-{order}")
        saga.add(refund, payment)
        item = await record(f"reserve-{order}")
        saga.add(release, item)
        return await ship_it(order)


async def test_a_failed_step_runs_the_compensations_in_reverse(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowFailed, match="carrier down"):
            await runtime.run(saga_order, "o1", id="saga")
    assert RAN == ["pay-o1", "reserve-o1", "ship", "release reserve-o1", "refund pay-o1"]


async def test_a_crash_while_compensating_resumes_without_repeating_one(journal_dir: Path) -> None:
    gate = Gate.event = asyncio.Event()
    try:
        async with Runtime(journal_dir, stop_grace=0) as runtime:
            await runtime.start(saga_order, "o2", id="saga-crash")
            await wait_until(_ran("release reserve-o2"))
        gate.set()
        RAN.clear()
        async with Runtime(journal_dir) as runtime:
            with pytest.raises(durable.WorkflowFailed):
                await runtime.run(saga_order, "o2", id="saga-crash")
    finally:
        Gate.event = None
    assert RAN == ["release reserve-o2", "refund pay-o2"], "release was in flight: it re-ran"


async def test_a_saga_compensates_at_every_crash_point(tmp_path: Path) -> None:
    # The kit's in-process kill at every journal record (tests/crash/ has the real SIGKILLs).
    async def scenario(runtime: TestRuntime) -> None:
        RAN.clear()
        with (
            runtime.count_calls(refund) as refunds,
            runtime.count_calls(release) as releases,
            pytest.raises(durable.WorkflowFailed, match="carrier down"),
        ):
            await runtime.run(saga_order, "o3", id="saga")
        for counter in (refunds, releases):  # each ran; twice only if its record was lost
            assert list(counter.by_key(returned_only=True).values()) in ([1], [2]), counter
        assert RAN.index("release reserve-o3") < RAN.index("refund pay-o3")

    report = await check_crash_points(scenario, tmp_path)
    assert report.crashed == len(report.points) >= 12


def _ran(text: str) -> Any:
    async def check() -> bool:
        return text in RAN

    return check


# -- continue-as-new -------------------------------------------------------------------------


@durable.workflow(name="billing")
async def billing(month: int, total: int) -> int:
    charged = await record(f"bill {month}")
    total += len(charged)
    if month < 4:
        durable.continue_as_new(month + 1, total)
    return total


async def test_continue_as_new_keeps_one_id_and_a_bounded_journal(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(billing, 0, 0, id="bills") == 5 * len("bill 0")
        described = await runtime.describe("bills")
        assert (described.generation, described.state) == (4, WorkflowState.COMPLETED)
    assert [f"bill {month}" for month in range(5)] == RAN
    names = sorted(path.name for path in journal_dir.iterdir())
    assert names == ["bills.journal", "bills.journal.prev"], "one previous generation kept"
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(billing, 0, 0, id="bills") == 30
    assert len(RAN) == 5


@durable.workflow(name="subscription")
async def subscription(period: int) -> list[Any]:
    got = await durable.wait_for_event("usage")
    if period < 2:
        durable.continue_as_new(period + 1)
    return [period, got]


async def test_events_not_taken_yet_carry_over_to_the_next_generation(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(subscription, 0, id="sub")
        for usage in (10, 20, 30):
            await runtime.send_event("sub", "usage", usage)
        assert await handle.result() == [2, 30]


# -- patches -------------------------------------------------------------------------------


def versioned(patched_path: bool) -> durable.Workflow[[], list[str]]:
    @durable.workflow(name="versioned")
    async def flow() -> list[str]:
        first = await record("first")
        await durable.sleep(0.05)
        if patched_path and durable.patched("charge-v2"):
            second = await record("second v2")
        else:
            second = await record("second v1")
        return [first, second]

    return flow


async def test_patched_keeps_old_journals_on_the_old_path(journal_dir: Path) -> None:
    old, new = versioned(False), versioned(True)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(old, id="before") == ["first", "second v1"]
        await runtime.start(old, id="in-flight")
        await wait_until(_ran("first"))
    RAN.clear()
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(new, id="before") == ["first", "second v1"]
        assert await runtime.run(new, id="fresh") == ["first", "second v2"]
        # stopped before the patch point: it takes the new path (the old code decided nothing)
        assert await runtime.run(new, id="in-flight") == ["first", "second v2"]
        assert await runtime.run(new, id="fresh") == ["first", "second v2"]


async def test_a_patch_id_checked_at_two_places_gives_one_answer_per_run(
    journal_dir: Path,
) -> None:
    def spread(patch: bool) -> durable.Workflow[[], list[str]]:
        @durable.workflow(name="spread")
        async def flow() -> list[str]:
            first = await record("a v2" if patch and durable.patched("v2") else "a v1")
            second = await record("b")
            third = await record("c v2" if patch and durable.patched("v2") else "c v1")
            return [first, second, third]

        return flow

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(spread(False), id="old") == ["a v1", "b", "c v1"]
    patched = spread(True)
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(patched, id="old") == ["a v1", "b", "c v1"]
        assert await runtime.run(patched, id="new") == ["a v2", "b", "c v2"]
    async with Runtime(journal_dir) as runtime:  # and a replay repeats both answers
        assert await runtime.run(patched, id="new") == ["a v2", "b", "c v2"]


@durable.workflow(name="waiting-child")
async def waiting_child() -> str:
    await record("child waits")
    return str(await durable.wait_for_event("never"))


@durable.workflow(name="parent-of-a-waiter")
async def parent_of_a_waiter() -> str:
    return await durable.run_child(waiting_child, id="the-waiter")


async def test_close_does_not_wait_stop_grace_for_a_child(journal_dir: Path) -> None:
    """A parent awaiting its child is no activity in flight: close() stops both at once
    (it used to wait all of stop_grace for the child, which was being stopped too)."""
    runtime = Runtime(journal_dir, stop_grace="5 s")
    await runtime.start(parent_of_a_waiter, id="the-parent")

    async def child_waits() -> bool:
        return "child waits" in RAN

    await wait_until(child_waits)
    began = asyncio.get_running_loop().time()
    await runtime.close()
    assert asyncio.get_running_loop().time() - began < 2.0
    workflows = [parent_of_a_waiter, waiting_child]
    async with Runtime(journal_dir, workflows=workflows) as again:  # (both resume)
        await again.recover()
        await again.send_event("the-waiter", "never", "sent")
        assert await (await again.handle("the-parent")).result() == "sent"
    assert RAN == ["child waits"]  # (the child's step, recorded, did not run again)
