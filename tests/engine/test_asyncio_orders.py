"""Compositions that put awaitables in a set (as_completed, the sets asyncio.wait returns)
replay identically: a resumed run takes the same steps in the same order, although the
resuming process lays its objects out in memory differently (and sets of tasks and
coroutines iterate in an order that follows their addresses)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import JournalDirectory, Runtime
from durable._encoding import decode

pytestmark = pytest.mark.anyio

RAN: Counter[tuple[str, int]] = Counter()
PADDING: list[Any] = []  # objects allocated between calls: another process's memory layout
LAYOUT = {"pad": 0}
CALLS = 12


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()
    PADDING.clear()
    LAYOUT["pad"] = 0


def pad() -> None:
    for size in range(LAYOUT["pad"]):
        PADDING.append(bytearray(64 + 48 * size))
        PADDING.append([size] * (4 + size))


@durable.activity
async def charge(n: int) -> int:
    RAN["charge", n] += 1
    await asyncio.sleep(0)
    return n


@durable.activity
async def ship(n: int) -> int:
    RAN["ship", n] += 1
    return n


@durable.workflow
async def completed_in_turn() -> list[int]:
    calls = []
    for n in range(CALLS):
        calls.append(charge(n))
        pad()
    got = []
    for next_done in asyncio.as_completed(calls):
        got.append(await ship(await next_done))
    return got


@durable.workflow
async def over_the_done_set() -> list[int]:
    tasks = []
    for n in range(CALLS):
        tasks.append(asyncio.create_task(charge(n)))
        pad()
    done, _ = await asyncio.wait(tasks)
    return [await ship(task.result()) for task in done]


@durable.workflow
async def double(n: int) -> int:
    return 2 * n


@durable.workflow
async def children_in_turn() -> list[int]:
    calls = []
    for n in range(CALLS):
        calls.append(durable.run_child(double, n))
        pad()
    return [await ship(await next_done) for next_done in asyncio.as_completed(calls)]


@durable.workflow
async def sleeps_in_turn() -> list[int]:
    calls = []
    for n in range(CALLS):
        calls.append(durable.sleep(0.001 * (CALLS - n)))
        pad()
    got: list[int] = []
    for next_done in asyncio.as_completed(calls):
        await next_done
        got.append(await ship(len(got)))
    return got


async def records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Each record of the journal and the offset just past it."""
    async with JournalDirectory(path.parent) as store:
        stored = await store.read(path.stem)
    ends = [record.offset for record in stored[1:]] + [path.stat().st_size]
    return [
        (end, decode(record.payload, path=path, offset=record.offset))
        for record, end in zip(stored, ends, strict=True)
    ]


@pytest.mark.parametrize(
    ("workflow", "activities"),
    [
        (completed_in_turn, 2 * CALLS),
        (over_the_done_set, 2 * CALLS),
        (children_in_turn, CALLS),
        (sleeps_in_turn, CALLS),
    ],
)
async def test_a_run_resumed_from_any_record_takes_the_same_steps(
    tmp_path: Path, workflow: Any, activities: int
) -> None:
    async with Runtime(tmp_path / "first") as runtime:
        first = await runtime.run(workflow, id="w")
    journal = tmp_path / "first" / "w.journal"
    data = journal.read_bytes()
    boundaries = await records(journal)
    for index, (end, _) in enumerate(boundaries[:-1]):
        recorded = {
            (record["a"], record["s"])
            for _, record in boundaries[: index + 1]
            if record["k"] == "done" and record["a"] in ("charge", "ship")
        }
        cut = tmp_path / f"cut-{index}"
        cut.mkdir(mode=0o700)
        (cut / "w.journal").write_bytes(data[:end])
        (cut / "w.journal").chmod(0o600)
        RAN.clear()
        LAYOUT["pad"] = 1 + index % 4  # the resuming process's objects lie elsewhere
        async with Runtime(cut) as runtime:
            resumed = await runtime.run(workflow, id="w")
        if len(recorded) >= activities - CALLS:  # the order is the journal's
            assert resumed == first, f"after a kill at record {index}"
        ran = sum(RAN.values()) + len(recorded)
        assert ran == activities, f"a recorded step ran again after record {index}"
