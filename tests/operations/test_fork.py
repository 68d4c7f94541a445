"""Runtime.restart and Runtime.fork: new runs from an ended one, linked both ways; the
override of one step's result; what they refuse; and that a retry never makes a second."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable._catalog import Catalog
from durable._engine import _records as records
from durable._reading import read_workflow

from . import app

pytestmark = pytest.mark.anyio

DONE = ["reserved o", "pay-o", "shipped o after pay-o"]


@pytest.fixture(autouse=True)
def _fresh() -> None:
    app.BROKEN.clear()
    app.CALLS.clear()


async def failed_order(runtime: Runtime, workflow_id: str = "o1") -> None:
    app.BROKEN.add("charge")
    with pytest.raises(durable.WorkflowFailed):
        await runtime.run(app.order, "o", id=workflow_id)
    app.BROKEN.clear()
    app.CALLS.clear()


async def test_restart_runs_the_same_arguments_as_a_new_linked_run(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        handle = await runtime.restart("o1", by="bob", reason="retry all")
        assert handle.id == "o1-restart"
        assert await handle.result() == DONE
        assert app.CALLS == ["reserve", "charge", "ship"]  # (all of it again)
        again = await runtime.restart("o1")  # a retry: the same run, not a second
        assert again.id == "o1-restart"
        assert await again.result() == DONE
        assert app.CALLS == ["reserve", "charge", "ship"]
        source = await read_workflow(runtime._store, "o1")
        links = [record for record in source if record["k"] == records.LINK]
        assert [(link["how"], link["id"], link["by"]) for link in links] == [
            ("restart", "o1-restart", "bob")
        ]
        made = (await read_workflow(runtime._store, "o1-restart"))[0]["from"]
        assert (made["id"], made["how"], made["m"]) == ("o1", "restart", "retry all")
        # The source is still what it was: failed, and it says so to senders.
        assert (await runtime.describe("o1")).state is durable.WorkflowState.FAILED
        with pytest.raises(durable.WorkflowFinished):
            await runtime.send_event("o1", "x")
    async with Catalog(tmp_path) as catalog:
        source_history = await catalog.history("o1")
        fork_history = await catalog.history("o1-restart")
    assert [(link.kind, link.workflow_id) for link in source_history.links] == [
        ("restarted as", "o1-restart")
    ]
    assert [(link.kind, link.workflow_id) for link in fork_history.links] == [
        ("restarted from", "o1")
    ]


async def test_a_fork_from_the_failure_keeps_the_results_before_it(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        handle = await runtime.fork("o1", from_failure=True)
        assert handle.id == "o1-fork-failure"
        assert await handle.result() == DONE
        assert app.CALLS == ["charge", "ship"]  # reserve's recorded result was copied
        # A fork at step 0 runs everything; at step 2 (past charge's failure), nothing new
        # until ship... which needs charge's result: the failure replays.
        zero = await runtime.fork("o1", at_step=0)
        assert await zero.result() == DONE
        with pytest.raises(durable.WorkflowFailed):
            await (await runtime.fork("o1", at_step=2)).result()


async def test_override_one_steps_result(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        receipt = {"amount": 7, "reference": "what-if"}
        handle = await runtime.fork("o1", from_failure=True, override={1: receipt})
        assert handle.id == "o1-fork-failure-override-1"
        assert await handle.result() == ["reserved o", "what-if", "shipped o after what-if"]
        assert app.CALLS == ["ship"]  # charge did not run: its result was the override
        history = (await runtime.describe(handle.id)).state
        assert history is durable.WorkflowState.COMPLETED


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({1: object()}, "does not encode"),
        ({1: "a string"}, "returns Receipt"),
        ({1: {"amount": "x"}}, "returns Receipt"),
        ({5: 1}, "no outcome of an activity"),
        ({1: 1, 0: 2}, "one step, not 2"),
    ],
)
async def test_a_bad_override_is_refused_before_anything_is_written(
    tmp_path: Path, override: dict[int, object], problem: str
) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        with pytest.raises(durable.InvalidOverride, match=problem) as refused:
            await runtime.fork("o1", from_failure=True, override=override, new_id="f")
        assert refused.value.workflow_id == "o1"
        with pytest.raises(durable.WorkflowNotFound):
            await runtime.describe("f")
        assert not [r for r in await read_workflow(runtime._store, "o1") if r["k"] == "link"]


async def test_fork_refusals(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order, app.waits]) as runtime:
        await runtime.run(app.order, "o", id="done")
        with pytest.raises(durable.InvalidForkStep, match="at step 4: its journal records 3"):
            await runtime.fork("done", at_step=4)
        with pytest.raises(durable.ActionRefused, match="it is completed"):
            await runtime.fork("done", from_failure=True)
        with pytest.raises(durable.ActionRefused, match="new_id is its id"):
            await runtime.fork("done", at_step=1, new_id="done")
        with pytest.raises(TypeError, match="at_step=N or from_failure=True"):
            await runtime.fork("done")
        with pytest.raises(TypeError, match="at_step must be an int"):
            await runtime.fork("done", at_step=True)
        await runtime.run(app.order, "p", id="other")
        with pytest.raises(durable.ActionRefused, match="made another way"):
            await runtime.fork("done", at_step=1, new_id="other")
        first = await runtime.fork("done", at_step=1, new_id="f")
        await first.result()
        with pytest.raises(durable.ActionRefused, match="made another way"):
            await runtime.fork("done", at_step=2, new_id="f")  # same id, another step
        async with Runtime(tmp_path) as no_code:
            with pytest.raises(durable.InvalidOverride, match="does not have workflow"):
                await no_code.fork("done", at_step=2, override={1: {}})


@durable.workflow(name="order")
async def order_v2(name: str) -> list[str]:
    """A changed order: it ships before it charges (not the recorded order of steps)."""
    reserved = await app.reserve(name)
    shipped = await app.ship(name, app.Receipt(0, "later"))
    receipt = await app.charge(name)
    return [reserved, receipt.reference, shipped]


async def test_a_fork_onto_code_that_would_not_replay_is_refused(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await runtime.run(app.order, "o", id="done")
    async with Runtime(tmp_path, workflows=[order_v2]) as deployed:
        with pytest.raises(durable.NonDeterminismError) as refused:
            await deployed.fork("done", at_step=3, new_id="f")
        assert refused.value.position == 1
        assert "test_fork.py" in refused.value.call_site
        assert "Refused before anything was written" in "".join(refused.value.__notes__)
        with pytest.raises(durable.WorkflowNotFound):
            await deployed.describe("f")
        fine = await deployed.fork("done", at_step=1, new_id="g")  # (only reserve copied)
        assert (await fine.result())[1] == "pay-o"


async def test_a_half_written_fork_is_refused_until_the_fork_is_run_again(
    tmp_path: Path,
) -> None:
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        await failed_order(runtime)
        handle = await runtime.fork(
            "o1", at_step=2, new_id="f", override={1: {"amount": 1, "reference": "r"}}
        )
        await handle.result()
    # Make the fork's journal as a crash half-way through its copy would leave it.
    async with Runtime(tmp_path) as store_only:
        stored = await store_only._store.read("f")
    path = tmp_path / "f.journal"
    path.unlink()
    async with Runtime(tmp_path) as writer:
        journal = await writer._store.open("f")
        journal.write(stored[0].payload)
        journal.write(stored[1].payload)  # (of 3 copied records, 1)
        await journal.close()
    async with Runtime(tmp_path, workflows=[app.order]) as runner:
        with pytest.raises(durable.ForkIncomplete, match="1 of 3 records"):
            await runner.run(app.order, "o", id="f", attach=True)
        again = await runner.fork(
            "o1", at_step=2, new_id="f", override={1: {"amount": 1, "reference": "r"}}
        )
        assert (await again.result())[1] == "r"


async def test_a_fork_replays_the_events_it_copies_and_takes_its_own(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.waits]) as runtime:
        handle = await runtime.start(app.waits, "w", id="w1")
        await runtime.send_event("w1", "noise", 0)  # (an inbox position before "approved")
        await runtime.send_event("w1", "approved", "first")
        assert await handle.result() == "shipped w after first"
        # Live from step 2 (ship): the recorded event is replayed, not waited for.
        after = await runtime.fork("w1", at_step=2)
        assert await after.result() == "shipped w after first"
        # Live from step 1 (the wait): it waits for an event sent to the fork itself, which
        # takes position 0 of the fork's own inbox (the copied events took none of it).
        before = await runtime.fork("w1", at_step=1)
        while (await runtime.describe(before.id)).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        await runtime.send_event(before.id, "approved", "second")
        assert await before.result() == "shipped w after second"
        copied = await read_workflow(runtime._store, after.id)
        assert [r["q"] for r in copied if r["k"] == records.EVENT and r.get("f")] == [0, 1]
