"""Lifecycle: the first error and the first cancellation count; host tasks; the wake-up."""

from __future__ import annotations

import asyncio

import pytest

from durable._engine._lifecycle import Lifecycle

pytestmark = pytest.mark.anyio


async def test_the_first_error_stops_the_run_and_wakes_its_driver() -> None:
    life = Lifecycle()
    life.host_loop = asyncio.get_running_loop()
    idle = asyncio.ensure_future(life.idle())
    await asyncio.sleep(0)
    assert life.waiting()
    first = RuntimeError("journal failed")
    life.fail(first)
    life.fail(ValueError("later"))
    await idle
    assert life.fatal is first
    assert not life.waiting()


async def test_only_the_first_cancellation_is_applied() -> None:
    life = Lifecycle()
    assert life.cancelled("its deadline passed", timed_out=True)
    assert not life.cancelled("stop", timed_out=False)
    assert life.cancel_reason == "its deadline passed"
    assert life.timed_out


async def test_host_tasks_are_tracked_until_done_and_those_of_children_left_to_stop() -> None:
    life = Lifecycle()
    life.host_loop = asyncio.get_running_loop()
    gate = asyncio.Event()
    quick = life.spawn(asyncio.sleep(0), "quick")
    slow = life.spawn(gate.wait(), "slow")
    child = life.spawn(gate.wait(), "child")
    await quick
    await asyncio.sleep(0)
    assert life.host_tasks == {slow, child}
    assert life.stop_starting({child}) == [slow]
    assert life.stopping
    life.cancel_host_tasks()
    await asyncio.gather(slow, child, return_exceptions=True)
    assert slow.cancelled()
