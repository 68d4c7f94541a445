"""StepsInFlight: numbering, the check against the journal, the steps not delivered yet."""

from __future__ import annotations

import asyncio

import pytest

from durable import NonDeterminismError, RetryPolicy
from durable._engine._in_flight import Diverged, Evicted, StepsInFlight
from durable._engine._replay import RecordedStep
from durable._engine._specs import ActivitySpec
from durable._engine._steps import ChildCall, Command

SPEC = ActivitySpec(
    name="charge",
    fn=print,
    is_async=False,
    timeout=None,
    retry=RetryPolicy(),
    at_most_once=False,
    return_type=None,
)


def test_steps_are_numbered_in_the_order_asked_and_checked_against_the_journal() -> None:
    recorded = {1: RecordedStep("activity", "charge", "d1"), 2: RecordedStep("timer")}
    steps = StepsInFlight("w", recorded)
    assert steps.begin("timer", "", "") == 0  # (nothing recorded there: new work)
    assert steps.begin("activity", "charge", "d1") == 1
    with pytest.raises(Diverged):  # (a BaseException: workflow code cannot catch it)
        steps.begin("activity", "refund", "d1")
    first = steps.divergence
    assert isinstance(first, NonDeterminismError)
    assert first.position == 2
    assert steps.next == 3
    steps.next = 1
    with pytest.raises(Diverged):
        steps.begin("wait", "paid", "")
    assert steps.divergence is first  # the first one is the one reported


def test_a_closed_run_unwinds_code_that_asks_for_a_step() -> None:
    steps = StepsInFlight("w", {})
    steps.close()
    with pytest.raises(Evicted):
        steps.begin("activity", "charge", "d")
    assert steps.next == 0


def test_pending_steps_count_activities_and_new_ones_are_taken_once() -> None:
    steps = StepsInFlight("w", {})
    activity = Command(0, None, None, spec=SPEC)
    timer = Command(1, None, None)
    timer.fire_at = 50.0
    wait = Command(2, None, None, event="paid")
    steps.add(activity)
    steps.add(timer)
    steps.wait(wait)  # (nothing to start: not new)
    assert steps.activities == 1
    assert steps.take_new() == [activity, timer]
    assert steps.take_new() == []
    assert steps.sleeping_until() is None  # an activity runs
    assert steps.forget(0) is activity
    assert steps.forget(0) is None
    assert steps.activities == 0
    assert steps.sleeping_until() == 50.0  # (the wait's fire_at is inf)
    steps.forget(1)
    assert steps.sleeping_until() == float("inf")


@pytest.mark.anyio
async def test_an_activity_in_its_back_off_is_parked_a_child_as_its_own_run_says() -> None:
    steps = StepsInFlight("w", {})
    steps.add(Command(0, None, None, spec=SPEC))
    assert not steps.parked(lambda _: True)
    release = asyncio.Event()
    backing_off = asyncio.ensure_future(steps.back_off(release.wait()))
    await asyncio.sleep(0)
    assert steps.parked(lambda _: True)
    release.set()
    await backing_off
    assert steps.backing_off == 0
    child = Command(1, None, None, spec=SPEC, child=ChildCall(None, "w.1", []))
    child.host = asyncio.get_running_loop().call_later(10, print)
    steps.add(child)
    steps.forget(0)
    assert steps.parked(lambda workflow_id: workflow_id == "w.1")
    assert not steps.parked(lambda _: False)
    assert steps.child_tasks() == {child.host}
    steps.cancel_host_work()
    assert child.host.cancelled()
