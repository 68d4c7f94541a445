"""Resume, restart and fork on PostgresStore (a throwaway cluster: slow)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

import durable
from durable import PostgresStore, Runtime
from durable._engine import _records as records
from durable._reading import read_workflow

from . import app

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
DONE = ["reserved o", "pay-o", "shipped o after pay-o"]


@pytest.fixture(autouse=True)
def _fresh() -> None:
    app.BROKEN.clear()
    app.CALLS.clear()


async def done_flag(dsn: str, name: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        return bool(
            await connection.fetchval("SELECT done FROM durable_journals WHERE name = $1", name)
        )
    finally:
        await connection.close()


async def test_resume_restart_and_fork_on_postgres(postgres_dsn: str) -> None:
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[app.order]) as runtime:
        app.BROKEN.add("charge")
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(app.order, "o", id="o1")
        app.BROKEN.clear()
        fork = await runtime.fork(
            "o1", from_failure=True, override={1: {"amount": 1, "reference": "r"}}
        )
        assert (await fork.result())[1] == "r"
        restart = await runtime.restart("o1")
        assert await restart.result() == DONE
        # Resume without running it here: a serving runtime takes it (done -> not done).
        assert await done_flag(postgres_dsn, "o1") is True
        await runtime.resume("o1", reason="fixed", start=False)
        assert await done_flag(postgres_dsn, "o1") is False  # (serve() may claim it again)
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[app.order]) as server:
        serving = asyncio.ensure_future(server.serve())
        try:
            handle = await server.handle("o1")
            assert await asyncio.wait_for(handle.result(), 30) == DONE
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        source = await read_workflow(server._store, "o1")
        assert [r["k"] for r in source].count(records.RESUME) == 1
        assert sorted(r["id"] for r in source if r["k"] == records.LINK) == [
            "o1-fork-failure-override-1",
            "o1-restart",
        ]


async def test_a_workflow_another_runtime_holds_is_refused_on_postgres(postgres_dsn: str) -> None:
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[app.waits]) as runner:
        await runner.start(app.waits, "w", id="held")
        while True:  # (PostgreSQL shows committed records only: not found at first)
            with contextlib.suppress(durable.WorkflowNotFound):
                if (await runner.describe("held")).state is durable.WorkflowState.WAITING:
                    break
            await asyncio.sleep(0.01)
        async with Runtime(store=PostgresStore(postgres_dsn)) as operator:
            with pytest.raises(durable.ActionRefused, match="held by a runner"):
                await operator.resume("held")
            with pytest.raises(durable.ActionRefused, match="held by a runner"):
                await operator.restart("held")
        await runner.send_event("held", "approved", 1)
        assert (await (await runner.handle("held")).result()).startswith("shipped")


async def test_bulk_resume_restart_and_fork_on_postgres(postgres_dsn: str) -> None:
    failed = durable.WorkflowFilter(workflow_name="order", state="failed")
    async with Runtime(
        store=PostgresStore(postgres_dsn), workflows=[app.order, app.waits]
    ) as runtime:
        app.BROKEN.add("charge")
        for name in ("b1", "b2"):
            with pytest.raises(durable.WorkflowFailed):
                await runtime.run(app.order, "o", id=name)
        app.BROKEN.clear()
        await runtime.start(app.waits, "w", id="b-waiting")
        where = durable.WorkflowFilter(workflow_id="b-waiting", state="waiting for event")
        while not (await runtime.list_workflows(where)).total:  # (once its records commit)
            await asyncio.sleep(0.01)
        plan = await runtime.bulk("resume", durable.WorkflowFilter(id_prefix="b"), dry_run=True)
        assert plan.outcomes == {"b2": "would resume", "b1": "would resume"}
        assert plan.skipped["b-waiting"].startswith("not ended: waiting for event")
        forked = await runtime.bulk("fork", failed, bulk_id="pg-fork")
        restarted = await runtime.bulk("restart", failed, bulk_id="pg-restart")
        resumed = await runtime.bulk("resume", failed, by="pg", bulk_id="pg-resume")
        again = await runtime.bulk("resume", failed, bulk_id="pg-resume")  # (a retry)
        assert again.outcomes == resumed.outcomes == {"b2": "resumed", "b1": "resumed"}
        runs = [*forked.runs.values(), *restarted.runs.values()]
        assert sorted(runs) == ["b1@pg-fork", "b1@pg-restart", "b2@pg-fork", "b2@pg-restart"]
        for run in [*runs, "b1", "b2"]:
            assert await (await runtime.handle(run)).result() == DONE
        journal = await read_workflow(runtime._store, "b1")
        assert [r.get("id") for r in journal if r["k"] == records.RESUME] == ["bulk:pg-resume"]


async def test_a_parent_resumes_its_failed_child_and_two_resumes_write_one_on_postgres(
    postgres_dsn: str,
) -> None:
    from . import test_resume_which_step as chain  # noqa: PLC0415 (its workflows and flags)

    chain.CALLS.clear()
    chain.BROKEN.add("flaky")
    code = [chain.parent, chain.child, chain.grandchild]
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=code) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(chain.parent, "pg", id="pg")
    chain.BROKEN.clear()
    first = Runtime(store=PostgresStore(postgres_dsn), workflows=code)
    second = Runtime(store=PostgresStore(postgres_dsn))
    async with first, second:  # (two runtimes at once: each its own leases)
        handles = await asyncio.gather(
            first.resume("pg", request_id="r"), second.resume("pg", request_id="r")
        )
        for handle in handles:
            assert await handle.result() == "parent got flaky pg"
        for workflow_id in ("pg", "pg-child", "pg-grandchild"):
            journal = await read_workflow(first._store, workflow_id)
            assert [r["k"] for r in journal].count(records.RESUME) == 1, workflow_id
    assert chain.CALLS.count("flaky") == 2
