"""Streams on PostgresStore: a reader in another runtime (as on another host) gets an
activity's values as they are committed, before it returns, and reads a long stream in
pages."""

from __future__ import annotations

import asyncio

import pytest

import durable
from durable import PostgresStore, Runtime
from durable._storage._pages import START
from durable._storage._postgres import PAGE_RECORDS

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKENS = durable.Stream("tokens", str)
gate: dict[str, asyncio.Event] = {}


@durable.activity
async def generate(count: int) -> int:
    for index in range(count):
        TOKENS.append(f"t{index}")
    await gate["open"].wait()
    return count


@durable.workflow
async def answer(count: int) -> int:
    TOKENS.append("start")
    return await generate(count)


async def test_a_reader_elsewhere_follows_an_activity_s_values_live(postgres_dsn: str) -> None:
    gate["open"] = asyncio.Event()
    count = PAGE_RECORDS + 20  # (more than a page)
    async with Runtime(store=PostgresStore(postgres_dsn)) as running:
        handle = await running.start(answer, count, id="llm")
        async with Runtime(store=PostgresStore(postgres_dsn)) as reading:
            seen: list[str] = []
            while not seen:  # (until its start record is committed, it is not found)
                try:
                    async for item in reading.read_stream("llm", TOKENS):
                        seen.append(item.value)
                        if len(seen) == count + 1:
                            assert not handle.done()  # committed as made, not at the end
                            gate["open"].set()
                except durable.WorkflowNotFound:
                    await asyncio.sleep(0.01)
            assert seen == ["start", *(f"t{index}" for index in range(count))]
            assert await handle.result() == count
            again = [item.value async for item in reading.read_stream("llm", TOKENS, count)]
            assert again == [f"t{count - 1}"]
            with pytest.raises(durable.InvalidStreamOffset):
                [item async for item in reading.read_stream("llm", TOKENS, count + 2)]
            with pytest.raises(durable.WorkflowNotFound):
                [item async for item in reading.read_stream("nobody", TOKENS)]
        store = PostgresStore(postgres_dsn)
        async with store:
            first = await store.read_page("llm", START, 1 << 20)
            assert len(first.records) == PAGE_RECORDS
            assert first.more
            rest = await store.read_page("llm", first.cursor, 1 << 20)
            assert not rest.more
            assert rest.records[0].offset == PAGE_RECORDS


@durable.workflow
async def turns(turn: int, last: int) -> int:
    TOKENS.append(f"q{turn}")
    TOKENS.append(f"a{turn}")
    if turn < last:
        await durable.wait_for_event("next")
        durable.continue_as_new(turn + 1, last)
    return turn


async def test_a_reader_elsewhere_follows_the_stream_across_generations(
    postgres_dsn: str,
) -> None:
    async with Runtime(store=PostgresStore(postgres_dsn)) as running:
        handle = await running.start(turns, 0, 2, id="chat")
        async with Runtime(store=PostgresStore(postgres_dsn)) as reading:
            seen: list[tuple[int, str]] = []

            async def read() -> None:
                async for item in reading.read_stream("chat", TOKENS, poll_interval=0.01):
                    seen.append((item.offset, item.value))

            reader = asyncio.ensure_future(read())
            for count in (2, 4):
                async with asyncio.timeout(20):
                    while len(seen) < count:
                        await asyncio.sleep(0.01)
                await running.send_event("chat", "next")
            assert await handle.result() == 2
            await asyncio.wait_for(reader, 20)
            words = [f"{kind}{turn}" for turn in range(3) for kind in "qa"]
            assert seen == list(enumerate(words))
            # Offset 3 is generation 1's, the one PostgreSQL keeps before the current one.
            again = [item.value async for item in reading.read_stream("chat", TOKENS, 3)]
            assert again == words[3:]
