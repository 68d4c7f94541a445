"""Inbox messages that cannot be delivered are journaled as skipped; the workflow goes on.

The inbox is append-only and never rewritten, so a message the run failed on would fail it at
every resume, for ever. Undecodable bytes, an unknown kind (another version's), an event
without a name, or one too large to journal are each journaled as a `skip` record with the
reason, and replay takes the same path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import durable
from durable import JournalDirectory, Runtime, WorkflowState
from durable._encoding import decode, encode
from durable._engine import _records as records
from durable._engine._inbox_cursor import event_message
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

RECORD_LIMIT = 4096  # a small journal record limit, so an oversize message is cheap


@durable.workflow(name="collector")
async def collector(count: int) -> list[Any]:
    return [await durable.wait_for_event("item") for _ in range(count)]


@durable.workflow(name="relay")
async def relay(generation: int) -> Any:
    item = await durable.wait_for_event("item")
    if generation == 0:
        durable.continue_as_new(generation + 1)
    return item


def store(directory: Path) -> JournalDirectory:
    return JournalDirectory(directory, max_record_size=RECORD_LIMIT)


def undeliverable() -> list[bytes]:
    """One of each kind of message a run cannot deliver, as raw inbox payloads."""
    return [
        b"\xc1",  # (a byte msgpack never uses: undecodable)
        encode({"k": "telepathy", "n": "item", "t": 0.0}),  # another version's kind
        encode({"k": "event", "p": 1, "id": None, "t": 0.0}),  # an event without a name
        encode({"k": "event", "n": "item", "p": b"x" * (2 * RECORD_LIMIT), "t": 0.0}),  # large
        encode({"k": "cancel", "m": 42, "id": None, "t": 0.0}),  # a reason that is no text
    ]


async def plant(directory: Path, workflow_id: str, payloads: list[bytes]) -> None:
    """Write straight to the inbox, past every check a sender makes (another version, a bug)."""
    async with store(directory) as planting:
        for payload in payloads:
            await planting.post(workflow_id, payload)


async def journal_of(directory: Path, workflow_id: str) -> list[dict[str, Any]]:
    async with store(directory) as reading:
        stored = await reading.read(workflow_id)
    return [decode(record.payload, path=workflow_id, offset=record.offset) for record in stored]


async def test_undeliverable_messages_are_skipped_journaled_and_replayed(
    journal_dir: Path,
) -> None:
    await plant(journal_dir, "c", undeliverable())
    await plant(journal_dir, "c", [event_message("item", "good", None, 0.0)])
    async with Runtime(store=store(journal_dir)) as runtime:
        assert await runtime.run(collector, 1, id="c") == ["good"]
        described = await runtime.describe("c")
    assert described.state is WorkflowState.COMPLETED
    assert described.skipped_messages == 5
    assert described.last_skip is not None
    assert described.last_skip.startswith("message 4: it cannot be read: its reason 'm'")
    assert described.unread_events == 0
    journal = await journal_of(journal_dir, "c")
    skips = [record for record in journal if record["k"] == records.SKIP]
    assert [skip["q"] for skip in skips] == [0, 1, 2, 3, 4]
    reasons = [skip["reason"] for skip in skips]
    assert reasons[0].startswith("it cannot be read: the record is not valid msgpack")
    assert "unknown kind 'telepathy'" in reasons[1]
    assert "event name 'n' or payload 'p' is missing" in reasons[2]
    assert f"over the journal's {RECORD_LIMIT}-byte record limit" in reasons[3]
    assert all(len(record_bytes) <= RECORD_LIMIT for record_bytes in map(encode, journal))
    events = [record for record in journal if record["k"] == records.EVENT]
    assert [(event["q"], event["p"]) for event in events] == [(5, "good")]

    before = (journal_dir / "c.journal").read_bytes()
    async with Runtime(store=store(journal_dir)) as runtime:  # a replay: the same path
        assert await runtime.run(collector, 1, id="c") == ["good"]
    assert (journal_dir / "c.journal").read_bytes() == before


async def test_a_skip_replays_where_it_was_taken_and_is_not_taken_twice(
    journal_dir: Path,
) -> None:
    async with Runtime(store=store(journal_dir)) as runtime:
        handle = await runtime.start(collector, 2, id="c")
        await runtime.send_event("c", "item", 1)
        await plant(journal_dir, "c", [b"\xc1"])
        await runtime.send_event("c", "item", 2)  # (the run pulls: 1, the skip, 2)
        assert await handle.result() == [1, 2]
    journal = await journal_of(journal_dir, "c")
    taken = [(record["k"], record["q"]) for record in journal if "q" in record]
    assert taken == [("event", 0), ("skip", 1), ("event", 2)]

    async with Runtime(store=store(journal_dir)) as runtime:  # unfinished: resumes by replay
        handle = await runtime.start(collector, 3, id="d")
        await runtime.send_event("d", "item", "a")
        await plant(journal_dir, "d", [encode({"k": "event", "t": 0.0})])

        async def skipped() -> bool:
            return (await runtime.describe("d")).skipped_messages == 1

        await runtime.send_event("d", "item", "b")
        await wait_until(skipped)
    async with Runtime(store=store(journal_dir)) as runtime:
        handle = await runtime.start(collector, 3, id="d")
        await runtime.send_event("d", "item", "c")
        assert await handle.result() == ["a", "b", "c"]
    journal = await journal_of(journal_dir, "d")
    assert [record["q"] for record in journal if record["k"] == records.SKIP] == [1]


async def test_a_skip_before_continue_as_new_is_not_skipped_again(journal_dir: Path) -> None:
    await plant(journal_dir, "r", [b"\xc1", event_message("item", "first", None, 0.0)])
    await plant(journal_dir, "r", [event_message("item", "second", None, 0.0)])
    async with Runtime(store=store(journal_dir)) as runtime:
        assert await runtime.run(relay, 0, id="r") == "second"
        described = await runtime.describe("r")
    assert described.generation == 1
    assert described.skipped_messages == 0  # (the skip is in generation 0's journal)
    journal = await journal_of(journal_dir, "r")
    assert journal[0]["q"] == 2
    assert [record["k"] for record in journal if "q" in record and record is not journal[0]] == [
        "event"
    ]


async def test_a_message_damaged_after_its_sync_is_skipped_and_the_next_delivered(
    journal_dir: Path,
) -> None:
    # Bit rot in an inbox: the frame a sync had covered no longer checks out. The inbox is
    # never rewritten, so the damaged message is skipped (journaled), the next one taken.
    await plant(
        journal_dir,
        "rot",
        [event_message("item", name, None, 0.0) for name in ("first", "rotten", "third")],
    )
    path = journal_dir / "rot.inbox"
    data = bytearray(path.read_bytes())
    second = data.index(b"rotten")
    data[second] ^= 0x20
    path.write_bytes(data)
    async with Runtime(store=store(journal_dir)) as runtime:
        assert await runtime.run(collector, 2, id="rot") == ["first", "third"]
        described = await runtime.describe("rot")
    assert described.skipped_messages == 1
    assert described.last_skip is not None
    assert "damaged" in described.last_skip
    assert path.read_bytes() == bytes(data), "the inbox is left as it is"
    kinds = [record["k"] for record in await journal_of(journal_dir, "rot")]
    assert kinds.count("skip") == 1
