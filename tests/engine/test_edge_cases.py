"""Edge cases a review found in the engine (each was a bug; these keep them fixed)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import durable
from durable import RetryPolicy, Runtime

pytestmark = pytest.mark.anyio

ONCE = RetryPolicy(maximum_attempts=1)


async def test_an_activity_raising_cancelled_error_fails_the_call_instead_of_hanging(
    journal_dir: Path,
) -> None:
    # An activity can raise CancelledError without being cancelled (it awaited a task that
    # someone else cancelled, say). The workflow must get an outcome, not wait forever.
    @durable.activity(retry=ONCE)
    async def fetch() -> str:
        raise asyncio.CancelledError("the connection's reader task was cancelled")

    @durable.workflow
    async def flow() -> str:
        try:
            return await fetch()
        except durable.ActivityError as error:
            return f"failed: {error.error_type}"

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        result = await asyncio.wait_for(runtime.run(flow, id="cancelled-inside"), 1)
    assert result.startswith("failed: ")
    assert "CancelledError" in result


class Abort(BaseException):
    """A BaseException that is not KeyboardInterrupt/SystemExit (greenlet exits, say)."""


async def test_an_activity_raising_a_base_exception_is_an_activity_failure(
    journal_dir: Path,
) -> None:
    calls: Counter[str] = Counter()

    @durable.activity(retry=ONCE)
    async def step() -> None:
        calls["step"] += 1
        raise Abort("stop")

    @durable.workflow
    async def flow() -> str:
        try:
            await step()
        except durable.ActivityError as error:
            return error.error_type
        return "no error"

    results = []
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        for _ in range(2):
            try:
                results.append(await asyncio.wait_for(runtime.run(flow, id="base-exception"), 1))
            except Abort:
                results.append("Abort escaped the workflow run")
    assert [result.rsplit(".", 1)[-1] for result in results] == ["Abort", "Abort"], results
    assert calls["step"] == 1, "the failure was recorded, not re-run on every resume"


async def test_an_activity_mutating_its_argument_does_not_change_what_replay_sees(
    journal_dir: Path,
) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    @durable.activity
    async def add_item(items: list[int]) -> None:
        items.append(3)  # the activity's copy; the workflow's list is the journaled one

    @durable.activity
    async def block() -> None:
        started.set()
        await gate.wait()

    @durable.workflow(name="counting")
    async def counting() -> int:
        items = [1, 2]
        await add_item(items)
        seen = len(items)
        await block()
        return seen

    gate.set()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        uninterrupted = await runtime.run(counting, id="uninterrupted")
    gate.clear()
    started.clear()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(counting, id="interrupted")
        await started.wait()
    gate.set()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        resumed = await runtime.run(counting, id="interrupted")
    assert uninterrupted == resumed, "live and replayed runs made different decisions"


async def test_an_activity_runs_with_the_arguments_it_was_called_with(
    journal_dir: Path,
) -> None:
    @durable.activity
    async def count(items: list[int]) -> int:
        return len(items)

    @durable.workflow
    async def flow() -> int:
        items = [1]
        call = asyncio.create_task(count(items))  # journaled with [1] (its digest)
        await asyncio.sleep(0)
        items.append(2)  # before the workflow goes idle and the activity starts
        return await call

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(flow, id="late-mutation") == 1


async def test_non_determinism_error_names_the_first_diverging_step(journal_dir: Path) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    @durable.activity
    async def a() -> None:
        pass

    @durable.activity
    async def b() -> None:
        pass

    @durable.activity
    async def block() -> None:
        started.set()
        await gate.wait()

    @durable.workflow(name="pair")
    async def v1() -> None:
        await asyncio.gather(a(), b())
        await block()

    @durable.workflow(name="pair")
    async def v2() -> None:
        await asyncio.gather(b(), a())  # step 0 now asks for b
        await block()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(v1, id="pair")
        await started.wait()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.NonDeterminismError) as info:
            await runtime.run(v2, id="pair")
    gate.set()
    assert info.value.position == 0
    assert ".a'" in info.value.recorded
    assert ".b'" in info.value.requested


async def test_code_that_no_longer_asks_for_recorded_steps_is_non_deterministic(
    journal_dir: Path,
) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    @durable.activity
    async def charge() -> None:
        pass

    @durable.activity
    async def ship() -> None:
        started.set()
        await gate.wait()

    @durable.workflow(name="shop")
    async def v1() -> str:
        await charge()
        await ship()
        return "shipped"

    @durable.workflow(name="shop")
    async def v2() -> str:
        await charge()
        return "not shipped"  # the journal says step 1 (ship) was asked for, and ran

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(v1, id="shop")
        await started.wait()
        await asyncio.sleep(0.05)  # running for longer than INTENT_AFTER: its intent is written
    gate.set()
    before = (journal_dir / "shop.journal").read_bytes()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.NonDeterminismError) as info:
            await runtime.run(v2, id="shop")
    assert info.value.position == 1
    assert (journal_dir / "shop.journal").read_bytes() == before, "nothing was written"


async def test_a_timeout_error_raised_by_the_activity_is_not_reported_as_its_timeout(
    journal_dir: Path,
) -> None:
    @durable.activity(timeout="30s", retry=ONCE)
    async def call_gateway() -> None:
        raise TimeoutError("gateway slow")  # at once: the 30 s attempt timeout never expired

    @durable.workflow
    async def flow() -> str:
        try:
            await call_gateway()
        except durable.ActivityError as error:
            return f"{error.error_type}: {error.message}"
        return "no error"

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(flow, id="gateway") == "TimeoutError: gateway slow"


async def test_a_workflow_result_that_cannot_be_journaled_is_a_final_failure(
    journal_dir: Path,
) -> None:
    calls: Counter[str] = Counter()

    @durable.workflow
    async def flow() -> object:
        calls["body"] += 1
        return object()

    async with Runtime(journal_dir, workflows=[flow]) as runtime:
        for _ in range(2):
            with pytest.raises(durable.DurableError, match="object"):
                await runtime.run(flow, id="unjournalable")
        assert await runtime.recover() == [], "the outcome is recorded, so nothing to resume"
    assert calls["body"] == 1


async def test_async_generator_cleanup_in_a_workflow_is_journaled(journal_dir: Path) -> None:
    executions: list[str] = []

    @durable.activity
    async def emit(value: int) -> int:
        try:
            executions.append(durable.activity_info().idempotency_key)
        except durable.OutsideWorkflowError:
            executions.append(f"unjournaled {value}")
        return value

    async def numbers() -> AsyncIterator[int]:
        try:
            for value in range(5):
                yield await emit(value)
        finally:
            await emit(100)  # workflow code: must run on the workflow's loop, journaled

    @durable.workflow
    async def flow() -> list[int]:
        taken = []
        async for value in numbers():
            taken.append(value)
            if value == 1:
                break  # the generator is dropped here and finalized
        await emit(50)
        return taken

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(flow, id="generator") == [0, 1]
        for _ in range(10):
            await asyncio.sleep(0)
    assert not [entry for entry in executions if entry.startswith("unjournaled")], executions


async def test_a_cleanup_activity_in_finally_does_not_run_when_a_sleeper_is_unloaded(
    journal_dir: Path,
) -> None:
    # Unloading closes the workflow's coroutine, which runs its `finally`. An activity awaited
    # there must be refused (the workflow is not ending), not called outside the journal.
    cleaned: list[str] = []

    @durable.activity
    async def clean_up() -> None:
        cleaned.append("ran")

    @durable.workflow
    async def sleeper() -> None:
        try:
            await durable.sleep(3600)
        finally:
            await clean_up()

    async with Runtime(journal_dir, suspend_after=0.01, stop_grace=0) as runtime:
        await runtime.start(sleeper, id="sleeper")
        async with asyncio.timeout(5):
            while "sleeper" in runtime._runs or not runtime._running:
                await asyncio.sleep(0.01)
    assert cleaned == []


async def test_a_child_cancelled_on_its_own_raises_workflow_cancelled_in_its_parent(
    journal_dir: Path,
) -> None:
    @durable.workflow
    async def waiting_child() -> None:
        await durable.wait_for_event("never")

    @durable.workflow
    async def parent() -> str:
        try:
            await durable.run_child(waiting_child, id="the-child")
        except durable.WorkflowCancelled as cancelled:
            return f"child cancelled: {cancelled.reason}"
        return "child finished"

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        handle = await runtime.start(parent, id="the-parent")
        async with asyncio.timeout(5):
            while "the-child" not in runtime._running:
                await asyncio.sleep(0.01)
        await runtime.cancel("the-child", "not needed")
        assert await asyncio.wait_for(handle.result(), 5) == "child cancelled: not needed"
    async with Runtime(journal_dir) as runtime:  # and the same from the journal
        assert await runtime.run(parent, id="the-parent") == "child cancelled: not needed"
