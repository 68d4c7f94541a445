"""Runtime.bulk resume / restart / fork on the file store: a filter of failed workflows
fixed in bulk, the dry run's reasons, options journaled, and retries that do nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import Runtime, WorkflowFilter
from durable._bulk import ACTIONS, BulkRequest, derived_id
from durable._catalog import Catalog
from durable._engine import _records as records
from durable._reading import read_workflow

from .operations import app

pytestmark = pytest.mark.anyio

DONE = ["reserved o", "pay-o", "shipped o after pay-o"]
FAILED = WorkflowFilter(workflow_name="order", state="failed")


@pytest.fixture(autouse=True)
def _fresh() -> None:
    app.BROKEN.clear()
    app.CALLS.clear()


async def make_orders(directory: Path) -> None:
    """o1..o3 failed (the payment API was down), ok completed."""
    async with Runtime(directory, workflows=[app.order]) as runtime:
        app.BROKEN.add("charge")
        for number in (1, 2, 3):
            with pytest.raises(durable.WorkflowFailed):
                await runtime.run(app.order, "o", id=f"o{number}")
        app.BROKEN.clear()
        await runtime.run(app.order, "o", id="ok")
    app.CALLS.clear()


async def kinds(runtime: Runtime, workflow_id: str, kind: str) -> list[records.Record]:
    return [r for r in await read_workflow(runtime._store, workflow_id) if r["k"] == kind]


async def test_bulk_resume_after_a_fix_completes_them_and_a_retry_writes_nothing(
    tmp_path: Path,
) -> None:
    await make_orders(tmp_path)
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        plan = await runtime.bulk("resume", WorkflowFilter(workflow_name="order"), dry_run=True)
        assert plan.outcomes == dict.fromkeys(["o3", "o2", "o1"], "would resume")
        assert plan.skipped == {"ok": "completed: nothing to resume (restart or fork it)"}
        assert await kinds(runtime, "o1", records.RESUME) == []  # (a dry run writes nothing)
        done = await runtime.bulk(
            "resume", FAILED, by="ops", reason="payment API fixed", bulk_id="bulk-r"
        )
        assert done.outcomes == dict.fromkeys(["o3", "o2", "o1"], "resumed")
        assert done.runs == {"o1": "o1", "o2": "o2", "o3": "o3"}
        for workflow_id in done.runs.values():  # (a runtime with the code runs them)
            assert await (await runtime.handle(workflow_id)).result() == DONE
        assert app.CALLS.count("reserve") == 0  # (kept: each went on from the failed step)
        assert app.CALLS.count("charge") == 3
        resumed = await kinds(runtime, "o1", records.RESUME)
        assert [(r["by"], r["id"]) for r in resumed] == [("ops", "bulk:bulk-r")]
        assert resumed[0]["m"] == "payment API fixed (bulk resume bulk-r, by ops)"
        # A retry of the bulk (the same id), and of one of its steps (as after a crash
        # between the resume and the bulk's record of it): nothing is written again.
        again = await runtime.bulk("resume", FAILED, bulk_id="bulk-r")
        assert again.resumed
        assert again.outcomes == done.outcomes
        request = BulkRequest(bulk_id="bulk-r", action="resume", by="ops", reason="fixed")
        assert await ACTIONS["resume"].act(runtime, "o1", request) == "resumed"
        assert len(await kinds(runtime, "o1", records.RESUME)) == 1
        assert app.CALLS.count("charge") == 3


async def test_bulk_restart_makes_one_linked_run_each_even_when_retried(tmp_path: Path) -> None:
    await make_orders(tmp_path)
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        done = await runtime.bulk("restart", FAILED, by="ops", bulk_id="bulk-s")
        assert done.outcomes == {f"o{n}": f"restarted as o{n}@bulk-s" for n in (3, 2, 1)}
        request = BulkRequest(bulk_id="bulk-s", action="restart", by="ops", reason="x")
        assert await ACTIONS["restart"].act(runtime, "o1", request) == "restarted as o1@bulk-s"
        for run in done.runs.values():
            assert await (await runtime.handle(run)).result() == DONE
        assert app.CALLS == ["reserve", "charge", "ship"] * 3  # (one new run each)
        links = await kinds(runtime, "o1", records.LINK)
        assert [(r["how"], r["id"]) for r in links] == [("restart", "o1@bulk-s")]
        # the sources stay failed; the new runs completed: a second bulk finds them ended
        page = await runtime.list_workflows(WorkflowFilter(workflow_name="order"))
        states = {d.workflow_id: str(d.state) for d in page.workflows}
        assert states == {"o1": "failed", "o2": "failed", "o3": "failed", "ok": "completed"} | {
            f"o{n}@bulk-s": "completed" for n in (1, 2, 3)
        }


async def test_bulk_fork_from_the_failure_by_default_or_at_a_step(tmp_path: Path) -> None:
    await make_orders(tmp_path)
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        plan = await runtime.bulk("fork", WorkflowFilter(workflow_name="order"), dry_run=True)
        assert set(plan.outcomes.values()) == {"would fork from the failed step"}
        assert plan.skipped["ok"].startswith("completed: nothing failed to fork from")
        done = await runtime.bulk("fork", FAILED, bulk_id="bulk-f")
        assert done.outcomes["o2"] == "forked as o2@bulk-f"
        for run in done.runs.values():
            assert await (await runtime.handle(run)).result() == DONE
        assert app.CALLS == ["charge", "ship"] * 3  # (reserve replayed from the source)
        app.CALLS.clear()
        # at a step: a completed one too; the options are the bulk's journaled arguments
        every = WorkflowFilter(workflow_name="order", id_prefix="o")
        plan = await runtime.bulk("fork", every, options={"at_step": 2}, dry_run=True)
        assert len(plan.outcomes) == 7  # (o1..o3, ok and the three forks)
        assert set(plan.outcomes.values()) == {"would fork at step 2"}
        pair = WorkflowFilter(workflow_id=["ok", "o1"])
        at = await runtime.bulk("fork", pair, options={"at_step": 3})
        assert at.outcomes == {
            "ok": f"forked as ok@{at.bulk_id}",
            "o1": "skipped: it records 2 step(s), so no step 3",  # (o1 failed at step 1)
        }
        assert await (await runtime.handle(f"ok@{at.bulk_id}")).result() == DONE
        assert app.CALLS == []  # (all three steps replayed)
    async with Catalog(tmp_path) as catalog:
        assert (await catalog.history(at.bulk_id)).arguments[4] == {"at_step": 3}


async def test_what_the_bulk_leaves_alone_is_shown_with_why(tmp_path: Path) -> None:
    await make_orders(tmp_path)
    async with Runtime(tmp_path, workflows=[app.order, app.waits]) as runtime:
        await runtime.start(app.waits, "w", id="waiting")
        while (await runtime.describe("waiting")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        held = await runtime._store.open("o2")  # (a runner holds o2: say, another process's)
        try:
            for action in ("resume", "restart", "fork"):
                plan = await runtime.bulk(action, WorkflowFilter(), dry_run=True)
                ended = {"o1", "o3", "ok"} if action == "restart" else {"o1", "o3"}
                assert set(plan.outcomes) == ended
                assert plan.skipped["waiting"].startswith("not ended: waiting for event")
                assert plan.skipped["o2"].startswith("held by a runner (")
            # one held after the selection is refused at its turn, never acted on
            request = BulkRequest(bulk_id="b", action="resume", by="ops", reason="x")
            outcome = await ACTIONS["resume"].act(runtime, "o2", request)
            assert outcome.startswith("skipped: held by a runner")
            outcome = await ACTIONS["fork"].act(runtime, "o2", request)
            assert outcome.startswith("skipped: held by a runner")
            outcome = await ACTIONS["restart"].act(runtime, "waiting", request)
            assert outcome.startswith("skipped: running in this runtime")
        finally:
            await held.close()
        assert await kinds(runtime, "o2", records.RESUME) == []
        assert await kinds(runtime, "o2", records.LINK) == []


async def test_bad_options_are_refused_before_anything_starts(tmp_path: Path) -> None:
    await make_orders(tmp_path)
    async with Runtime(tmp_path) as runtime:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("fork", {"at_step": -1}, "at_step must be a whole number"),
            ("fork", {"at_step": True}, "at_step must be a whole number"),
            ("fork", {"at_step": 1, "from_failure": True}, "one of them"),
            ("fork", {"from_failure": "yes"}, "true or false"),
            ("fork", {"override": {1: 2}}, "no option 'override'"),
            ("cancel", {"at_step": 1}, "takes no options"),
            ("resume", {"x": 1}, "takes no options"),
        ]
        for action, options, words in cases:
            with pytest.raises(durable.InvalidBulkOptions, match=words) as refused:
                await runtime.bulk(action, FAILED, options=options)
            assert refused.value.action == action
        page = await runtime.list_workflows(WorkflowFilter(workflow_name="durable.bulk"))
        assert page.total == 0


def test_derived_ids_stay_valid_and_distinct() -> None:
    assert derived_id("o1", "bulk-x") == "o1@bulk-x"
    long = "a" * 190
    made = {derived_id(long + str(n), "bulk-restart-20261206T101500Z-3fa2c1") for n in range(3)}
    assert len(made) == 3
    assert all(len(name) <= 200 for name in made)
    assert all(name.endswith("@bulk-restart-20261206T101500Z-3fa2c1") for name in made)
    assert len(derived_id(long, "b" * 199)) <= 200
