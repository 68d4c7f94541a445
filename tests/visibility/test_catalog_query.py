"""Catalog.query / Runtime.list_workflows on the file store: each filter, paging, the index."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

import durable
from durable import WorkflowFilter
from durable._catalog import Catalog
from durable._catalog_index import INDEX_NAME
from tests.query_fleet import WORKFLOWS, make_directory

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fleet_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet") / "journals"
    asyncio.run(make_directory(directory))
    return directory


@pytest.fixture
def fleet(fleet_source: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "journals"
    shutil.copytree(fleet_source, copy)
    return copy


async def ids(directory: Path, where: WorkflowFilter | None = None, **page: object) -> list[str]:
    async with Catalog(directory) as catalog:
        found = await catalog.query(where, **page)  # type: ignore[arg-type]
    return [d.workflow_id for d in found.workflows]


async def test_each_filter_on_the_file_store(fleet: Path) -> None:
    assert sorted(await ids(fleet, WorkflowFilter(state="failed"))) == ["pay-01", "pay-03"]
    assert sorted(await ids(fleet, WorkflowFilter(state=["sleeping", "waiting for event"]))) == [
        "kid-0",
        "pay-05",
        "ship-0",
        "ship-1",
        "ship-2",
    ]
    assert sorted(await ids(fleet, WorkflowFilter(workflow_name="ship"))) == [
        "ship-0",
        "ship-1",
        "ship-2",
    ]
    assert sorted(await ids(fleet, WorkflowFilter(id_prefix="pay-0", state="completed"))) == [
        "pay-00",
        "pay-02",
        "pay-04",
    ]
    assert await ids(fleet, WorkflowFilter(parent="parent-0")) == ["kid-0"]
    assert sorted(await ids(fleet, WorkflowFilter(error_type="Declined"))) == ["pay-01", "pay-03"]
    assert await ids(fleet, WorkflowFilter(workflow_id=["ship-1", "nope"])) == ["ship-1"]
    # times: everything started in the last hour; nothing ended in the future
    assert len(await ids(fleet, WorkflowFilter(started_after="1h"))) == 11
    later = time.time() + 3600
    assert await ids(fleet, WorkflowFilter(ended_after=later)) == []
    assert len(await ids(fleet, WorkflowFilter(ended_before=later))) == 5  # (the ended ones)
    async with Catalog(fleet) as catalog:
        kid = await catalog.describe("kid-0")
    exact = WorkflowFilter(started_after=kid.started, started_before=kid.started.timestamp() + 1e-6)
    assert "kid-0" in await ids(fleet, exact)


async def test_a_filter_that_matches_nothing_is_an_empty_page(fleet: Path) -> None:
    async with Catalog(fleet) as catalog:
        page = await catalog.query(WorkflowFilter(workflow_name="nobody"))
    assert (page.workflows, page.total, page.next_cursor) == ([], 0, None)


async def test_pages_by_cursor_see_each_workflow_once(fleet: Path) -> None:
    every = await ids(fleet, limit=100)
    assert len(every) == 11
    seen: list[str] = []
    cursor = None
    async with Catalog(fleet) as catalog:
        while True:
            page = await catalog.query(None, limit=4, cursor=cursor)
            assert page.total == 11
            seen += [d.workflow_id for d in page.workflows]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == every
    with pytest.raises(durable.InvalidFilter, match="cursor"):
        await ids(fleet, cursor="not-a-cursor")


async def test_queue_filter_sees_waiting_and_admitted_workflows(tmp_path: Path) -> None:
    queue = durable.Queue("slow", concurrency=1)
    directory = tmp_path / "journals"
    async with durable.Runtime(
        directory, queues=[queue], workflows=WORKFLOWS, suspend_after="0 s"
    ) as runtime:
        from tests.query_fleet import ship  # noqa: PLC0415

        for number in range(3):
            await runtime.enqueue(queue, ship, number, id=f"q-{number}")
        await runtime.start(ship, 9, id="free")
        where = WorkflowFilter(queue="slow")

        async def queued() -> list[str]:
            page = await runtime.list_workflows(where)
            return sorted(d.workflow_id for d in page.workflows)

        async with asyncio.timeout(10):
            while await queued() != ["q-0", "q-1", "q-2"]:
                await asyncio.sleep(0.02)
        assert (await runtime.list_workflows(WorkflowFilter(queue="other"))).total == 0
        # a bulk cancel acts on the admitted one; the waiting ones have no journal yet
        plan = await runtime.bulk("cancel", where, dry_run=True)
        assert list(plan.outcomes) == ["q-0"]
        assert set(plan.skipped) == {"q-1", "q-2"}
        assert plan.skipped["q-1"].startswith("queued")


async def test_the_index_file_serves_a_new_catalog_and_is_checked_against_the_journals(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("durable._catalog.WRITE_AFTER", 5)  # (a listing of 11 writes it)
    monkeypatch.setattr("durable._catalog.LOAD_AFTER", 5)  # (and reads it)
    await ids(fleet)
    index = fleet / INDEX_NAME
    assert index.exists()
    assert (index.stat().st_mode & 0o777) == 0o600
    # a new catalog reads the descriptions from the index, decoding no journal...
    decoded: list[str] = []
    original = Catalog._decode

    def counting(self: Catalog, workflow_id: str, records: list[durable.StoredRecord]) -> object:
        decoded.append(workflow_id)
        return original(self, workflow_id, records)

    monkeypatch.setattr(Catalog, "_decode", counting)
    assert sorted(await ids(fleet, WorkflowFilter(state="failed"))) == ["pay-01", "pay-03"]
    assert decoded == []
    # ...but a journal that changed since is read again: the index never answers for it
    async with durable.Runtime(fleet, workflows=WORKFLOWS) as runtime:
        await runtime.send_event("ship-1", "go", "now")
        await (await runtime.handle("ship-1")).result()
    assert "ship-1" in await ids(fleet, WorkflowFilter(state="completed"))
    assert decoded == ["ship-1"]


async def test_a_damaged_or_foreign_index_is_ignored(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("durable._catalog.WRITE_AFTER", 5)
    monkeypatch.setattr("durable._catalog.LOAD_AFTER", 5)
    await ids(fleet)
    index = fleet / INDEX_NAME
    data = index.read_bytes()
    for bad in (data[: len(data) // 2], b"\x00" * 100, b"\x81\xa1v\x02"):
        index.write_bytes(bad)
        assert len(await ids(fleet)) == 11
    index.unlink()
    os.symlink("/etc/passwd", index)  # (a link planted at its name is not followed)
    assert len(await ids(fleet)) == 11
