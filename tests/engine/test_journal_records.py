"""What the engine writes per step (format 2), and that format 1 journals still replay."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import Runtime
from durable._encoding import decode, encode
from durable._engine._replay import digest_of
from durable._storage._journal_opening import parse
from tests.conftest import journal_bytes

pytestmark = pytest.mark.anyio


def records_of(path: Path) -> list[dict[str, Any]]:
    found = parse(path.read_bytes(), path)
    assert found.torn is None
    return [decode(record.payload, path=path, offset=record.offset) for record in found.records]


async def test_a_step_that_finishes_at_once_costs_one_record(journal_dir: Path) -> None:
    @durable.activity(name="double")
    async def double(value: int) -> int:
        return 2 * value

    @durable.workflow
    async def flow() -> int:
        return sum([await double(index) for index in range(5)])

    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="quick") == 20
    written = records_of(journal_dir / "quick.journal")
    assert Counter(record["k"] for record in written) == {"start": 1, "done": 5, "end": 1}
    assert written[0]["v"] == 2
    first = written[1]
    digest = digest_of(encode([[0], {}]))
    assert (first["s"], first["a"], first["d"], first["n"]) == (0, "double", digest, 1)
    assert first["r"] == 0


async def test_a_running_attempt_is_journaled_as_intent_before_its_outcome(
    journal_dir: Path,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @durable.activity
    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    @durable.workflow
    async def flow() -> str:
        return await slow()

    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(flow, id="slow")
        await started.wait()
        await asyncio.sleep(0.01)
        kinds = [record["k"] for record in records_of(journal_dir / "slow.journal")]
        assert kinds == ["start", "sched"], "a reader sees which activity is running"
        release.set()
        assert await handle.result() == "done"
    kinds = [record["k"] for record in records_of(journal_dir / "slow.journal")]
    assert kinds == ["start", "sched", "done", "end"]


async def test_a_format_1_journal_replays_without_running_recorded_steps(
    journal_dir: Path,
) -> None:
    ran: list[int] = []

    @durable.activity(name="step")
    async def step(index: int) -> int:
        ran.append(index)
        return index * 10

    @durable.workflow(name="old")
    async def old(count: int) -> list[int]:
        return [await step(index) for index in range(count)]

    start = {"k": "start", "v": 1, "wf": "old", "id": "old", "args": [3], "t": 1.0, "seed": 7}
    payloads = [encode(start)]
    for index in range(2):  # format 1: "sched" first, "done" without the activity's name
        digest = digest_of(encode([[index], {}]))
        sched = {"k": "sched", "s": index, "a": "step", "d": digest, "n": 1, "t": 2.0}
        payloads.append(encode(sched))
        payloads.append(encode({"k": "done", "s": index, "r": index * 10, "t": 3.0}))
    journal_dir.mkdir(mode=0o700)
    (journal_dir / "old.journal").write_bytes(journal_bytes(*payloads))
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(old, 3, id="old") == [0, 10, 20]
    assert ran == [2]


async def test_a_done_record_naming_no_activity_is_refused_untouched(journal_dir: Path) -> None:
    @durable.activity
    async def step() -> int:
        return 1

    @durable.workflow(name="broken")
    async def broken() -> int:
        return await step()

    start = encode({"k": "start", "v": 2, "wf": "broken", "id": "b", "args": [], "t": 1, "seed": 7})
    orphan = encode({"k": "done", "s": 0, "r": 1, "t": 2.0})
    journal_dir.mkdir(mode=0o700)
    path = journal_dir / "b.journal"
    path.write_bytes(journal_bytes(start, orphan))
    before = path.read_bytes()
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.JournalCorrupted, match="names no activity"):
            await runtime.run(broken, id="b")
    assert path.read_bytes() == before
