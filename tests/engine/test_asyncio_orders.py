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
from hypothesis import given, settings
from hypothesis import strategies as st

import durable
from durable import JournalDirectory, Runtime
from durable._encoding import decode, encode
from durable._engine import _records
from durable._engine._loop import TASK_SALT_MASK, TASK_SALT_SHIFT

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


# -- tasks' hashes: the run's salt above the creation count -----------------------------------


class _Hashing:
    """Hashes as given, equal only to itself (as a task)."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def __hash__(self) -> int:
        return self.value


@given(
    counts=st.lists(st.integers(0, 20_000), unique=True, max_size=400),
    salt=st.integers(0, TASK_SALT_MASK),
)
@settings(max_examples=300, deadline=None)
def test_the_salt_leaves_every_set_s_iteration_order_as_the_bare_counts(
    counts: list[int], salt: int
) -> None:
    """Journals recorded before the salt replay alike: a set iterates as it did."""
    bare = [item.value for item in {_Hashing(count) for count in counts}]
    salted = [
        item.value for item in {_Hashing(count + (salt << TASK_SALT_SHIFT)) for count in counts}
    ]
    assert [value & ((1 << TASK_SALT_SHIFT) - 1) for value in salted] == bare


async def test_two_runs_tasks_do_not_share_hashes(tmp_path: Path) -> None:
    """asyncio keeps every task in one set: two runs' first tasks must not collide there."""

    @durable.workflow(name="hashes_of_tasks")
    async def hashes() -> list[int]:
        current = asyncio.current_task()
        assert current is not None
        other = asyncio.get_running_loop().create_task(asyncio.sleep(0))
        await other
        return [hash(current), hash(other)]

    async with Runtime(tmp_path) as runtime:
        first = await runtime.run(hashes, id="h-1")
        second = await runtime.run(hashes, id="h-2")
    low = (1 << TASK_SALT_SHIFT) - 1
    assert [value & low for value in first] == [value & low for value in second] == [0, 1]
    assert first[0] != second[0]  # (each run's salt: its journaled seed's low 20 bits)


HASHES: list[int] = []


@durable.workflow(name="hash_of_a_task")
async def task_hash() -> None:
    await charge(1)
    current = asyncio.current_task()
    assert current is not None
    HASHES.append(hash(current))


async def test_a_new_journal_has_a_salt_and_one_without_replays_with_none(
    tmp_path: Path,
) -> None:
    """Journals from before `hs`: their tasks hash by the bare count, as when recorded."""
    HASHES.clear()
    async with Runtime(tmp_path) as runtime:
        await runtime.run(task_hash, id="salted")
    start = (await records(tmp_path / "salted.journal"))[0][1]
    assert [start["hs"] << TASK_SALT_SHIFT] == HASHES
    assert 0 <= start["hs"] <= TASK_SALT_MASK
    async with JournalDirectory(tmp_path) as store:  # (a start record as written before hs)
        journal = await store.open("older")
        await journal.append(encode(_records.start("hash_of_a_task", "older", [], 1.0, 77)))
        await journal.close()
    async with Runtime(tmp_path, workflows=[task_hash]) as runtime:
        await runtime.run(task_hash, id="older")
    assert HASHES[1] == 0
    assert "hs" not in (await records(tmp_path / "older.journal"))[0][1]
