"""Streams across continue_as_new, and a reader that reconnects far into a long stream.

A chat workflow that continues as new must not lose its stream to its readers: offsets
go on across generations (each start record hands on the counts), a live reader reads the
old generation's last values (kept by the store) before the new one's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._storage._directory import JournalDirectory
from durable._streams import StreamMarks, read_stream

pytestmark = pytest.mark.anyio

TOKENS = durable.Stream("tokens", str)


@durable.activity
async def answer(turn: int) -> None:
    for word in (f"a{turn}", f"b{turn}"):
        TOKENS.append(word)


@durable.workflow
async def chat(turn: int, turns: int) -> int:
    TOKENS.append(f"q{turn}")
    await answer(turn)
    if turn + 1 < turns:
        await durable.wait_for_event("next")
        durable.continue_as_new(turn + 1, turns)
    return turn


def expected(turns: int) -> list[str]:
    return [word for turn in range(turns) for word in (f"q{turn}", f"a{turn}", f"b{turn}")]


async def test_a_reader_follows_the_stream_across_generations(tmp_path: Path) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(chat, 0, 3, id="c")
        items: list[Any] = []

        async def read() -> None:
            async for item in runtime.read_stream("c", TOKENS):
                items.append(item)

        reader = asyncio.ensure_future(read())
        for seen in (3, 6):
            async with asyncio.timeout(10):
                while len(items) < seen:
                    await asyncio.sleep(0.01)
            await runtime.send_event("c", "next")
        assert await handle.result() == 2
        await asyncio.wait_for(reader, 10)  # (it ends with the last generation)
        assert [item.value for item in items] == expected(3)
        assert [item.offset for item in items] == list(range(9))
        # A reader that comes later resumes at an offset of the current generation...
        later = [item async for item in runtime.read_stream("c", TOKENS, 7)]
        assert [(item.offset, item.value) for item in later] == [(7, "a2"), (8, "b2")]
        # ... and the end of the stream is its end, whatever the generation.
        with pytest.raises(durable.InvalidStreamOffset):
            [item async for item in runtime.read_stream("c", TOKENS, 10)]


async def test_a_slow_reader_reads_a_generations_last_values_after_it_continued(
    tmp_path: Path,
) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(chat, 0, 2, id="s")
        store = JournalDirectory(tmp_path)
        try:
            reader = read_stream(store, "s", TOKENS, 0, poll_interval=0.01, page_bytes=64)
            first = await anext(reader)  # (it read the first page: q0 a0 b0, maybe less)
            await asyncio.sleep(0.1)
            await runtime.send_event("s", "next")  # the generation ends while it waits
            assert await handle.result() == 1
            rest = [item async for item in reader]
        finally:
            await store.close()
    assert [first.value] + [item.value for item in rest] == expected(2)
    assert [item.offset for item in rest] == list(range(1, 6))


async def test_a_reader_that_resumes_in_an_old_generation_reads_the_kept_one(
    tmp_path: Path,
) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(chat, 0, 3, id="k")
        for _ in range(2):
            async with asyncio.timeout(10):
                while (await runtime.describe("k")).state is not durable.WorkflowState.WAITING:
                    await asyncio.sleep(0.01)
            await runtime.send_event("k", "next")
        await handle.result()
        # Offset 4 is generation 1's: the store keeps the generation before the current one.
        items = [item async for item in runtime.read_stream("k", TOKENS, 4)]
        assert [item.offset for item in items] == list(range(4, 9))
        assert [item.value for item in items] == expected(3)[4:]
        # Offset 1 is generation 0's, which is gone: the reader starts at the oldest value
        # kept, and the offsets show what it missed.
        items = [item async for item in runtime.read_stream("k", TOKENS, 1)]
        assert [item.offset for item in items] == list(range(3, 9))


class CountingStore:
    """A store whose pages read are counted (a reader's cost, without timing it)."""

    def __init__(self, store: JournalDirectory) -> None:
        self.store = store
        self.pages = 0

    def location(self, name: str) -> str:
        return self.store.location(name)

    async def read_page(self, name: str, cursor: Any, max_bytes: int) -> Any:
        self.pages += 1
        return await self.store.read_page(name, cursor, max_bytes)


@durable.activity
async def many(count: int) -> None:
    for index in range(count):
        TOKENS.append(f"t{index}")


@durable.workflow
async def long_answer(count: int) -> None:
    await many(count)


async def test_a_reader_that_reconnects_far_into_a_stream_reads_on_from_a_mark(
    tmp_path: Path,
) -> None:
    count = 4_000
    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(long_answer, count, id="long")
    store = JournalDirectory(tmp_path)
    counting = CountingStore(store)
    marks = StreamMarks()
    try:

        async def read_from(offset: int) -> list[Any]:
            found = read_stream(counting, "long", TOKENS, offset, page_bytes=4096, marks=marks)  # type: ignore[arg-type]
            return [item async for item in found]

        counting.pages = 0
        first = await read_from(0)  # (a first reader reads it all, and leaves marks)
        assert [item.value for item in first[-2:]] == [f"t{count - 2}", f"t{count - 1}"]
        whole = counting.pages
        counting.pages = 0
        again = await read_from(count - 3)
        assert [(item.offset, item.value) for item in again] == [
            (offset, f"t{offset}") for offset in range(count - 3, count)
        ]
        assert counting.pages <= whole // 5  # read on from the last mark, not the start
        for offset in (1, 511, 512, 513, 2345, count - 1):  # (each exact, from any mark)
            items = await read_from(offset)
            assert items[0].offset == offset
            assert items[0].value == f"t{offset}"
            assert len(items) == count - offset
        with pytest.raises(durable.InvalidStreamOffset):  # (past the end: from a mark too)
            await read_from(count + 1)
        assert [item.offset for item in await read_from(count)] == []
    finally:
        await store.close()
