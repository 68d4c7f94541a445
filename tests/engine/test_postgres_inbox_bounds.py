"""The inbox guards on PostgresStore: refusals at send time, skips of what cannot be delivered."""

from __future__ import annotations

from typing import Any

import pytest

import durable
from durable import InboxFull, MessageTooLarge, PostgresStore, RecordTooLarge, Runtime
from durable._encoding import encode
from durable._engine._inbox_cursor import MESSAGE_MARGIN, event_message
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

RECORD_LIMIT = 4096


@durable.workflow(name="pg-collector")
async def collector(count: int) -> list[Any]:
    return [await durable.wait_for_event("item") for _ in range(count)]


async def started(runtime: Runtime, workflow_id: str) -> bool:
    try:
        await runtime.describe(workflow_id)
    except durable.WorkflowNotFound:
        return False
    return True


async def test_postgres_refuses_what_it_could_not_journal_and_skips_what_it_cannot_deliver(
    postgres_dsn: str,
) -> None:
    store = PostgresStore(postgres_dsn, max_record_size=RECORD_LIMIT, inbox_max_messages=4)
    async with Runtime(store=store) as runtime:
        handle = await runtime.start(collector, 2, id="c")

        await wait_until(lambda: started(runtime, "c"))
        with pytest.raises(MessageTooLarge) as refused:
            await runtime.send_event("c", "item", b"x" * RECORD_LIMIT)
        assert refused.value.limit == RECORD_LIMIT - MESSAGE_MARGIN
        assert await store.inbox("c") == []  # nothing written
        # Past every sender's check (another version, a bug): the run skips them.
        await store.post("c", b"\xc1")
        await store.post("c", encode({"k": "event", "n": "item", "p": b"x" * 5000, "t": 0.0}))
        await store.post("c", event_message("item", "good", None, 0.0))
        await runtime.send_event("c", "item", "also good")
        assert await handle.result() == ["good", "also good"]
        described = await runtime.describe("c")
        assert described.skipped_messages == 2
        assert described.last_skip is not None
        assert "over the journal's 4096-byte record limit" in described.last_skip

    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        await runtime.start(collector, 3, id="d")
        await wait_until(lambda: started(runtime, "d"))
    # (nobody runs "d" now: what is sent waits)
    store = PostgresStore(postgres_dsn, max_record_size=RECORD_LIMIT, inbox_max_messages=2)
    async with Runtime(store=store) as runtime:
        assert await runtime.send_event("d", "item", 1)
        assert await runtime.send_event("d", "item", 2)
        with pytest.raises(InboxFull) as full:
            await runtime.send_event("d", "item", 3)
        assert (full.value.pending, full.value.max_messages) == (2, 2)
        assert len(await store.inbox("d")) == 2
        journal = await store.open("e")
        with pytest.raises(RecordTooLarge):
            journal.write(b"x" * (RECORD_LIMIT + 1))
        await journal.close()
