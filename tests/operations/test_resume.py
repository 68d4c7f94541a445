"""Runtime.resume: a failed or cancelled workflow goes on from where it stopped, its journal
kept; what it refuses (running, completed), and that a retry writes nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable._engine import _records as records
from durable._reading import read_workflow

from . import app

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh() -> None:
    app.BROKEN.clear()
    app.CALLS.clear()


async def failed_order(runtime: Runtime, workflow_id: str = "o1") -> None:
    app.BROKEN.add("charge")
    with pytest.raises(durable.WorkflowFailed):
        await runtime.run(app.order, "o", id=workflow_id)
    app.BROKEN.clear()


async def test_a_failed_workflow_resumes_from_the_failed_step(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        assert app.CALLS == ["reserve", "charge", "charge"]
        handle = await runtime.resume("o1", by="alice", reason="payment API back")
        assert await handle.result() == ["reserved o", "pay-o", "shipped o after pay-o"]
        # reserve's recorded result kept; charge ran again (from its first attempt), once
        assert app.CALLS == ["reserve", "charge", "charge", "charge", "ship"]
        described = await runtime.describe("o1")
        assert described.state is durable.WorkflowState.COMPLETED
        journal = await read_workflow(runtime._store, "o1")
        resumed = [record for record in journal if record["k"] == records.RESUME]
        assert len(resumed) == 1
        assert resumed[0]["by"] == "alice"
        assert resumed[0]["m"] == "payment API back"
        assert resumed[0]["s"] == 1  # the charge step
    # A new runtime (a restarted process) replays the resumed journal to the same result.
    async with Runtime(tmp_path, workflows=[app.order]) as again:
        assert await again.run(app.order, "o", id="o1") == [
            "reserved o",
            "pay-o",
            "shipped o after pay-o",
        ]
    assert app.CALLS.count("ship") == 1


async def test_resume_refuses_completed_and_unended_workflows(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order, app.waits]) as runtime:
        await runtime.run(app.order, "o", id="done")
        with pytest.raises(durable.ActionRefused, match="it is completed") as refused:
            await runtime.resume("done")
        assert refused.value.workflow_id == "done"
        await runtime.start(app.waits, "w", id="waiting")
        while (await runtime.describe("waiting")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        with pytest.raises(durable.ActionRefused, match="running in this runtime"):
            await runtime.resume("waiting")
        with pytest.raises(durable.WorkflowNotFound):
            await runtime.resume("nobody")


async def test_a_workflow_another_process_holds_is_refused(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.waits]) as runner:
        await runner.start(app.waits, "w", id="held")
        while (await runner.describe("held")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        async with Runtime(tmp_path) as operator:  # (another runtime: as another process)
            with pytest.raises(durable.ActionRefused, match="held by a runner"):
                await operator.resume("held")
            with pytest.raises(durable.ActionRefused, match="held by a runner"):
                await operator.fork("held", at_step=0)


async def test_a_cancelled_workflow_resumes_where_the_cancellation_reached_it(
    tmp_path: Path,
) -> None:
    async with Runtime(tmp_path, workflows=[app.waits]) as runtime:
        handle = await runtime.start(app.waits, "w", id="c1")
        while (await runtime.describe("c1")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        await runtime.cancel("c1", "by mistake")
        with pytest.raises(durable.WorkflowCancelled):
            await handle.result()
        resumed = await runtime.resume("c1", reason="the cancel was a mistake")
        await runtime.send_event("c1", "approved", "yes")
        assert await resumed.result() == "shipped w after yes"
        assert app.CALLS == ["reserve", "ship"]  # (reserve's result was kept)


async def test_a_retried_resume_writes_nothing_twice(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
    async with Runtime(tmp_path) as operator:  # (no code here: it only writes the record)
        first = await operator.resume("o1")
        second = await operator.resume("o1")  # a retry: the resumption stands
        assert first.id == second.id == "o1"
        journal = await read_workflow(operator._store, "o1")
        assert [record["k"] for record in journal].count(records.RESUME) == 1
        assert (await operator.describe("o1")).state is durable.WorkflowState.RUNNING
    async with Runtime(tmp_path, workflows=[app.order]) as runner:
        handles = await runner.recover()
        assert [handle.id for handle in handles] == ["o1"]
        assert (await handles[0].result())[2] == "shipped o after pay-o"


async def test_a_resumed_run_that_fails_again_can_be_resumed_again(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        app.BROKEN.add("charge")
        with pytest.raises(durable.WorkflowFailed):
            await (await runtime.resume("o1")).result()
        app.BROKEN.clear()
        assert (await (await runtime.resume("o1")).result())[1] == "pay-o"
        history = await runtime.describe("o1")
        assert history.state is durable.WorkflowState.COMPLETED
    assert app.CALLS.count("reserve") == 1
    assert app.CALLS.count("charge") == 2 + 2 + 1


async def test_a_resume_retried_with_its_request_id_after_the_run_ended(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        first = await runtime.resume("o1", request_id="ticket-9")
        await first.result()  # (it completed: a resume without the id is now refused)
        again = await runtime.resume("o1", request_id="ticket-9")
        assert await again.result() == ["reserved o", "pay-o", "shipped o after pay-o"]
        with pytest.raises(durable.ActionRefused, match="completed"):
            await runtime.resume("o1", request_id="ticket-10")
        journal = await read_workflow(runtime._store, "o1")
        assert [r.get("id") for r in journal if r["k"] == records.RESUME] == ["ticket-9"]
    assert app.CALLS.count("ship") == 1
