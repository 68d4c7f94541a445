"""Events (wait_for_event / send_event), cancellation, describe and a graceful close."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import Runtime, WorkflowState
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio


@durable.activity(name="note")
async def note(text: str) -> str:
    NOTES.append(text)
    return text


NOTES: list[str] = []


@pytest.fixture(autouse=True)
def _clear_notes() -> None:
    NOTES.clear()


@durable.workflow(name="confirmations")
async def confirmations(count: int) -> list[Any]:
    await note("before")
    durable.set_status("waiting")
    received = [await durable.wait_for_event("confirmed") for _ in range(count)]
    durable.set_status("done")
    return received


@durable.workflow(name="with-timeout")
async def with_timeout(seconds: float) -> str:
    try:
        value = await durable.wait_for_event("go", timeout=seconds)
    except TimeoutError:  # EventTimeout is a TimeoutError
        return "timed out"
    return f"got {value}"


async def test_events_are_delivered_in_order_also_when_sent_before_the_wait(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(confirmations, 3, id="c")

        async def waiting() -> bool:
            return (await runtime.describe("c")).state == WorkflowState.WAITING

        await wait_until(waiting)
        described = await runtime.describe("c")
        assert described.status == "waiting"
        assert described.waiting_for == "confirmed"
        for value in ({"box": 1}, [2], "three"):
            assert await runtime.send_event("c", "confirmed", value)
        assert await handle.result() == [{"box": 1}, [2], "three"]
        assert (await runtime.describe("c")).state == WorkflowState.COMPLETED
    async with Runtime(journal_dir) as runtime:  # replay: same events, nothing re-run
        assert await runtime.run(confirmations, 3, id="c") == [{"box": 1}, [2], "three"]
    assert NOTES == ["before"]


async def test_an_event_id_is_delivered_once(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(confirmations, 2, id="dedup")
        assert await runtime.send_event("dedup", "confirmed", 1, event_id="e-1") is True
        assert await runtime.send_event("dedup", "confirmed", 1, event_id="e-1") is False
        assert await runtime.send_event("dedup", "confirmed", 2, event_id="e-2") is True
        assert await handle.result() == [1, 2]


async def test_events_sent_while_nothing_runs_it_are_taken_on_resume(journal_dir: Path) -> None:
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(confirmations, 2, id="offline")
        await wait_until(lambda: _has_waited(runtime, "offline"))
    async with Runtime(journal_dir) as runtime:  # not running it: the events wait on disk
        await runtime.send_event("offline", "confirmed", "a")
        await runtime.send_event("offline", "confirmed", "b")
        assert (await runtime.describe("offline")).unread_events == 2
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(confirmations, 2, id="offline") == ["a", "b"]
        assert (await runtime.describe("offline")).unread_events == 0


async def _has_waited(runtime: Runtime, workflow_id: str) -> bool:
    return (await runtime.describe(workflow_id)).waiting_for is not None


SENDER = textwrap.dedent(
    """
    import asyncio, sys
    import durable

    async def main():
        async with durable.Runtime(sys.argv[1]) as runtime:
            print(await runtime.send_event(sys.argv[2], "confirmed", sys.argv[3]))

    asyncio.run(main())
    """
)


async def test_an_event_from_another_process_reaches_a_running_workflow(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir, event_poll_interval="50 ms") as runtime:
        handle = await runtime.start(confirmations, 1, id="remote")
        await wait_until(lambda: _has_waited(runtime, "remote"))
        sent = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", SENDER, str(journal_dir), "remote", "from afar"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert sent.stdout.strip() == "True"
        async with asyncio.timeout(5):
            assert await handle.result() == ["from afar"]


async def test_an_unloaded_waiter_wakes_for_its_event(journal_dir: Path) -> None:
    async with Runtime(journal_dir, suspend_after="10 ms") as runtime:
        handle = await runtime.start(confirmations, 1, id="sleepy")
        await wait_until(lambda: _has_waited(runtime, "sleepy"))
        await asyncio.sleep(0.05)
        assert "sleepy" not in runtime._runs, "waiting with nothing else to do: unloaded"
        await runtime.send_event("sleepy", "confirmed", "wake up")
        async with asyncio.timeout(5):
            assert await handle.result() == ["wake up"]


async def test_a_wait_times_out_durably(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(with_timeout, 0.05, id="t") == "timed out"
        handle = await runtime.start(with_timeout, 30.0, id="t2")
        await wait_until(lambda: _has_waited(runtime, "t2"))
        await runtime.send_event("t2", "go", 7)
        assert await handle.result() == "got 7"


async def test_bad_sends_are_refused_and_write_nothing(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowNotFound, match="no workflow 'ghost'"):
            await runtime.send_event("ghost", "x")
        with pytest.raises(durable.WorkflowNotFound):
            await runtime.cancel("ghost")
        with pytest.raises(durable.InvalidWorkflowId):
            await runtime.send_event("../escape", "x")
        handle = await runtime.start(confirmations, 1, id="strict")
        with pytest.raises(durable.SerializationError, match="payload of event"):
            await runtime.send_event("strict", "confirmed", object())
        assert not (journal_dir / "strict.inbox").exists(), "nothing was written"
        await runtime.send_event("strict", "confirmed", "ok")
        await handle.result()
        with pytest.raises(durable.WorkflowFinished, match="already completed"):
            await runtime.send_event("strict", "confirmed", "late")
        with pytest.raises(durable.WorkflowFinished):
            await runtime.cancel("strict")


# -- cancellation --------------------------------------------------------------------------


@durable.activity(name="slow-step")
async def slow_step() -> None:
    await asyncio.sleep(30)


@durable.workflow(name="cancellable")
async def cancellable() -> str:
    await note("started")
    try:
        await slow_step()
    except asyncio.CancelledError:
        await note("cleaned up")  # an activity in cleanup runs, journaled
        raise
    return "never"


async def test_cancel_raises_at_the_current_await_and_cleanup_runs(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(cancellable, id="doomed")
        await wait_until(_running_step(runtime, "doomed"))
        await runtime.cancel("doomed", "customer asked")
        with pytest.raises(durable.WorkflowCancelled, match="customer asked"):
            await handle.result()
        described = await runtime.describe("doomed")
        assert described.state == WorkflowState.CANCELLED
    assert NOTES == ["started", "cleaned up"]
    async with Runtime(journal_dir) as runtime:  # not resurrected by a restart
        with pytest.raises(durable.WorkflowCancelled):
            await runtime.run(cancellable, id="doomed")
    assert NOTES == ["started", "cleaned up"]


def _running_step(runtime: Runtime, workflow_id: str) -> Any:
    async def check() -> bool:
        return (await runtime.describe(workflow_id)).attempt is not None

    return check


async def test_a_cancel_sent_while_it_is_stopped_is_applied_on_resume(journal_dir: Path) -> None:
    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(cancellable, id="later")
        await wait_until(_running_step(runtime, "later"))
    async with Runtime(journal_dir) as runtime:
        await runtime.cancel("later")
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowCancelled):
            await runtime.run(cancellable, id="later")
    assert Counter(NOTES) == {"started": 1, "cleaned up": 1}


# -- a graceful close ------------------------------------------------------------------------


@durable.activity(name="finishing")
async def finishing() -> str:
    NOTES.append("finishing ran")
    await asyncio.sleep(0.2)
    return "finished"


@durable.workflow(name="graceful")
async def graceful() -> str:
    first = await finishing()
    await note("next step")
    return first


async def test_close_lets_activities_in_flight_finish_and_starts_no_new_one(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir, stop_grace="5 s") as runtime:
        handle = await runtime.start(graceful, id="grace")
        await asyncio.sleep(0.05)  # in the middle of finishing()
    assert handle.done()
    assert NOTES == ["finishing ran"], "its outcome was journaled; the next step never started"
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(graceful, id="grace") == "finished"
    assert NOTES == ["finishing ran", "next step"], "finishing() did not run again"
