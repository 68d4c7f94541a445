"""Simulated crashes: the runtime dies at a journal record, as a SIGKILL would, and resumes."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import durable
from durable import RetryPolicy
from durable.testing import (
    CrashPoint,
    CrashPointFailed,
    TestRuntime,
    check_crash_point,
    check_crash_points,
    crash_points,
    every_crash_point,
)

pytestmark = pytest.mark.anyio

RAN: Counter[str] = Counter()
FINALLY: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()
    FINALLY.clear()


@durable.activity
async def step(name: str) -> str:
    RAN[name] += 1
    return name


@durable.workflow
async def three_steps() -> list[str]:
    try:
        return [await step("a"), await step("b"), await step("c")]
    finally:
        FINALLY.append("three_steps")


# Records of three_steps: 1 start, 2 done a, 3 done b, 4 done c, 5 end.


async def test_a_crash_right_after_a_record_runs_nothing_more_before_the_restart(
    tmp_path: Path,
) -> None:
    async with TestRuntime(tmp_path, crash=CrashPoint(2)) as runtime:
        assert await runtime.run(three_steps, id="w") == ["a", "b", "c"]
        assert len(runtime.crashes) == 1
        assert FINALLY == ["three_steps"]  # the resumed run's; the killed one's never ran
    assert RAN == {"a": 1, "b": 1, "c": 1}  # a was replayed from record 2


async def test_a_late_crash_loses_the_record_of_code_that_ran(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, crash=CrashPoint(2, late=True)) as runtime:
        assert await runtime.run(three_steps, id="w") == ["a", "b", "c"]
    assert RAN == {"a": 1, "b": 2, "c": 1}  # b ran, its record was lost: it ran again


async def test_a_crash_point_past_the_last_record_does_not_crash(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, crash=CrashPoint(5, late=True)) as runtime:
        assert await runtime.run(three_steps, id="w") == ["a", "b", "c"]
        assert runtime.crashes == []


def test_every_crash_point_covers_both_sides_of_every_record() -> None:
    assert [str(point) for point in every_crash_point(2)] == [
        "after record 0, with record 1 lost",
        "right after record 1",
        "after record 1, with record 2 lost",
        "right after record 2",
    ]
    with pytest.raises(ValueError, match="count of records"):
        CrashPoint(-1)


# -- check_crash_points: the user's scenario at every point ----------------------------------


class PaymentApi:
    """A fake payment provider; `deduplicates` is what an idempotency key buys."""

    def __init__(self, *, deduplicates: bool) -> None:
        self.deduplicates = deduplicates
        self.charges: dict[str, int] = {}
        self.count = 0

    async def charge(self, amount: int) -> str:
        key = durable.activity_info().idempotency_key
        if not (self.deduplicates and key in self.charges):
            self.count += 1
            self.charges[key] = amount
        return f"ch-{key}"


@durable.activity(retry=RetryPolicy(maximum_attempts=2))
async def charge_payment(amount: int) -> str:
    raise AssertionError("mocked in these tests")


@durable.workflow
async def order(amount: int) -> str:
    payment = await charge_payment(amount)
    await durable.sleep("2 hours")
    confirmation = await durable.wait_for_event("confirmed", timeout="1 day")
    await step("ship")
    return f"{payment} {confirmation}"


def order_scenario(*, deduplicates: bool) -> durable.testing.Scenario:
    async def scenario(runtime: TestRuntime) -> None:
        api = PaymentApi(deduplicates=deduplicates)
        with runtime.mock_activity(charge_payment, api.charge):
            handle = await runtime.start(order, 42, id="order-1")
            await runtime.send_event("order-1", "confirmed", "yes")
            assert await handle.result() == "ch-order-1/0 yes"
        assert api.count == 1, f"charged {api.count} times"

    return scenario


async def test_an_idempotent_flow_holds_at_every_crash_point(tmp_path: Path) -> None:
    report = await check_crash_points(order_scenario(deduplicates=True), tmp_path)
    assert report.records >= 6
    assert len(report.points) == 2 * report.records
    assert report.crashed == len(report.points)


async def test_a_side_effect_without_deduplication_is_caught_and_the_point_named(
    tmp_path: Path,
) -> None:
    with pytest.raises(CrashPointFailed) as caught:
        await check_crash_points(order_scenario(deduplicates=False), tmp_path)
    assert caught.value.point == CrashPoint(1, late=True)  # charged, record lost: charged again
    assert "charged 2 times" in str(caught.value)
    assert "after record 1, with record 2 lost" in str(caught.value)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(point=crash_points(max_record=10))
async def test_crash_points_drive_the_same_check_from_hypothesis(
    point: CrashPoint, tmp_path_factory: pytest.TempPathFactory
) -> None:
    await check_crash_point(
        order_scenario(deduplicates=True), point, tmp_path_factory.mktemp("crash")
    )


# -- what else a crash can land in -----------------------------------------------------------


@durable.workflow
async def parallel() -> list[str]:
    return list(await asyncio.gather(step("left"), step("right"), step("middle")))


async def test_activities_running_side_by_side_at_the_crash_are_stopped_and_resumed(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        assert await runtime.run(parallel, id="p") == ["left", "right", "middle"]

    report = await check_crash_points(scenario, tmp_path)
    assert report.crashed == len(report.points)


@durable.workflow(name="billing")
async def billing(month: int) -> int:
    await step(f"bill {month}")
    if month < 3:
        durable.continue_as_new(month + 1)
    return month


async def test_a_crash_around_continue_as_new_resumes_the_right_generation(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        with runtime.count_calls(step) as bills:
            assert await runtime.run(billing, 1, id="b") == 3
        assert set(bills.by_key(returned_only=True)) == {"b/0", "b/g1/0", "b/g2/0"}

    report = await check_crash_points(scenario, tmp_path)
    assert report.records >= 9


@durable.workflow(name="label")
async def label(box: int) -> str:
    return await step(f"label {box}")


@durable.workflow(name="packing")
async def packing() -> list[str]:
    return [await durable.run_child(label, box) for box in (1, 2)]


async def test_a_crash_with_child_workflows_resumes_parent_and_children(tmp_path: Path) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        with runtime.count_calls(step) as labels:
            assert await runtime.run(packing, id="pk") == ["label 1", "label 2"]
        assert set(labels.by_key(returned_only=True)) == {"pk.0/0", "pk.1/0"}

    report = await check_crash_points(scenario, tmp_path)
    assert report.crashed == len(report.points)


@durable.activity(at_most_once=True)
async def wire_money(amount: int) -> None:
    RAN["wire"] += 1


@durable.workflow
async def transfer() -> str:
    try:
        await wire_money(100)
    except durable.InDoubtError:
        return "in doubt"
    return "sent"


async def test_an_at_most_once_activity_in_doubt_after_a_crash_is_not_run_again(
    tmp_path: Path,
) -> None:
    # Records: 1 start, 2 intent (synced before the wire), 3 done. A crash that loses the
    # done record leaves the call in doubt.
    async with TestRuntime(tmp_path, crash=CrashPoint(2, late=True)) as runtime:
        assert await runtime.run(transfer, id="t") == "in doubt"
    assert RAN["wire"] == 1


@durable.activity
async def _fresh_dir_step() -> int:
    return 1


@durable.workflow
async def _fresh_dir_flow() -> int:
    return await _fresh_dir_step() + await _fresh_dir_step()


async def test_a_repeated_crash_point_gets_a_fresh_directory(tmp_path: Path) -> None:
    """Hypothesis repeats points: a second run at one point must crash and run again."""

    async def scenario(runtime: TestRuntime) -> None:
        assert await runtime.run(_fresh_dir_flow, id="fresh") == 2

    assert await check_crash_point(scenario, CrashPoint(1), tmp_path)
    assert await check_crash_point(scenario, CrashPoint(1), tmp_path)  # crashes again
