"""The read-only catalog: listings, histories and inboxes, read without a lock or a write."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import durable
from durable._catalog import Catalog
from tests.conftest import wait_until

from .sample_app import ORDERS, STATES, order_workflow

pytestmark = pytest.mark.anyio


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in directory.iterdir()}


async def test_listing_has_every_state_newest_first(sample_dir: Path) -> None:
    listing = await Catalog(sample_dir).listing()
    states = {described.workflow_id: str(described.state) for described in listing.workflows}
    assert states == STATES
    updated = [described.updated for described in listing.workflows]
    assert updated == sorted(updated, reverse=True)
    assert listing.unreadable == {}


async def test_listing_filters_by_state_and_search(sample_dir: Path) -> None:
    catalog = Catalog(sample_dir)
    failed = await catalog.listing(state="failed")
    assert [d.workflow_id for d in failed.workflows] == ["order-2"]
    by_status = await catalog.listing(search="PAY-4")  # (status {"paid": "pay-4"}, any case)
    assert [d.workflow_id for d in by_status.workflows] == ["order-4"]
    with pytest.raises(ValueError, match="nonsense"):
        await catalog.listing(state="nonsense")


async def test_history_shows_attempts_retries_and_results(sample_dir: Path) -> None:
    history = await Catalog(sample_dir).history("order-7")
    assert history.outcome == "completed"
    assert history.result == "shipped 7 (auto)"
    charge = history.steps[0]
    assert (charge.kind, charge.name, charge.state) == ("activity", "charge_payment", "completed")
    assert [attempt.number for attempt in charge.attempts] == [1, 2, 3]
    first, second, third = charge.attempts
    assert first.error is not None
    assert first.error["type"] == "ConnectionError"
    assert first.retry_at is not None
    assert first.began is not None
    assert first.ended is not None
    assert second.began is not None
    assert first.began <= first.ended <= first.retry_at <= second.began
    assert third.error is None
    assert charge.result == "pay-7"
    assert [step.kind for step in history.steps] == ["activity", "status", "activity", "timer"]
    assert history.steps[3].state == "fired"


async def test_history_of_failed_waiting_and_cancelled_workflows(sample_dir: Path) -> None:
    catalog = Catalog(sample_dir)
    failed = await catalog.history("order-2")
    assert failed.outcome == "failed"
    assert failed.error is not None
    assert "CardDeclined" in failed.error["msg"]
    assert "Traceback" in failed.error["tb"]
    waiting = await catalog.history("order-3")
    assert waiting.outcome == "running"
    assert [(s.kind, s.name, s.state) for s in waiting.steps[3:]] == [
        ("wait", "approved", "waiting"),  # (its timeout's timer is part of it, not a step)
    ]
    assert waiting.steps[3].timeout_at is not None
    cancelled = await catalog.history("order-5")
    assert cancelled.outcome == "cancelled"
    assert [(m.kind, m.name) for m in cancelled.messages] == [
        ("cancel", "customer changed their mind")
    ]
    assert {s.state for s in cancelled.steps[3:]} == {"abandoned"}


async def test_inbox_tells_received_from_waiting_messages(sample_dir: Path) -> None:
    catalog = Catalog(sample_dir)
    async with durable.Runtime(sample_dir) as runtime:
        await runtime.send_event("order-4", "note", {"text": "hello"}, event_id="n-1")
    messages = await catalog.inbox("order-4")
    assert [(m.kind, m.name, m.payload, m.message_id, m.received) for m in messages] == [
        ("event", "note", {"text": "hello"}, "n-1", False)
    ]
    assert (await catalog.describe("order-4")).unread_events == 1
    received = await catalog.inbox("order-5")
    assert [(m.kind, m.received) for m in received] == [("cancel", True)]


async def test_reading_changes_nothing_and_works_while_a_workflow_runs(sample_dir: Path) -> None:
    before = snapshot(sample_dir)
    catalog = Catalog(sample_dir)
    await catalog.listing()
    for workflow_id in ORDERS:
        await catalog.history(workflow_id)
        await catalog.inbox(workflow_id)
    assert snapshot(sample_dir) == before
    # A runner holds order-3's lock while it waits for its event: reading still works.
    async with durable.Runtime(sample_dir, suspend_after=None) as runtime:
        handle = await runtime.start(order_workflow, ORDERS["order-3"], id="order-3")
        described = await catalog.describe("order-3")
        assert str(described.state) == "waiting for event"
        assert (await catalog.runner("order-3")).holder == str(os.getpid())  # (its fdinfo)
        assert (await catalog.details("order-3")).runner.holder == str(os.getpid())
        listing = await catalog.listing()
        assert listing.runners == {"order-3": str(os.getpid())}
        says = (await catalog.runner("order-3")).says(described)
        assert says.startswith(f"process {os.getpid()} (")  # (and its command line)
        assert says.endswith("holds it while it waits and wakes it when the event comes")
        await runtime.send_event("order-3", "approved", "yes")
        assert await asyncio.wait_for(handle.result(), 5) == "shipped 3 (yes)"
    assert (await catalog.history("order-3")).outcome == "completed"


async def test_unreadable_journals_are_listed_apart(sample_dir: Path) -> None:
    damaged = sample_dir / "order-7.journal"
    data = bytearray(damaged.read_bytes())
    data[40] ^= 0xFF  # a flipped byte inside the first frame, valid frames after it
    damaged.write_bytes(bytes(data))
    before = damaged.read_bytes()
    listing = await Catalog(sample_dir).listing()
    assert "order-7" in listing.unreadable
    assert "order-7" not in {d.workflow_id for d in listing.workflows}
    assert len(listing.workflows) == 4
    with pytest.raises(durable.JournalCorrupted):
        await Catalog(sample_dir).history("order-7")
    assert damaged.read_bytes() == before


async def test_bad_and_unknown_ids(sample_dir: Path) -> None:
    catalog = Catalog(sample_dir)
    with pytest.raises(durable.InvalidWorkflowId, match="path separator"):
        await catalog.history("../etc/passwd")
    with pytest.raises(durable.WorkflowNotFound):
        await catalog.describe("order-999")
    assert (await Catalog(sample_dir / "missing").listing()).workflows == []


def test_version_changes_when_the_journal_grows(sample_dir: Path) -> None:
    catalog = Catalog(sample_dir)
    before = catalog.version("order-4")
    with open(sample_dir / "order-4.journal", "ab") as file:
        file.write(b"\x00")
    os.utime(sample_dir / "order-4.journal")
    assert catalog.version("order-4") != before


@durable.workflow(name="catalog-napper")
async def napper() -> str:
    await durable.sleep(60)
    return "rested"


async def test_an_unloaded_sleeper_names_the_process_that_wakes_it(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    async with durable.Runtime(tmp_path, suspend_after=0) as runtime:
        await runtime.start(napper, id="napper")

        async def unloaded() -> bool:
            return "napper" in runtime._mail.sleeping

        await wait_until(unloaded)
        described = await catalog.describe("napper")
        assert str(described.state) == "sleeping"
        says = (await catalog.runner("napper")).says(described)
        assert says.startswith(f"process {os.getpid()} (")
        assert says.endswith("holds it while it sleeps and wakes it then (or when a message comes)")
    says = (await catalog.runner("napper")).says(await catalog.describe("napper"))
    assert says.startswith("no process holds it now")
