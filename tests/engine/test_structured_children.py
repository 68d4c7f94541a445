"""Structured children: a child ends with its parent unless started detached; foreign ids.

Each test here failed before children were structured: an un-awaited child kept running
after its parent ended, and run_child silently joined whatever ran under the id it was given.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import Runtime, WorkflowState
from durable._catalog import Catalog
from durable._encoding import decode
from durable.testing import TestRuntime, check_crash_points, replay
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@durable.activity(name="note")
async def note(text: str) -> str:
    RAN.append(text)
    return text


@durable.workflow(name="forever")
async def forever(name: str) -> str:
    """Waits for an event nobody sends: only a cancellation ends it."""
    try:
        await durable.wait_for_event("never")
    except asyncio.CancelledError:
        await note(f"{name} cleaned up")
        raise
    return name


@durable.workflow(name="middle")
async def middle() -> str:
    return await durable.run_child(forever, "grandchild", id="grandchild")


@durable.workflow(name="leaves-a-child")
async def leaves_a_child(how: str) -> str:
    """Starts a child in a task it never awaits, then ends `how`."""
    asyncio.create_task(durable.run_child(forever, "child", id="child"))  # noqa: RUF006
    await asyncio.sleep(0.05)  # (the child's step is started by then)
    if how == "fail":
        raise ValueError("the parent gives up")
    if how == "wait":
        await durable.wait_for_event("never")
    if how == "continue":
        durable.continue_as_new("return")
    return "parent done"


@durable.workflow(name="leaves-a-chain")
async def leaves_a_chain() -> str:
    asyncio.create_task(durable.run_child(middle, id="middle"))  # noqa: RUF006
    await asyncio.sleep(0.05)
    return "top done"


async def state_of(runtime: Runtime, workflow_id: str) -> WorkflowState | None:
    try:
        return (await runtime.describe(workflow_id)).state
    except durable.WorkflowNotFound:
        return None


async def wait_for_state(runtime: Runtime, workflow_id: str, state: WorkflowState) -> None:
    async def reached() -> bool:
        return await state_of(runtime, workflow_id) == state

    await wait_until(reached)


async def journal_of(directory: Path, workflow_id: str) -> list[dict[str, Any]]:
    async with durable.JournalDirectory(directory) as store:
        return [
            decode(record.payload, path=workflow_id, offset=0)
            for record in await store.read(workflow_id)
        ]


async def test_an_unawaited_child_is_cancelled_when_its_parent_returns(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(leaves_a_child, "return", id="parent") == "parent done"
        await wait_for_state(runtime, "child", WorkflowState.CANCELLED)
        child = await runtime.describe("child")
        assert child.error is not None
        assert "its parent 'parent' returned" in child.error
    assert RAN == ["child cleaned up"]


async def test_an_unawaited_child_is_cancelled_when_its_parent_fails(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowFailed, match="the parent gives up"):
            await runtime.run(leaves_a_child, "fail", id="parent")
        await wait_for_state(runtime, "child", WorkflowState.CANCELLED)
        assert "its parent 'parent' failed" in str((await runtime.describe("child")).error)


async def test_an_unawaited_child_is_cancelled_when_its_parent_is(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(leaves_a_child, "wait", id="parent")

        async def both_wait() -> bool:  # (the child, its timer and the parent's wait)
            try:
                parent, child = [await runtime.describe(name) for name in ("parent", "child")]
            except durable.WorkflowNotFound:
                return False
            return parent.steps == 3 and child.waiting_for == "never"

        await wait_until(both_wait)
        await runtime.cancel("parent", "order withdrawn")
        with pytest.raises(durable.WorkflowCancelled):
            await handle.result()
        await wait_for_state(runtime, "child", WorkflowState.CANCELLED)
        assert "was cancelled" in str((await runtime.describe("child")).error)
    assert RAN == ["child cleaned up"]


async def test_a_generation_that_continues_as_new_cancels_its_children(journal_dir: Path) -> None:
    """As Temporal: a parent-close policy applies when a run (a generation) closes."""
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(leaves_a_child, "continue", id="parent") == "parent done"
        await wait_for_state(runtime, "child", WorkflowState.CANCELLED)
        assert "continued as new" in str((await runtime.describe("child")).error)


async def test_a_whole_chain_ends_with_its_top(journal_dir: Path) -> None:
    """The middle child used to stay running for ever, waiting on its grandchild."""
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(leaves_a_chain, id="top") == "top done"
        await wait_for_state(runtime, "middle", WorkflowState.CANCELLED)
        await wait_for_state(runtime, "grandchild", WorkflowState.CANCELLED)
        assert (await runtime.describe("grandchild")).parent == "middle"
    assert RAN == ["grandchild cleaned up"]


@durable.workflow(name="quick")
async def quick() -> str:
    return await note("quick ran")


@durable.workflow(name="awaits-then-leaves")
async def awaits_then_leaves() -> str:
    first = await durable.run_child(quick, id="quick")
    asyncio.create_task(durable.run_child(forever, "late", id="late"))  # noqa: RUF006
    return first


async def test_a_child_finished_before_its_parent_ended_is_left_alone(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(awaits_then_leaves, id="parent") == "quick ran"
        assert await state_of(runtime, "quick") == WorkflowState.COMPLETED
        assert (await runtime.describe("quick")).unread_events == 0  # no cancel was posted
        # Asked for as the parent returned: started, then cancelled by the parent's end.
        await wait_for_state(runtime, "late", WorkflowState.CANCELLED)
    assert RAN == ["quick ran", "late cleaned up"]


@durable.workflow(name="detached-job")
async def detached_job() -> str:
    await durable.wait_for_event("go")
    return await note("detached finished")


@durable.workflow(name="starts-detached")
async def starts_detached() -> str:
    asyncio.create_task(  # noqa: RUF006
        durable.run_child(detached_job, id="job", detached=True)
    )
    await asyncio.sleep(0.05)
    return "parent done"


async def test_a_detached_child_outlives_its_parent_and_finishes(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(starts_detached, id="parent") == "parent done"
        assert await state_of(runtime, "job") == WorkflowState.WAITING
        await runtime.send_event("job", "go")
        await wait_for_state(runtime, "job", WorkflowState.COMPLETED)
        assert (await runtime.describe("job")).parent == "parent"
    sched = [r for r in await journal_of(journal_dir, "parent") if r["k"] == "sched"]
    assert [(r["id"], r.get("dt")) for r in sched] == [("job", 1)]
    async with Catalog(journal_dir) as catalog:
        steps = (await catalog.history("parent")).steps
    assert [(step.child_id, step.detached) for step in steps if step.kind == "child"] == [
        ("job", True)
    ]
    assert RAN == ["detached finished"]


@durable.workflow(name="detaches-and-returns")
async def detaches_and_returns() -> str:
    asyncio.create_task(  # noqa: RUF006
        durable.run_child(quick, id="last-breath", detached=True)
    )
    return "parent done"


async def test_a_detached_child_asked_for_as_its_parent_returns_still_runs(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(detaches_and_returns, id="parent") == "parent done"
        await wait_for_state(runtime, "last-breath", WorkflowState.COMPLETED)
    assert RAN == ["quick ran"]


@durable.workflow(name="awaits-forever")
async def awaits_forever() -> str:
    return await durable.run_child(forever, "awaited", id="awaited")


async def test_a_child_gets_one_cancellation_from_its_parent(journal_dir: Path) -> None:
    """Letting go of the step and ending both cancel the child: one message, not two."""
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(awaits_forever, id="parent")

        async def child_waits() -> bool:
            try:
                return (await runtime.describe("awaited")).waiting_for == "never"
            except durable.WorkflowNotFound:
                return False

        await wait_until(child_waits)
        await runtime.cancel("parent")
        with pytest.raises(durable.WorkflowCancelled):
            await handle.result()
        await wait_for_state(runtime, "awaited", WorkflowState.CANCELLED)
    async with durable.JournalDirectory(journal_dir) as store:
        assert len(await store.inbox("awaited")) == 1
    assert RAN == ["awaited cleaned up"]


async def test_a_journal_without_the_detached_field_means_attached(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.run(leaves_a_child, "return", id="parent")
    sched = [r for r in await journal_of(journal_dir, "parent") if r["k"] == "sched"]
    assert [(r["id"], "dt" in r) for r in sched] == [("child", False)]


async def test_a_replay_of_a_parent_whose_children_were_cancelled_is_the_same(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.run(leaves_a_chain, id="top")
        await wait_for_state(runtime, "grandchild", WorkflowState.CANCELLED)
    for workflow, name in ((leaves_a_chain, "top"), (middle, "middle")):
        verdict = await replay(workflow, journal_dir / f"{name}.journal")
        assert verdict.ok, verdict.error
    before = {name: await journal_of(journal_dir, name) for name in ("top", "middle")}
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(leaves_a_chain, id="top") == "top done"
        assert await runtime.recover() == []
    assert {name: await journal_of(journal_dir, name) for name in ("top", "middle")} == before


async def test_a_crash_at_any_record_still_ends_the_chain(tmp_path: Path) -> None:
    """Killed at every journal write: the resumed parent redoes the cancellations."""

    async def scenario(runtime: TestRuntime) -> None:
        assert await runtime.run(leaves_a_chain, id="top") == "top done"
        for name in ("middle", "grandchild"):
            await wait_for_state(runtime, name, WorkflowState.CANCELLED)

    report = await check_crash_points(scenario, tmp_path)
    assert report.crashed == len(report.points) > 3


# -- ids that name another run -----------------------------------------------------------


@durable.workflow(name="echo")
async def echo(text: str) -> str:
    return text


@durable.workflow(name="uses-id")
async def uses_id(workflow_name: str, text: str) -> str:
    child = echo if workflow_name == "echo" else quick
    try:
        if child is echo:
            return await durable.run_child(echo, text, id="taken")
        return await durable.run_child(quick, id="taken")
    except durable.ChildIdInUse as refused:
        await note("refused")
        return f"refused at step {refused.step}: {refused}"


@pytest.mark.parametrize(
    ("setup", "call", "recorded", "given"),
    [
        ("echo", ("quick", ""), "workflow 'echo' ['a']", "workflow 'quick' []"),
        ("echo", ("echo", "b"), "workflow 'echo' ['a']", "workflow 'echo' ['b']"),
        ("echo", ("echo", "a"), "started on its own", "child of 'parent'"),
        ("other-parent", ("echo", "a"), "child of 'other'", "child of 'parent'"),
    ],
    ids=["other-workflow", "other-arguments", "not-a-child", "another-parents-child"],
)
async def test_an_id_of_another_run_raises_in_the_parent_and_replays(
    journal_dir: Path, setup: str, call: tuple[str, str], recorded: str, given: str
) -> None:
    async with Runtime(journal_dir) as runtime:
        if setup == "echo":
            assert await runtime.run(echo, "a", id="taken") == "a"
        else:
            assert await runtime.run(uses_id, "echo", "a", id="other") == "a"
        before = await journal_of(journal_dir, "taken")
        outcome = await runtime.run(uses_id, *call, id="parent")
    assert outcome.startswith("refused at step 0: workflow 'parent' runs child 'taken' at step 0")
    assert recorded in outcome
    assert given in outcome
    assert "test_structured_children.py:" in outcome  # the call site
    assert await journal_of(journal_dir, "taken") == before  # not joined, not resumed
    done = next(r for r in await journal_of(journal_dir, "parent") if r["k"] == "done")
    assert done["e"]["kind"] == "child-id-in-use"
    assert RAN == ["refused"]
    # Replayed, it raises the same error (from the journal), running nothing again.
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(uses_id, *call, id="parent") == outcome
    verdict = await replay(uses_id, journal_dir / "parent.journal")
    assert verdict.ok, verdict.error
    assert RAN == ["refused"]


async def test_its_own_child_under_an_explicit_id_is_resumed_not_refused(
    journal_dir: Path,
) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        assert await runtime.run(uses_id, "echo", "a", id="parent") == "a"

    report = await check_crash_points(scenario, journal_dir)
    assert report.crashed == len(report.points)


@durable.workflow(name="joins-forever")
async def joins_forever() -> str:
    try:
        return await durable.run_child(forever, "mine", id="taken")
    except durable.ChildIdInUse as refused:
        return refused.recorded


@pytest.mark.parametrize("where", ["this runtime", "another runtime"])
async def test_an_id_running_elsewhere_is_refused_without_joining_it(
    journal_dir: Path, where: str
) -> None:
    """Running here (loaded), or held by another runner: checked without its lock."""
    async with Runtime(journal_dir) as holder:
        held = await holder.start(forever, "not a child", id="taken")
        await wait_for_state(holder, "taken", WorkflowState.WAITING)
        if where == "this runtime":
            assert await holder.run(joins_forever, id="parent") == (
                "workflow 'forever' ['not a child'], started on its own"
            )
        else:
            async with Runtime(journal_dir) as other:
                assert await other.run(joins_forever, id="parent") == (
                    "workflow 'forever' ['not a child'], started on its own"
                )
        assert not held.done()
        assert await state_of(holder, "taken") == WorkflowState.WAITING  # not cancelled


@durable.workflow(name="leaves-a-taken-id")
async def leaves_a_taken_id(how: str) -> str:
    """Asks for a child under an id that is not its own, and lets go of it at once."""
    task = asyncio.create_task(durable.run_child(forever, "mine", id="taken"))
    await asyncio.sleep(0)  # (its step is asked for)
    if how == "cancel":
        task.cancel()
        await asyncio.sleep(0.05)
    return "parent done"


@pytest.mark.parametrize("how", ["return", "cancel"])
async def test_a_parent_never_cancels_a_run_that_is_not_its_child(
    journal_dir: Path, how: str
) -> None:
    """Ending, or letting go of the step, before the refusal reached the code."""
    async with Runtime(journal_dir) as runtime:
        held = await runtime.start(forever, "not a child", id="taken")
        await wait_for_state(runtime, "taken", WorkflowState.WAITING)
        assert await runtime.run(leaves_a_taken_id, how, id="parent") == "parent done"
        await runtime.run(quick, id="after")  # (a cancel in flight would have landed)
        assert not held.done()
        assert (await runtime.describe("taken")).state == WorkflowState.WAITING
    async with durable.JournalDirectory(journal_dir) as store:
        assert await store.inbox("taken") == []


@durable.workflow(name="waits-for-its-child")
async def waits_for_its_child() -> str:
    return await durable.run_child(forever, "kid", id="kid")


async def test_a_parent_follows_its_own_child_another_runtime_holds(journal_dir: Path) -> None:
    """A child another runtime took over (recover, serve) is followed to its outcome by the
    parent's run_child, not refused (it used to stop the parent with WorkflowAlreadyRunning)."""
    async with Runtime(journal_dir, stop_grace=0) as first:
        await first.start(waits_for_its_child, id="parent")
        await wait_for_state(first, "kid", WorkflowState.WAITING)
    async with (
        Runtime(journal_dir, workflows=[forever]) as holder,
        Runtime(journal_dir, event_poll_interval=0.02) as parents,
    ):
        kid = await holder.start(forever, "kid", id="kid")  # (resumes it: holds it now)
        parent = await parents.start(waits_for_its_child, id="parent")
        await asyncio.sleep(0.1)
        assert not parent.done(), "it follows the child"
        await holder.send_event("kid", "never", "sent after all")
        assert await kid.result() == "kid"
        assert await asyncio.wait_for(parent.result(), 5) == "kid"
