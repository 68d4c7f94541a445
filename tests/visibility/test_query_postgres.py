"""Queries and bulk cancel on PostgreSQL: filters through durable_summaries' indexes, kept up
to date by the journals' change counts; schema 3 upgraded in place. Slow: a throwaway cluster."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from click.testing import CliRunner

import durable
from durable import PostgresStore, WorkflowFilter
from durable._catalog import Catalog
from durable._cli import main
from durable._encoding import encode
from durable._engine import _records as records
from durable._storage._postgres_sql import SCHEMA, SCHEMA_VERSION, UPGRADES
from tests.query_fleet import WORKFLOWS, make_fleet

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def ids(runtime: durable.Runtime, where: WorkflowFilter, **page: object) -> list[str]:
    found = await runtime.list_workflows(where, **page)  # type: ignore[arg-type]
    return [d.workflow_id for d in found.workflows]


async def test_filters_paging_and_bulk_cancel_on_postgres(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    async with durable.Runtime(store=store, workflows=WORKFLOWS, suspend_after="0 s") as runtime:
        await make_fleet(runtime)
        assert sorted(await ids(runtime, WorkflowFilter(state="failed"))) == ["pay-01", "pay-03"]
        assert sorted(await ids(runtime, WorkflowFilter(error_type="Declined"))) == [
            "pay-01",
            "pay-03",
        ]
        assert await ids(runtime, WorkflowFilter(parent="parent-0")) == ["kid-0"]
        assert sorted(await ids(runtime, WorkflowFilter(id_prefix="ship-"))) == [
            "ship-0",
            "ship-1",
            "ship-2",
        ]
        assert await ids(runtime, WorkflowFilter(id_prefix="ship_")) == []  # (no LIKE wildcard)
        assert (
            len(await ids(runtime, WorkflowFilter(started_after="1h", workflow_name="charge"))) == 6
        )
        assert await ids(runtime, WorkflowFilter(workflow_name="nobody")) == []
        # pages by cursor: every workflow once, newest start first, as on the file store
        seen: list[str] = []
        cursor = None
        while True:
            page = await runtime.list_workflows(None, limit=3, cursor=cursor)
            assert page.total == 11
            seen += [d.workflow_id for d in page.workflows]
            if (cursor := page.next_cursor) is None:
                break
        assert len(seen) == len(set(seen)) == 11
        assert seen == await ids(runtime, WorkflowFilter(), limit=100)
        # a change reaches the summaries: an event ends ship-1
        await runtime.send_event("ship-1", "go", 1)
        await (await runtime.handle("ship-1")).result()
        assert "ship-1" in await ids(runtime, WorkflowFilter(state="completed"))
        # bulk cancel: journaled once per workflow, also when retried
        where = WorkflowFilter(workflow_name="ship")
        done = await runtime.bulk("cancel", where, by="pg-test", bulk_id="bulk-pg")
        assert done.outcomes == {"ship-0": "cancelled", "ship-2": "cancelled"}
        assert done.skipped == {"ship-1": "already completed"}
        assert (await runtime.bulk("cancel", where, bulk_id="bulk-pg")).resumed
        for workflow_id in ("ship-0", "ship-2"):
            with pytest.raises(durable.WorkflowCancelled):
                await (await runtime.handle(workflow_id)).result()
        assert sorted(await ids(runtime, WorkflowFilter(state="cancelled"))) == ["ship-0", "ship-2"]
    async with Catalog(postgres_dsn) as catalog:  # (what `durable list --store` reads)
        inbox = await catalog.inbox("ship-0")
        assert [m.message_id for m in inbox if m.kind == "cancel"] == ["bulk:bulk-pg"]
    listed = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["list", "--store", postgres_dsn, "--workflow", "ship", "--status", "cancelled", "--json"],
    )
    assert listed.exit_code == 0, listed.output
    assert sorted(w["id"] for w in json.loads(listed.output)["workflows"]) == ["ship-0", "ship-2"]


async def test_the_state_filter_can_use_its_index(postgres_dsn: str) -> None:
    async with durable.Runtime(store=PostgresStore(postgres_dsn), workflows=WORKFLOWS) as runtime:
        await ids(runtime, WorkflowFilter(state="failed"))  # (creates the tables)
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute("SET enable_seqscan = off")
        plans = {
            "durable_summaries_state": "state = 'failed' ORDER BY started DESC, name",
            "durable_summaries_workflow": "workflow = 'ship' ORDER BY started DESC, name",
            "durable_summaries_prefix": "name LIKE 'ship-%'",
            "durable_summaries_errors": "error_types @> ARRAY['Declined']",
            "durable_summaries_parent": "parent = 'p'",
        }
        for index, where in plans.items():
            plan = await connection.fetch(f"EXPLAIN SELECT * FROM durable_summaries WHERE {where}")
            assert index in " ".join(row[0] for row in plan), (index, plan)
    finally:
        await connection.close()


async def test_a_schema_3_database_is_upgraded_in_place_and_its_journals_listed(
    postgres_dsn: str,
) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        async with connection.transaction():
            await connection.execute(SCHEMA)
            await connection.execute(UPGRADES[2])
            await connection.execute(UPGRADES[3])
            await connection.execute("INSERT INTO durable_meta VALUES ('schema_version', '3')")
            await connection.execute("INSERT INTO durable_journals (name) VALUES ('old-1')")
            start = records.start("charge", "old-1", [1], 1_780_000_000.0, 7)
            failed = records.end_failure(
                {"type": "app.Declined", "msg": "no"}, 1_780_000_001.0, cancelled=False
            )
            for seq, record in enumerate([start, failed]):
                await connection.execute(
                    "INSERT INTO durable_records VALUES ('old-1', 0, $1, $2)", seq, encode(record)
                )
        async with durable.Runtime(store=PostgresStore(postgres_dsn)) as runtime:
            page = await runtime.list_workflows(WorkflowFilter(error_type="Declined"))
            assert [d.workflow_id for d in page.workflows] == ["old-1"]
        assert (
            await connection.fetchval("SELECT value FROM durable_meta WHERE key = 'schema_version'")
            == str(SCHEMA_VERSION)
            == "5"
        )
        indexes = {
            row["indexname"]
            for row in await connection.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'durable_summaries'"
            )
        }
        assert {"durable_summaries_state", "durable_summaries_order"} <= indexes
    finally:
        await connection.close()


async def test_concurrent_queries_keep_one_summary_each(postgres_dsn: str) -> None:
    async with durable.Runtime(
        store=PostgresStore(postgres_dsn), workflows=WORKFLOWS, suspend_after="0 s"
    ) as runtime:
        await make_fleet(runtime)
        async with Catalog(postgres_dsn) as one, Catalog(postgres_dsn) as two:
            pages = await asyncio.gather(
                one.query(WorkflowFilter(state="failed")), two.query(WorkflowFilter(state="failed"))
            )
        assert [page.total for page in pages] == [2, 2]
