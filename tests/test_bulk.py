"""Runtime.bulk on the file store: dry run, cancel, retry without doubling, bad input."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

import durable
from durable import BulkAction, BulkRequest, WorkflowFilter
from durable._bulk import BulkHost
from durable._catalog import Catalog
from tests.query_fleet import WORKFLOWS, make_directory

pytestmark = pytest.mark.anyio
TARGETS = {"pay-05", "ship-0", "ship-1", "ship-2", "kid-0", "parent-0"}  # (unfinished)


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


async def cancels(directory: Path, workflow_id: str) -> list[durable._catalog.InboxMessage]:
    async with Catalog(directory) as catalog:
        return [m for m in await catalog.inbox(workflow_id) if m.kind == "cancel"]


async def test_dry_run_lists_what_would_change_and_changes_nothing(fleet: Path) -> None:
    async with durable.Runtime(fleet) as runtime:
        plan = await runtime.bulk("cancel", WorkflowFilter(id_prefix="pay-"), dry_run=True)
        assert plan.dry_run
        assert plan.outcomes == {"pay-05": "would cancel"}
        assert plan.skipped_total == 5
        assert plan.skipped["pay-01"] == "already failed"
        assert plan.skipped["pay-00"] == "already completed"
        assert plan.matched == 6
    assert await cancels(fleet, "pay-05") == []
    async with Catalog(fleet) as catalog:  # (no bulk workflow was started)
        assert (await catalog.query(WorkflowFilter(workflow_name="durable.bulk"))).total == 0


async def test_bulk_cancel_is_journaled_on_both_sides_and_a_retry_never_doubles(
    fleet: Path,
) -> None:
    where = WorkflowFilter(state=["sleeping", "waiting for event", "running"])
    async with durable.Runtime(fleet) as runtime:
        done = await runtime.bulk(
            "cancel", where, by="ops@example", reason="bad deploy", bulk_id="bulk-1"
        )
        assert done.outcomes == dict.fromkeys(TARGETS, "cancelled")
        assert not done.resumed
        assert done.errors == {}
        again = await runtime.bulk("cancel", where, bulk_id="bulk-1")  # (a retry: same bulk)
        assert again.resumed
        assert again.outcomes == done.outcomes
    for workflow_id in TARGETS:
        sent = await cancels(fleet, workflow_id)
        assert [m.message_id for m in sent] == ["bulk:bulk-1"], workflow_id
        assert sent[0].name == "bad deploy (bulk cancel bulk-1, by ops@example)"
    async with Catalog(fleet) as catalog:
        bulk = await catalog.history("bulk-1")
        assert bulk.workflow_name == "durable.bulk"
        assert bulk.arguments[2] == "ops@example"  # (who asked, in the bulk's own journal)
    # the targets take their cancellation when a runtime runs them again
    async with durable.Runtime(fleet, workflows=WORKFLOWS) as runtime:
        for handle in await runtime.recover():
            with pytest.raises(durable.WorkflowCancelled):
                await handle.result()
        page = await runtime.list_workflows(WorkflowFilter(workflow_id=sorted(TARGETS)))
        assert {str(d.state) for d in page.workflows} == {"cancelled"}


async def test_a_filter_that_matches_nothing_does_nothing(fleet: Path) -> None:
    async with durable.Runtime(fleet) as runtime:
        done = await runtime.bulk("cancel", WorkflowFilter(workflow_name="nobody"))
    assert (done.outcomes, done.skipped_total, done.matched) == ({}, 0, 0)


async def test_bad_input(fleet: Path) -> None:
    async with durable.Runtime(fleet) as runtime:
        with pytest.raises(durable.UnknownBulkAction, match=r"'explode'.*cancel"):
            await runtime.bulk("explode", WorkflowFilter(state="failed"))
        with pytest.raises(durable.WorkflowIdInUse, match="pay-00"):
            await runtime.bulk("cancel", WorkflowFilter(state="failed"), bulk_id="pay-00")
        with pytest.raises(durable.InvalidWorkflowId):
            await runtime.bulk("cancel", WorkflowFilter(state="failed"), bulk_id="../x")


async def test_actions_plug_in_by_name_and_a_bulk_never_acts_on_itself(fleet: Path) -> None:
    acted: list[tuple[str, str]] = []

    async def tag(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
        acted.append((workflow_id, request.request_id))
        if workflow_id == "ship-1":
            raise RuntimeError("no tags today")
        return "tagged"

    action = BulkAction(name="tag", act=tag, refuses=lambda d: None, verb="tag")
    async with durable.Runtime(fleet) as runtime:
        done = await runtime.bulk(
            "tag",
            WorkflowFilter(workflow_name=["ship", "durable.bulk"]),
            actions={"tag": action},
            bulk_id="bulk-tag",
        )
        with pytest.raises(durable.WorkflowIdInUse, match="a bulk tag"):  # (another action's)
            await runtime.bulk("cancel", WorkflowFilter(workflow_name="ship"), bulk_id="bulk-tag")
    assert sorted(acted) == [(f"ship-{n}", "bulk:bulk-tag") for n in range(3)]
    assert done.outcomes["ship-0"] == "tagged"
    assert done.errors == {"ship-1": "error: RuntimeError: no tags today"}
    assert "bulk-tag" not in done.outcomes
