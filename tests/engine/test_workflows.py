"""Workflows and activities end to end: run, resume, replay, failures, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import RetryPolicy, Runtime, WorkflowHandle, _recovery
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(initial_interval=0.01, maximum_attempts=3)


@dataclass
class Quote:
    amount: Decimal
    currency: str


class Calls(Counter[str]):
    """How often each activity body ran (the side effects a journal must not repeat)."""


@pytest.fixture
def calls() -> Calls:
    return Calls()


def order_flow(calls: Calls, gate: asyncio.Event | None = None) -> durable.Workflow[[str], str]:
    @durable.activity
    async def charge(order: str) -> str:
        calls["charge"] += 1
        return f"pay-{order}"

    @durable.activity
    def reserve(order: str) -> int:  # sync: runs in a worker thread
        calls["reserve"] += 1
        return 3

    @durable.activity
    async def ship(order: str, payment: str) -> str:
        calls["ship"] += 1
        if gate is not None:
            await gate.wait()
        return f"track-{order}-{payment}"

    @durable.workflow(name="order")
    async def order(order_id: str) -> str:
        payment = await charge(order_id)
        count = await reserve(order_id)
        tracking = await ship(order_id, payment)
        return f"{tracking}x{count}"

    return order


async def test_a_workflow_runs_and_a_finished_one_is_not_run_again(
    journal_dir: Path, calls: Calls
) -> None:
    order = order_flow(calls)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(order, "42", id="order-42") == "track-42-pay-42x3"
        assert await runtime.run(order, "42", id="order-42") == "track-42-pay-42x3"
    assert calls == {"charge": 1, "reserve": 1, "ship": 1}


async def test_a_stopped_workflow_resumes_without_repeating_recorded_steps(
    journal_dir: Path, calls: Calls
) -> None:
    gate = asyncio.Event()
    order = order_flow(calls, gate)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        handle = await runtime.start(order, "7", id="order-7")
        while calls["ship"] == 0:
            await asyncio.sleep(0.01)
    assert not handle.done() or (handle._task is not None and handle._task.cancelled())
    gate.set()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(order, "7", id="order-7") == "track-7-pay-7x3"
    assert calls == {"charge": 1, "reserve": 1, "ship": 2}, "only the in-flight step re-ran"


async def test_recover_resumes_every_unfinished_workflow(journal_dir: Path, calls: Calls) -> None:
    gate = asyncio.Event()
    order = order_flow(calls, gate)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        for index in range(3):
            await runtime.start(order, str(index), id=f"order-{index}")
        while calls["ship"] < 3:
            await asyncio.sleep(0.01)
    gate.set()
    async with Runtime(journal_dir, workflows=[order]) as runtime:
        handles = await runtime.recover()
        assert sorted(handle.id for handle in handles) == ["order-0", "order-1", "order-2"]
        results = [await handle.result() for handle in handles]
        assert await runtime.recover() == []
    assert sorted(results) == [f"track-{i}-pay-{i}x3" for i in range(3)]
    assert calls["charge"] == 3


async def test_recover_names_an_unknown_workflow(journal_dir: Path, calls: Calls) -> None:
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        gate = asyncio.Event()
        await runtime.start(order_flow(calls, gate), "1", id="order-1")
        while calls["ship"] < 1:
            await asyncio.sleep(0.01)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.UnknownWorkflow, match="'order'"):
            await runtime.recover()


async def test_the_default_id_comes_from_the_arguments(journal_dir: Path, calls: Calls) -> None:
    order = order_flow(calls)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        first = await runtime.start(order, "9")
        await first.result()
        second = await runtime.start(order, "9")
        assert second.id == first.id
        assert first.id.startswith("order-")
        await second.result()
    assert calls["charge"] == 1


async def test_a_failing_workflow_is_recorded_as_failed(journal_dir: Path, calls: Calls) -> None:
    @durable.workflow
    async def broken(amount: int) -> int:
        calls["body"] += 1
        raise ValueError(f"bad amount {amount}")

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        for _ in range(2):
            with pytest.raises(durable.WorkflowFailed, match="ValueError: bad amount 5") as info:
                await runtime.run(broken, 5, id="broken")
            assert info.value.error_type == "ValueError"
            assert "bad amount 5" in info.value.traceback
    assert calls["body"] == 1


async def test_retries_then_activity_error_the_workflow_can_catch(
    journal_dir: Path, calls: Calls
) -> None:
    @durable.activity(retry=FAST)
    async def flaky() -> str:
        calls["flaky"] += 1
        raise ConnectionError("card network down")

    @durable.workflow
    async def caller() -> str:
        try:
            return await flaky()
        except durable.ActivityError as error:
            return f"{error.error_type} after {error.attempts}: {error.message}"

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        result = await runtime.run(caller, id="caller")
    assert result == "ConnectionError after 3: card network down"
    assert calls["flaky"] == 3


async def test_an_activity_succeeding_on_a_retry_keeps_one_idempotency_key(
    journal_dir: Path, calls: Calls
) -> None:
    keys: list[tuple[str, int]] = []

    @durable.activity(retry=FAST)
    def charge() -> str:
        info = durable.activity_info()
        keys.append((info.idempotency_key, info.attempt))
        if info.attempt < 3:
            raise TimeoutError("gateway slow")
        return "ok"

    @durable.workflow
    async def pay() -> str:
        return await charge()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(pay, id="pay-1") == "ok"
    assert keys == [("pay-1/0", 1), ("pay-1/0", 2), ("pay-1/0", 3)]


async def test_non_retryable_errors_fail_at_once(journal_dir: Path, calls: Calls) -> None:
    class CardDeclined(Exception):
        pass

    @durable.activity(retry=RetryPolicy(initial_interval=0.01, non_retryable_errors=[CardDeclined]))
    async def charge() -> None:
        calls["charge"] += 1
        raise CardDeclined("insufficient funds")

    @durable.workflow
    async def pay() -> None:
        await charge()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.WorkflowFailed, match="ActivityError"):
            await runtime.run(pay, id="declined")
    assert calls["charge"] == 1


async def test_an_attempt_over_its_timeout_is_retried(journal_dir: Path, calls: Calls) -> None:
    @durable.activity(timeout=0.05, retry=FAST)
    async def slow() -> str:
        calls["slow"] += 1
        if calls["slow"] == 1:
            await asyncio.sleep(10)
        return "fast enough"

    @durable.workflow
    async def flow() -> str:
        return await slow()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(flow, id="timeouts") == "fast enough"
    assert calls["slow"] == 2


async def test_a_timer_keeps_its_original_fire_time_across_a_restart(journal_dir: Path) -> None:
    @durable.workflow
    async def nap() -> float:
        await durable.sleep("0.4s")
        return durable.now().timestamp()

    began = time.time()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(nap, id="nap")
        await asyncio.sleep(0.1)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        woke = await runtime.run(nap, id="nap")
    finished = time.time()
    assert woke >= began + 0.4
    assert finished - began < 0.4 + 0.3, "the restart did not start a new 0.4 s sleep"


async def test_now_random_and_uuid_replay_identically(journal_dir: Path, calls: Calls) -> None:
    gate = asyncio.Event()

    @durable.activity
    async def step() -> None:
        calls["step"] += 1
        if calls["step"] == 1:
            await gate.wait()

    @durable.workflow
    async def draws() -> list[str]:
        before = [str(durable.now()), str(durable.random()), str(durable.uuid4())]
        await step()
        return [*before, str(durable.random()), durable.workflow_info().workflow_id]

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(draws, id="draws")
        while calls["step"] == 0:
            await asyncio.sleep(0.01)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        resumed = await runtime.run(draws, id="draws")
        again = await runtime.run(draws, id="draws")
    assert resumed == again
    assert resumed[-1] == "draws"


async def test_at_most_once_turns_an_in_doubt_call_into_in_doubt_error(
    journal_dir: Path, calls: Calls
) -> None:
    gate = asyncio.Event()

    @durable.activity(at_most_once=True)
    async def transfer() -> None:
        calls["transfer"] += 1
        await gate.wait()

    @durable.workflow
    async def wire() -> str:
        try:
            await transfer()
        except durable.InDoubtError as error:
            return f"in doubt at step {error.position}"
        return "sent"

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(wire, id="wire")
        while calls["transfer"] == 0:
            await asyncio.sleep(0.01)
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(wire, id="wire") == "in doubt at step 0"
    assert calls["transfer"] == 1


async def test_a_changed_workflow_raises_non_determinism_error(
    journal_dir: Path, calls: Calls
) -> None:
    gate = asyncio.Event()

    @durable.activity
    async def charge() -> None:
        calls["charge"] += 1

    @durable.activity
    async def refund() -> None:
        calls["refund"] += 1

    @durable.activity
    async def wait() -> None:
        await gate.wait()

    @durable.workflow(name="flow")
    async def v1() -> None:
        await charge()
        await wait()

    @durable.workflow(name="flow")
    async def v2() -> None:
        await refund()
        await wait()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(v1, id="flow")
        while calls["charge"] == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    before = (journal_dir / "flow.journal").read_bytes()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.NonDeterminismError) as info:
            await runtime.run(v2, id="flow")
    error = info.value
    assert error.position == 0
    assert ".charge'" in error.recorded
    assert ".refund'" in error.requested
    assert error.call_site.startswith(__file__)
    assert (journal_dir / "flow.journal").read_bytes() == before, "nothing was written"
    assert calls["refund"] == 0


async def test_a_second_start_of_a_running_id_follows_the_one_run(journal_dir: Path) -> None:
    """One runner per id: a second start, in this runtime or another on the directory,
    gets a handle that follows the first run (the activity runs once) to its outcome."""
    gate = asyncio.Event()
    ran: list[str] = []

    @durable.activity
    async def wait() -> str:
        ran.append("wait")
        await gate.wait()
        return "opened"

    @durable.workflow
    async def flow() -> str:
        return await wait()

    @durable.workflow
    async def other() -> str:
        return "other"

    async with Runtime(journal_dir, stop_grace=0, event_poll_interval=0.02) as runtime:
        handle = await runtime.start(flow, id="only-one")
        again = await runtime.start(flow, id="only-one")
        assert again._task is handle._task
        with pytest.raises(durable.WorkflowDefinitionError, match="belongs to workflow"):
            await runtime.start(other, id="only-one")
        async with Runtime(journal_dir, stop_grace=0, event_poll_interval=0.02) as second:
            followed = await second.start(flow, id="only-one")
            with pytest.raises(durable.WorkflowDefinitionError, match="belongs to workflow"):
                await second.start(other, id="only-one")
            assert await second.recover() == []  # (held: recover does not follow)
            gate.set()
            assert await asyncio.wait_for(followed.result(), 5) == "opened"
        assert await handle.result() == await again.result() == "opened"
    assert ran == ["wait"]


async def test_a_handle_by_id_follows_a_run_it_did_not_start(journal_dir: Path) -> None:
    gate = asyncio.Event()

    @durable.activity
    async def wait() -> str:
        await gate.wait()
        return "opened"

    @durable.workflow
    async def flow() -> str:
        return await wait()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.WorkflowNotFound):
            await runtime.handle("nobody")
        started = await runtime.start(flow, id="by-id")
        async with Runtime(journal_dir, event_poll_interval=0.02) as reader:  # (knows no code)
            handle = await reader.handle("by-id")
            assert (await handle.describe()).state is durable.WorkflowState.RUNNING
            gate.set()
            assert await asyncio.wait_for(handle.result(), 5) == "opened"
            assert await started.result() == "opened"
            with pytest.raises(durable.WorkflowFinished):
                await handle.send_event("late", 1)


async def test_bad_input_gets_clear_errors(journal_dir: Path) -> None:
    async def plain() -> None:
        pass

    @durable.workflow
    async def takes(value: object) -> None:
        pass

    with pytest.raises(durable.WorkflowDefinitionError, match="async def"):
        durable.workflow(lambda: None)  # type: ignore[arg-type,return-value]
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.WorkflowDefinitionError, match=r"@durable\.workflow"):
            await runtime.run(plain)
        with pytest.raises(durable.InvalidWorkflowId, match="path separator"):
            await runtime.run(takes, 1, id="../etc/passwd")
        with pytest.raises(durable.SerializationError, match="object"):
            await runtime.run(takes, object(), id="unencodable")
    assert not (journal_dir / "unencodable.journal").exists()


async def test_activities_called_outside_a_workflow_just_run(calls: Calls) -> None:
    order = order_flow(calls)
    assert await order("5") == "track-5-pay-5x3"
    assert calls == {"charge": 1, "reserve": 1, "ship": 1}
    with pytest.raises(durable.OutsideWorkflowError):
        durable.workflow_info()


async def test_a_thousand_concurrent_workflows_finish(journal_dir: Path, calls: Calls) -> None:
    @durable.activity
    async def double(value: int) -> int:
        calls["double"] += 1
        return value * 2

    @durable.workflow
    async def compute(value: int) -> int:
        first = await double(value)
        await asyncio.sleep(0.01)
        return await double(first)

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        handles = [await runtime.start(compute, index, id=f"c-{index}") for index in range(1000)]
        results = await asyncio.gather(*(handle.result() for handle in handles))
    assert results == [index * 4 for index in range(1000)]
    assert calls["double"] == 2000


async def test_io_in_workflow_code_is_refused_and_not_recorded(journal_dir: Path) -> None:
    @durable.workflow
    async def does_io() -> None:
        await asyncio.to_thread(print, "from a thread")

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.WorkflowDefinitionError, match="activity"):
            await runtime.run(does_io, id="io")
        with pytest.raises(durable.WorkflowDefinitionError):  # not a recorded outcome
            await runtime.run(does_io, id="io")


async def test_a_journal_from_a_newer_engine_is_refused_untouched(journal_dir: Path) -> None:
    from durable._encoding import encode  # noqa: PLC0415 (a test of the file format)
    from tests.conftest import journal_bytes  # noqa: PLC0415

    @durable.workflow(name="future")
    async def future() -> None:
        pass

    journal_dir.mkdir(mode=0o700)
    path = journal_dir / "future.journal"
    path.write_bytes(
        journal_bytes(encode({"k": "start", "v": 99, "wf": "future", "args": [], "t": 0.0}))
    )
    before = path.read_bytes()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        with pytest.raises(durable.UnsupportedJournalFormat, match="version 99"):
            await runtime.run(future, id="future")
    assert path.read_bytes() == before


async def test_a_restart_during_back_off_keeps_the_attempt_count_and_the_wait(
    journal_dir: Path, calls: Calls
) -> None:
    attempts: list[tuple[int, float]] = []

    @durable.activity(retry=RetryPolicy(initial_interval=0.4, maximum_attempts=3))
    async def flaky() -> str:
        attempt = durable.activity_info().attempt
        attempts.append((attempt, time.monotonic()))
        if attempt == 1:
            raise ConnectionError("down")
        return f"ok on attempt {attempt}"

    @durable.workflow
    async def flow() -> str:
        return await flaky()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(flow, id="backoff")
        while not attempts:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # in the 0.4 s back-off: stop the runtime
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(flow, id="backoff") == "ok on attempt 2"
    assert [attempt for attempt, _ in attempts] == [1, 2]
    waited = attempts[1][1] - attempts[0][1]
    assert 0.35 < waited < 0.7, f"the restart kept the original back-off ({waited:.2f} s)"


async def test_thousands_of_sleeping_workflows_use_no_thread(journal_dir: Path) -> None:
    import threading  # noqa: PLC0415

    @durable.workflow
    async def sleeper(index: int) -> int:
        await durable.sleep("1 hour")
        return index

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        threads_before = threading.active_count()
        for index in range(1000):
            await runtime.start(sleeper, index, id=f"sleeper-{index}")
        await asyncio.sleep(0.2)
        # The shared sync thread, and the runtime's one stall watchdog (warn_blocked_after).
        assert threading.active_count() <= threads_before + 3
    async with Runtime(journal_dir, workflows=[sleeper]) as runtime:
        handles = await runtime.recover()
        assert len(handles) == 1000, "each sleep was journaled before the runtime closed"


async def test_dataclass_results_are_rebuilt_on_replay(journal_dir: Path, calls: Calls) -> None:
    gate = asyncio.Event()

    @durable.activity
    async def quote() -> Quote:
        calls["quote"] += 1
        return Quote(Decimal("12.50"), "EUR")

    @durable.activity
    async def wait() -> None:
        await gate.wait()

    @durable.workflow
    async def flow() -> str:
        first = await quote()
        await wait()
        return f"{type(first).__name__} {first.amount + 1} {first.currency}"

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(flow, id="quote")
        while calls["quote"] == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    gate.set()
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        assert await runtime.run(flow, id="quote") == "Quote 13.50 EUR"
    assert calls["quote"] == 1


async def test_a_long_sleeper_is_unloaded_until_its_timer_is_due(
    journal_dir: Path, calls: Calls
) -> None:
    @durable.activity
    async def charge() -> str:
        calls["charge"] += 1
        return "paid"

    @durable.workflow
    async def slow_flow() -> str:
        paid = await charge()
        began = durable.now()
        await durable.sleep(0.5)
        return f"{paid} after {(durable.now() - began).total_seconds():.1f}s"

    async with Runtime(journal_dir, suspend_after=0.2) as runtime:
        handle = await runtime.start(slow_flow, id="slow")
        await asyncio.sleep(0.2)
        store = runtime._store
        assert isinstance(store, durable.JournalDirectory)
        open_journals = [j for j in store._opened if not j.closed]
        assert [j.records for j in open_journals] == [[]], "only its journal's lock is kept"
        assert "slow" not in runtime._runs
        assert not handle.done()
        async with Runtime(journal_dir) as other:  # still its runtime's workflow
            other._register(slow_flow)
            assert await other.recover() == [], "its lock is held while it sleeps"
        assert (await runtime.start(slow_flow, id="slow"))._task is handle._task
        assert await handle.result() == "paid after 0.5s"
    assert calls["charge"] == 1, "resuming replayed the charge, never re-ran it"


async def test_a_workflow_stopped_by_close_says_so_and_resumes_later(journal_dir: Path) -> None:
    gate = asyncio.Event()

    @durable.activity
    async def wait() -> str:
        await gate.wait()
        return "done"

    @durable.workflow
    async def flow() -> str:
        return await wait()

    runtime = Runtime(journal_dir, stop_grace=0)
    handle = await runtime.start(flow, id="stopped")
    waiter = asyncio.ensure_future(handle.result())
    await asyncio.sleep(0.05)
    await runtime.close()
    with pytest.raises(durable.WorkflowStopped, match="stopped"):
        await waiter
    gate.set()
    async with Runtime(journal_dir, stop_grace=0) as again:
        assert await again.run(flow, id="stopped") == "done"


async def test_concurrent_starts_of_one_id_in_one_process_give_one_run(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id's task is registered before the first await: with a slow first open, a
    start at the same moment joins it (the activity runs once, one result)."""
    ran: list[int] = []

    @durable.activity
    async def effect(n: int) -> int:
        ran.append(n)
        return n

    @durable.workflow
    async def flow(n: int) -> int:
        return await effect(n)

    async with Runtime(journal_dir) as runtime:
        store = runtime._store
        assert isinstance(store, durable.JournalDirectory)
        await (await store.open("warm-up")).close()  # (the directory exists now)
        real = store.open

        async def slow_open(name: str) -> Any:
            await asyncio.sleep(0.3)
            return await real(name)

        monkeypatch.setattr(store, "open", slow_open)
        first, second = await asyncio.gather(
            runtime.start(flow, 1, id="same"), runtime.start(flow, 1, id="same")
        )
        assert first._task is second._task
        assert await first.result() == await second.result() == 1
    assert ran == [1]


@durable.workflow(name="echo-after-event")
async def echo_after_event(n: int) -> int:
    await durable.wait_for_event("go")
    return n


@durable.workflow(name="other-echo")
async def other_echo(n: int) -> int:
    return n


async def test_a_start_cancelled_before_it_began_does_not_stop_those_who_joined(
    journal_dir: Path,
) -> None:
    """The shared task a cancelled start() stopped is taken up again by the handles that
    joined it (they got WorkflowStopped, as if the runtime had closed)."""
    async with Runtime(journal_dir) as runtime:
        first = asyncio.ensure_future(runtime.start(echo_after_event, 1, id="x"))
        second = asyncio.ensure_future(runtime.start(echo_after_event, 1, id="x"))
        await asyncio.sleep(0)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        joined = await second
        again = await runtime.start(echo_after_event, 1, id="x")
        await runtime.send_event("x", "go")
        assert await asyncio.wait_for(joined.result(), 5) == 1
        assert await asyncio.wait_for(again.result(), 5) == 1


async def test_a_cancelled_run_stops_only_its_own_wait_for_a_joined_handle(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        running = asyncio.ensure_future(runtime.run(echo_after_event, 2, id="y"))
        await wait_until(lambda: _has_waiter(runtime, "y"))
        joined = await runtime.handle("y")
        running.cancel()  # (stops the run it started: it resumes later)
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await runtime.send_event("y", "go")
        assert await asyncio.wait_for(joined.result(), 5) == 2, "the handle took it up again"


async def _has_waiter(runtime: Runtime, workflow_id: str) -> bool:
    try:
        return (await runtime.describe(workflow_id)).waiting_for is not None
    except durable.WorkflowNotFound:
        return False


async def test_concurrent_starts_with_other_arguments_or_workflows_are_refused(
    journal_dir: Path,
) -> None:
    """Before the first start has written its journal, a second start of the id is checked
    against what the first asked for."""
    async with Runtime(journal_dir) as runtime:
        outcomes = await asyncio.gather(
            runtime.start(echo_after_event, 1, id="z"),
            runtime.start(echo_after_event, 2, id="z"),
            runtime.start(other_echo, 1, id="z"),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], WorkflowHandle)
        assert isinstance(outcomes[1], durable.WorkflowIdInUse)
        assert isinstance(outcomes[2], durable.WorkflowDefinitionError)


async def test_a_closed_runtime_follows_nothing(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.start(echo_after_event, 3, id="w")
        handle = await runtime.handle("w")
    with pytest.raises(durable.WorkflowStopped):
        await handle.result()
    with pytest.raises(durable.WorkflowStopped):
        await runtime.start(echo_after_event, 3, id="w")


@durable.activity(name="bulky")
async def bulky(size: int) -> bytes:
    return b"x" * size


@durable.workflow(name="bulky_flow")
async def bulky_flow(size: int) -> int:
    return len(await bulky(size))


async def test_recover_holds_one_batch_of_journals_not_the_whole_directory(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recover() reads every journal, finished ones too (RECOVER_BATCH per thread hop): it
    must let go of each batch's records before it reads the next, or a directory of many
    finished workflows is read whole into memory."""
    size, count = 256 * 1024, 48
    async with Runtime(journal_dir) as runtime:
        for index in range(count):
            assert await runtime.run(bulky_flow, size, id=f"bulky-{index}") == size
    monkeypatch.setattr(_recovery, "RECOVER_BATCH", 2)
    async with Runtime(journal_dir) as runtime:
        tracemalloc.start()
        try:
            assert await runtime.recover() == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < count * size / 4, f"recover() held {peak} bytes at once"
