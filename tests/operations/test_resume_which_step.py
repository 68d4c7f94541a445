"""Which step a resume (or a fork from the failure) runs again, read from the journal.

The step whose error the workflow's final failure carries runs again; a failure the code
caught stays recorded, and a failure the code raised by itself keeps every step. A parent
failed by its child resumes the child with it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable._engine import _records as records
from durable._reading import read_workflow

pytestmark = pytest.mark.anyio

CALLS: list[str] = []
BROKEN: set[str] = set()
ONCE = durable.RetryPolicy(maximum_attempts=1)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    CALLS.clear()
    BROKEN.clear()


@durable.activity(retry=ONCE)
async def flaky(name: str) -> str:
    CALLS.append("flaky")
    if "flaky" in BROKEN:
        raise ConnectionError("the API is down")
    return f"flaky {name}"


@durable.activity(retry=ONCE)
async def after(name: str) -> str:
    CALLS.append("after")
    return f"after {name}"


@durable.activity(retry=ONCE)
async def undo(name: str) -> str:
    CALLS.append("undo")
    return f"undone {name}"


@durable.workflow
async def catches_then_raises(name: str) -> str:
    """Catches flaky's failure, runs on, then its own code raises (until BUG is fixed)."""
    try:
        got = await flaky(name)
    except durable.ActivityError:
        got = "fallback"
    later = await after(name)
    if "code" in BROKEN:
        raise RuntimeError("a bug in the workflow's own code")
    return f"{got}, {later}"


@durable.workflow
async def compensates_then_reraises(name: str) -> str:
    """A saga step: flaky's failure is compensated, then raised again (it ends the run)."""
    try:
        got = await flaky(name)
    except durable.ActivityError:
        await undo(name)
        raise
    return got


async def test_a_failure_the_code_caught_is_kept_and_its_own_failure_set_aside(
    tmp_path: Path,
) -> None:
    BROKEN.update({"flaky", "code"})
    async with Runtime(tmp_path, workflows=[catches_then_raises]) as runtime:
        with pytest.raises(durable.WorkflowFailed, match="own code"):
            await runtime.run(catches_then_raises, "o", id="w")
        BROKEN.discard("code")  # (the workflow's bug is fixed; flaky is still down)
        handle = await runtime.resume("w")
        assert await handle.result() == "fallback, after o"
        # Neither recorded step ran again: only the workflow's final failure was set aside.
        assert CALLS == ["flaky", "after"]
        journal = await read_workflow(runtime._store, "w")
        (resumed,) = [r for r in journal if r["k"] == records.RESUME]
        assert "s" not in resumed
        assert journal[resumed["at"]]["k"] == records.END


async def test_a_fork_from_the_failure_of_the_codes_own_failure_copies_every_step(
    tmp_path: Path,
) -> None:
    BROKEN.update({"flaky", "code"})
    async with Runtime(tmp_path, workflows=[catches_then_raises]) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(catches_then_raises, "o", id="w")
        BROKEN.discard("code")
        fork = await runtime.fork("w", from_failure=True, new_id="w-fork")
        assert await fork.result() == "fallback, after o"
        assert CALLS == ["flaky", "after"]


async def test_a_failure_raised_again_after_compensating_runs_its_step_again(
    tmp_path: Path,
) -> None:
    BROKEN.add("flaky")
    async with Runtime(tmp_path, workflows=[compensates_then_reraises]) as runtime:
        with pytest.raises(durable.WorkflowFailed, match="ActivityError"):
            await runtime.run(compensates_then_reraises, "o", id="w")
        assert CALLS == ["flaky", "undo"]
        BROKEN.clear()
        handle = await runtime.resume("w")
        assert await handle.result() == "flaky o"
        assert CALLS == ["flaky", "undo", "flaky"]  # (the compensation was set aside)
        journal = await read_workflow(runtime._store, "w")
        (resumed,) = [r for r in journal if r["k"] == records.RESUME]
        assert resumed["s"] == 0


@durable.workflow
async def grandchild(name: str) -> str:
    return await flaky(name)


@durable.workflow
async def child(name: str) -> str:
    await after("child")
    return await durable.run_child(grandchild, name, id=f"{name}-grandchild")


@durable.workflow
async def parent(name: str) -> str:
    await after("parent")
    got = await durable.run_child(child, name, id=f"{name}-child")
    return f"parent got {got}"


async def test_resuming_a_parent_resumes_the_children_whose_failure_ended_it(
    tmp_path: Path,
) -> None:
    BROKEN.add("flaky")
    async with Runtime(tmp_path, workflows=[parent, child, grandchild]) as runtime:
        with pytest.raises(durable.WorkflowFailed, match="o-grandchild"):
            await runtime.run(parent, "o", id="o")
        BROKEN.clear()
        handle = await runtime.resume("o", by="alice", reason="API back", request_id="r1")
        assert await handle.result() == "parent got flaky o"
        assert CALLS == ["after", "after", "flaky", "flaky"]  # (flaky alone ran again)
        for workflow_id in ("o", "o-child", "o-grandchild"):
            described = await runtime.describe(workflow_id)
            assert described.state is durable.WorkflowState.COMPLETED
        child_journal = await read_workflow(runtime._store, "o-child")
        (resumed,) = [r for r in child_journal if r["k"] == records.RESUME]
        assert resumed["by"] == "alice"
        assert resumed["m"] == "with its parent 'o': API back"
        assert resumed["id"] == "r1/o-child"
        # A retry of the same request writes nothing anywhere.
        again = await runtime.resume("o", request_id="r1")
        assert await again.result() == "parent got flaky o"
        for workflow_id in ("o", "o-child", "o-grandchild"):
            journal = await read_workflow(runtime._store, workflow_id)
            assert len([r for r in journal if r["k"] == records.RESUME]) == 1


async def test_a_parent_whose_failed_child_is_held_is_refused_naming_the_child(
    tmp_path: Path,
) -> None:
    BROKEN.add("flaky")
    async with Runtime(tmp_path, workflows=[parent, child, grandchild]) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(parent, "o", id="o")
        BROKEN.clear()
        held = await runtime._store.open("o-child")  # (as another process's runner would)
        try:
            with pytest.raises(durable.ActionRefused, match="its child 'o-child'") as refused:
                await runtime.resume("o", start=False)
            assert refused.value.workflow_id == "o"
        finally:
            await held.close()
        for workflow_id in ("o", "o-child", "o-grandchild"):
            journal = await read_workflow(runtime._store, workflow_id)
            assert not [r for r in journal if r["k"] == records.RESUME], workflow_id


NOTES = durable.Stream("notes", str)


@durable.workflow
async def noted(name: str) -> str:
    NOTES.append("before")
    await flaky(name)
    NOTES.append("resumed")
    approved = await durable.wait_for_event("go")
    NOTES.append(str(approved))
    return "done"


async def test_a_stream_reader_follows_a_resumed_run_past_its_first_end(tmp_path: Path) -> None:
    BROKEN.add("flaky")
    async with Runtime(tmp_path, workflows=[noted]) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(noted, "o", id="n")
        BROKEN.clear()
        handle = await runtime.resume("n")
        while (await runtime.describe("n")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        seen: list[str] = []

        async def read() -> None:
            async for item in runtime.read_stream("n", NOTES):
                seen.append(item.value)

        reader = asyncio.create_task(read())
        while len(seen) < 2:  # (past the failure's end: the resumed run is live)
            await asyncio.sleep(0.01)
            assert not reader.done(), seen
        await runtime.send_event("n", "go", "yes")
        assert await handle.result() == "done"
        await asyncio.wait_for(reader, 10)
        assert seen == ["before", "resumed", "yes"]


async def test_an_override_of_a_child_step_is_checked_against_the_childs_return_type(
    tmp_path: Path,
) -> None:
    async with Runtime(tmp_path, workflows=[parent, child, grandchild]) as runtime:
        assert await runtime.run(parent, "o", id="o") == "parent got flaky o"
        with pytest.raises(durable.InvalidOverride, match="child workflow 'child' returns str"):
            await runtime.fork("o", at_step=2, override={1: 5}, new_id="f")
        with pytest.raises(durable.WorkflowNotFound):
            await runtime.describe("f")
        CALLS.clear()
        fork = await runtime.fork("o", at_step=2, override={1: "what if"}, new_id="f")
        assert await fork.result() == "parent got what if"
        assert CALLS == []  # (the child's outcome is the override: no child ran)
