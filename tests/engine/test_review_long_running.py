"""Review of the long-running-flow features: regressions for bugs found in review."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import Runtime, WorkflowState
from durable._storage import _directory
from durable._storage._directory import JournalDirectory
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@durable.activity(name="review-record")
async def record(text: str) -> str:
    RAN.append(text)
    return text


# -- recover() and a continue-as-new cut before the rotation --------------------------------


@durable.workflow(name="review-generations")
async def generations(period: int) -> int:
    await record(f"period {period}")
    if period < 1:
        durable.continue_as_new(period + 1)
    return period


async def test_recover_resumes_a_workflow_whose_rotation_was_cut_short(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(self: JournalDirectory, journal: Any, first_payload: bytes) -> Any:
        raise OSError("killed before the rename")  # end{cont} is durable; no next generation

    with monkeypatch.context() as patch:
        patch.setattr(JournalDirectory, "rotate", crash)
        async with Runtime(journal_dir) as runtime:
            with pytest.raises(OSError, match="killed"):
                await runtime.run(generations, 0, id="gen")
    assert RAN == ["period 0"]
    async with Runtime(journal_dir, workflows=[generations]) as runtime:
        described = await runtime.describe("gen")
        assert described.state == WorkflowState.RUNNING, "not finished: the next one is due"
        handles = await runtime.recover()
        assert [handle.id for handle in handles] == ["gen"], "recover() must finish the rotation"
        assert await handles[0].result() == 1
    assert RAN == ["period 0", "period 1"]


# -- a message sent while a workflow is being unloaded ---------------------------------------


@durable.workflow(name="review-waiter")
async def waiter() -> Any:
    return await durable.wait_for_event("go")


async def test_an_event_sent_while_the_waiter_unloads_wakes_it(journal_dir: Path) -> None:
    async with Runtime(journal_dir, suspend_after=0, event_poll_interval="1 h") as runtime:
        sent = False
        opened = runtime._store.open

        async def open_journal(name: str) -> Any:
            journal = await opened(name)
            suspend = journal.suspend

            async def suspend_and_receive() -> None:
                # The run is gone from runtime._runs and its journal is being suspended (an
                # await) before the sleep parks: a send landing in that window finds
                # neither the run nor a parked sleep, only the wake-up expect() set.
                nonlocal sent
                if not sent:
                    sent = True
                    await runtime.send_event(name, "go", "late")
                await suspend()

            journal.suspend = suspend_and_receive  # type: ignore[method-assign]
            return journal

        runtime._store.open = open_journal  # type: ignore[method-assign]
        handle = await runtime.start(waiter, id="w")
        async with asyncio.timeout(3):
            assert await handle.result() == "late"


async def test_an_event_sent_while_the_waiter_flushes_to_unload_wakes_it(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir, suspend_after=0, event_poll_interval="1 h") as runtime:
        sent = False
        opened = runtime._store.open

        async def open_journal(name: str) -> Any:
            journal = await opened(name)
            flush = journal.flush

            async def flush_and_receive() -> None:
                # execute() flushes before it returns Suspended; a send landing in
                # that await starts a pull that the teardown then cancels.
                nonlocal sent
                if not sent and runtime._runs.get(name) is not None:
                    sent = True
                    await runtime.send_event(name, "go", "during flush")
                await flush()

            journal.flush = flush_and_receive  # type: ignore[method-assign]
            return journal

        runtime._store.open = open_journal  # type: ignore[method-assign]
        handle = await runtime.start(waiter, id="f")
        async with asyncio.timeout(3):
            assert await handle.result() == "during flush"


# -- a second cancellation while the first one's compensations run ---------------------------


class Compensating:
    event: asyncio.Event | None = None  # (one per test: an Event binds to its event loop)


@durable.activity(name="review-undo")
async def undo(text: str) -> str:
    if Compensating.event is not None:
        Compensating.event.set()
    await asyncio.sleep(0.2)
    RAN.append(f"undo {text}")
    return text


@durable.workflow(name="review-saga")
async def saga_flow() -> None:
    async with durable.Saga() as saga:
        saga.add(undo, "first")
        saga.add(undo, "second")
        await durable.wait_for_event("never")


async def test_a_repeated_cancel_does_not_interrupt_the_compensations(journal_dir: Path) -> None:
    compensating = Compensating.event = asyncio.Event()
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(saga_flow, id="saga")

        async def waiting() -> bool:
            return (await runtime.describe("saga")).state == WorkflowState.WAITING

        await wait_until(waiting)
        await runtime.cancel("saga", "customer asked")
        await asyncio.wait_for(compensating.wait(), 5)
        await runtime.cancel("saga", "customer asked again")  # e.g. a retried request
        with pytest.raises(durable.WorkflowCancelled):
            await handle.result()
    assert RAN == ["undo second", "undo first"], "every compensation ran, each once"


# -- describe() after a wait that timed out --------------------------------------------------


@durable.workflow(name="review-timeout-then-sleep")
async def timeout_then_sleep() -> None:
    with contextlib.suppress(durable.EventTimeout):
        await durable.wait_for_event("go", timeout=0.01)
    await durable.sleep("1 h")


async def test_describe_forgets_a_wait_that_timed_out(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.start(timeout_then_sleep, id="nap")

        async def sleeping_an_hour() -> bool:
            return len([r for r in await runtime._mail._read("nap") if r["k"] == "timer"]) == 2

        await wait_until(sleeping_an_hour)
        described = await runtime.describe("nap")
        assert (described.state, described.waiting_for) == (WorkflowState.SLEEPING, None)


@durable.workflow(name="review-answered-then-sleep")
async def answered_then_sleep() -> None:
    await durable.wait_for_event("go", timeout="10 min")  # answered at once: timer cancelled
    await durable.sleep("1 h")


async def test_describe_forgets_the_timer_of_an_answered_wait(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.start(answered_then_sleep, id="answered")
        await wait_until(lambda: _has_wait(runtime, "answered"))
        await runtime.send_event("answered", "go")

        async def sleeping_an_hour() -> bool:
            records = await runtime._mail._read("answered")
            timers = [r for r in records if r["k"] == "timer" and not r.get("x")]
            return len(timers) == 2

        await wait_until(sleeping_an_hour)
        described = await runtime.describe("answered")
        assert described.wake_at is not None
        assert described.wake_at.timestamp() - described.updated.timestamp() > 50 * 60


# -- a runtime closed while a rotation (continue-as-new) is in its worker thread ----------------


async def test_closing_during_a_rotation_leaves_the_workflow_resumable(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotating = asyncio.Event()
    real_sync = _directory.sync_file  # type: ignore[attr-defined]

    def slow_sync(fd: int) -> None:
        loop.call_soon_threadsafe(rotating.set)
        time.sleep(0.3)  # the new generation is written; close() comes now
        real_sync(fd)

    loop = asyncio.get_running_loop()
    with monkeypatch.context() as patch:
        patch.setattr(_directory, "sync_file", slow_sync)
        async with Runtime(journal_dir) as runtime:
            await runtime.start(generations, 0, id="rot")
            await asyncio.wait_for(rotating.wait(), 5)
    RAN.clear()
    async with Runtime(journal_dir) as runtime:  # the same process, a new runtime
        assert await runtime.run(generations, 0, id="rot") == 1
    assert RAN == ["period 1"]


# -- a start cancelled while its journal opens in a worker thread -------------------------------


async def test_a_start_cancelled_while_opening_does_not_keep_the_journal_locked(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(waiter, id="busy")  # an unfinished journal: reopened in a thread
        await wait_until(lambda: _has_wait(runtime, "busy"))
    async with Runtime(journal_dir) as runtime:
        store = runtime._store
        assert isinstance(store, durable.JournalDirectory)
        real = store._open_blocking

        def slow_open(path: Path) -> Any:
            time.sleep(0.2)
            return real(path)

        with monkeypatch.context() as patch:
            patch.setattr(store, "_open_blocking", slow_open)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):  # e.g. a request handler's deadline
                    await runtime.start(waiter, id="busy")
        await asyncio.sleep(0.3)
        handle = await runtime.start(waiter, id="busy")  # WorkflowAlreadyRunning: leaked lock
        await runtime.send_event("busy", "go", 1)
        assert await handle.result() == 1


async def _has_wait(runtime: Runtime, workflow_id: str) -> bool:
    return (await runtime.describe(workflow_id)).waiting_for is not None


# -- run_child with the parent's own id ----------------------------------------------------------


@durable.workflow(name="review-self-parent")
async def self_parent() -> str:
    return await durable.run_child(self_parent, id=durable.workflow_info().workflow_id)


async def test_a_child_with_its_parents_id_is_refused_not_a_deadlock(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        async with asyncio.timeout(3):
            with pytest.raises(durable.DurableError):
                await runtime.run(self_parent, id="me")


# -- a cancellation that arrives while a failure's compensations run ------------------------------


@durable.activity(name="review-fail", retry=durable.RetryPolicy(maximum_attempts=1))
async def fail_step() -> None:
    raise RuntimeError("carrier down")


@durable.workflow(name="review-saga-failing")
async def saga_failing() -> None:
    async with durable.Saga() as saga:
        saga.add(undo, "first")
        saga.add(undo, "second")
        await fail_step()


async def test_a_cancel_during_compensation_does_not_skip_the_other_compensations(
    journal_dir: Path,
) -> None:
    compensating = Compensating.event = asyncio.Event()
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(saga_failing, id="saga-fail")
        await asyncio.wait_for(compensating.wait(), 5)
        await runtime.cancel("saga-fail", "parent gave up")
        with pytest.raises((durable.WorkflowFailed, durable.WorkflowCancelled)):
            await handle.result()
    assert RAN == ["undo second", "undo first"], "every compensation ran, each once"


# -- close(): no new activity starts during stop_grace, also in a sleeper that wakes then ---------


@durable.activity(name="review-long-step")
async def long_step() -> str:
    RAN.append("long step")
    await asyncio.sleep(0.5)
    return "done"


@durable.workflow(name="review-in-flight")
async def in_flight() -> str:
    return await long_step()


@durable.workflow(name="review-napper")
async def napper() -> str:
    await durable.sleep(0.2)  # unloaded (suspend_after=0), wakes during close()'s grace
    return await record("after the nap")


async def test_a_sleeper_waking_during_close_starts_no_activity(journal_dir: Path) -> None:
    async with Runtime(journal_dir, suspend_after=0, stop_grace="2 s") as runtime:
        await runtime.start(napper, id="napper")

        async def unloaded() -> bool:
            return "napper" in runtime._mail.sleeping

        await wait_until(unloaded)
        await runtime.start(in_flight, id="busy")
        await wait_until(_ran("long step"))
        assert "napper" not in runtime._runs, "unloaded while it sleeps"
    assert RAN == ["long step"], "close() started no new activity"


def _ran(text: str) -> Any:
    async def check() -> bool:
        return text in RAN

    return check


# -- continue_as_new with arguments the next generation cannot take ------------------------------


@durable.workflow(name="review-bad-arity")
async def bad_arity(period: int) -> int:
    await record(f"period {period}")
    if period == 0:
        durable.continue_as_new(1, 2, 3)  # (untyped: *Any; refused at the call)
    return period


@durable.workflow(name="review-unencodable")
async def unencodable(period: int) -> int:
    if period == 0:
        durable.continue_as_new(object())
    return period


async def test_continue_as_new_refuses_arguments_before_the_generation_ends(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowDefinitionError, match="continue_as_new"):
            await runtime.run(bad_arity, 0, id="arity")
        assert (await runtime.describe("arity")).generation == 0, "not rotated: fix the code"
        with pytest.raises(durable.WorkflowFailed, match="continue_as_new"):
            await runtime.run(unencodable, 0, id="unencodable")  # final, like a bad result
        assert (await runtime.describe("unencodable")).state == WorkflowState.FAILED


async def test_recover_skips_a_journal_it_cannot_read_and_resumes_the_others(
    journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One damaged journal (a flipped byte a sync had covered) must not keep every other
    # workflow of the directory from resuming: it is skipped, and the log says why.
    @durable.workflow(name="waiter")
    async def waiter() -> str:
        return str(await durable.wait_for_event("go"))

    async with Runtime(journal_dir) as runtime:
        for name in ("a-damaged", "b-fine"):
            await runtime.start(waiter, id=name)
            await runtime.describe(name)
    path = journal_dir / "a-damaged.journal"
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01
    path.write_bytes(data)
    async with Runtime(journal_dir, workflows=[waiter]) as runtime:
        with caplog.at_level(logging.ERROR, logger="durable"):
            handles = await runtime.recover()
        assert [handle.id for handle in handles] == ["b-fine"]
        assert "a-damaged skipped" in caplog.text
        assert "corrupted at byte" in caplog.text
        await runtime.send_event("b-fine", "go", "yes")
        assert await handles[0].result() == "yes"
    assert path.read_bytes() == bytes(data)
