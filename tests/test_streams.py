"""Streams: appends from workflow code and activities, readers that follow them live.

What a reader sees after a replay, a retry and a crash; reconnecting at an offset; bad
input (values that do not encode, unknown runs and streams, offsets past the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._engine import _records as records
from durable._storage._directory import JournalDirectory
from durable._storage._pages import START
from durable._streams import read_stream
from durable.testing import CrashPoint, TestRuntime

pytestmark = pytest.mark.anyio

TOKENS = durable.Stream("tokens", str)


@dataclass
class Progress:
    done: int
    of: int


PROGRESS = durable.Stream("progress", Progress)


@durable.activity
async def speak(words: str) -> str:
    for word in words.split():
        TOKENS.append(word)
        await asyncio.sleep(0)
    return words


@durable.activity
def speak_in_a_thread(words: str) -> str:
    for word in words.split():
        TOKENS.append(word.upper())
    return words


@durable.workflow
async def chat(words: str) -> str:
    TOKENS.append("<start>")
    said = await speak(words)
    await speak_in_a_thread(words)
    for done in range(1, 3):
        PROGRESS.append(Progress(done, 2))
    TOKENS.append("<end>")
    return said


async def read_all(
    runtime: durable.Runtime, workflow_id: str, stream: Any, offset: int = 0
) -> list[Any]:
    return [item async for item in runtime.read_stream(workflow_id, stream, offset)]


async def test_workflow_and_activity_values_reach_the_reader_in_order(tmp_path: Path) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(chat, "a b", id="c") == "a b"
        items = await read_all(runtime, "c", TOKENS)
        progress = await read_all(runtime, "c", PROGRESS)
    assert [item.value for item in items] == ["<start>", "a", "b", "A", "B", "<end>"]
    assert [item.offset for item in items] == list(range(6))
    assert [(item.step, item.attempt) for item in items] == [
        (0, None),
        (1, 1),
        (1, 1),
        (2, 1),
        (2, 1),
        (5, None),
    ]
    assert [item.value for item in progress] == [Progress(1, 2), Progress(2, 2)]
    assert not any(item.restarted for item in items)


async def test_a_reader_resumes_exactly_at_an_offset(tmp_path: Path) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(chat, "a b c", id="c")
        everything = [item.value for item in await read_all(runtime, "c", "tokens")]
        for offset in range(len(everything) + 1):
            rest = await read_all(runtime, "c", "tokens", offset)
            assert [item.value for item in rest] == everything[offset:]
            assert [item.offset for item in rest] == list(range(offset, len(everything)))


async def test_an_activity_s_values_reach_the_reader_before_it_returns(tmp_path: Path) -> None:
    release = asyncio.Event()

    @durable.activity
    async def generate() -> int:
        for token in ("one", "two", "three"):
            TOKENS.append(token)
        await release.wait()  # the reader must have them all by now
        return 3

    @durable.workflow
    async def answer() -> int:
        return await generate()

    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(answer, id="a")
        seen = []
        async for item in runtime.read_stream("a", TOKENS):
            seen.append(item.value)
            if len(seen) == 3:
                assert not handle.done()
                release.set()
        assert seen == ["one", "two", "three"]
        assert await handle.result() == 3


async def test_a_reader_follows_a_running_workflow_until_it_ends(tmp_path: Path) -> None:
    @durable.workflow
    async def ticking(count: int) -> int:
        for tick in range(count):
            TOKENS.append(str(tick))
            await durable.wait_for_event("tick")
        return count

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.start(ticking, 3, id="t")
        reader = runtime.read_stream("t", TOKENS)
        seen = []
        for _ in range(3):
            item = await asyncio.wait_for(anext(reader), 10)
            seen.append(item.value)
            await runtime.send_event("t", "tick")
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(reader), 10)
    assert seen == ["0", "1", "2"]


async def test_a_replay_neither_duplicates_nor_loses_workflow_values(tmp_path: Path) -> None:
    @durable.workflow
    async def waits() -> str:
        TOKENS.append("before")
        await speak("x y")
        payload: str = await durable.wait_for_event("go")
        TOKENS.append(payload)
        return payload

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.start(waits, id="w")
        reader = runtime.read_stream("w", TOKENS)
        assert [(await anext(reader)).value for _ in range(3)] == ["before", "x", "y"]
    async with durable.Runtime(tmp_path) as runtime:  # a restart: the run replays
        handle = await runtime.start(waits, id="w")
        await runtime.send_event("w", "go", "after")
        assert await handle.result() == "after"
        items = await read_all(runtime, "w", TOKENS)
    assert [item.value for item in items] == ["before", "x", "y", "after"]
    journal = records.read_journal(await JournalDirectory(tmp_path).read("w"), path="w")
    assert sum(record["k"] == records.STREAM for record in journal) == 2


async def test_a_retried_attempt_s_values_follow_the_failed_one_s_marked(tmp_path: Path) -> None:
    tries = []

    @durable.activity(retry=durable.RetryPolicy(initial_interval=0.01, maximum_attempts=3))
    async def flaky() -> None:
        tries.append(1)
        TOKENS.append(f"try {len(tries)}")
        TOKENS.append("more")
        if len(tries) < 2:
            raise ConnectionError("dropped")

    @durable.workflow
    async def uses_flaky() -> None:
        await flaky()

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(uses_flaky, id="f")
        items = await read_all(runtime, "f", TOKENS)
    assert [(item.value, item.attempt, item.restarted) for item in items] == [
        ("try 1", 1, False),
        ("more", 1, False),
        ("try 2", 2, True),
        ("more", 2, False),
    ]


async def test_an_attempt_rerun_after_a_crash_is_marked_restarted(tmp_path: Path) -> None:
    # Records: start, emit, emit, done. Die just before the done: the attempt ran, its
    # values are in the journal, and the resumed run runs the same attempt again.
    async with TestRuntime(tmp_path, crash=CrashPoint(3, late=True)) as runtime:
        assert await runtime.run(chat_one, id="k") == "p q"
        items = await read_all(runtime, "k", TOKENS)
    assert [(item.value, item.attempt, item.restarted) for item in items] == [
        ("p", 1, False),
        ("q", 1, False),
        ("p", 1, True),
        ("q", 1, False),
    ]


@durable.workflow
async def chat_one() -> str:
    return await speak("p q")


# --- bad input -------------------------------------------------------------------------


async def test_a_value_that_does_not_encode_raises_at_the_append_and_writes_nothing(
    tmp_path: Path,
) -> None:
    @durable.activity
    async def bad_activity() -> str:
        try:
            TOKENS.append(object())  # type: ignore[arg-type]
        except durable.SerializationError as error:
            return str(error)
        return "appended?"

    @durable.workflow
    async def bad() -> list[str]:
        try:
            TOKENS.append(object())  # type: ignore[arg-type]
        except durable.SerializationError as error:
            caught = str(error)
        return [caught, await bad_activity()]

    async with durable.Runtime(tmp_path) as runtime:
        from_workflow, from_activity = await runtime.run(bad, id="b")
        with pytest.raises(durable.StreamNotFound):
            await read_all(runtime, "b", TOKENS)
    assert "stream 'tokens'" in from_workflow
    assert "stream 'tokens' of activity" in from_activity
    journal = records.read_journal(await JournalDirectory(tmp_path).read("b"), path="b")
    assert not any(record["k"] in records.STREAMED for record in journal)


async def test_an_activity_that_lets_an_append_s_error_out_fails_as_itself(tmp_path: Path) -> None:
    @durable.activity(retry=durable.RetryPolicy(maximum_attempts=1))
    async def lets_it_out() -> None:
        TOKENS.append({1, object()})  # type: ignore[arg-type]

    @durable.workflow
    async def fails() -> None:
        await lets_it_out()

    async with durable.Runtime(tmp_path) as runtime:
        with pytest.raises(durable.WorkflowFailed) as failed:
            await runtime.run(fails, id="e")
    assert "stream 'tokens'" in str(failed.value.__cause__)
    assert "result of activity" not in str(failed.value.__cause__)


async def test_unknown_runs_streams_and_offsets_are_refused_clearly(tmp_path: Path) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(chat, "a", id="c")
        with pytest.raises(durable.WorkflowNotFound, match="'nobody'"):
            await read_all(runtime, "nobody", TOKENS)
        with pytest.raises(durable.StreamNotFound, match="its streams: 'progress', 'tokens'"):
            await read_all(runtime, "c", "token")
        assert await read_all(runtime, "c", TOKENS, 4) == []  # (at the end: nothing more)
        with pytest.raises(durable.InvalidStreamOffset, match="holds 4 values"):
            await read_all(runtime, "c", TOKENS, 5)
        with pytest.raises(durable.InvalidStreamOffset, match="int >= 0"):
            await read_all(runtime, "c", TOKENS, -1)
        with pytest.raises(ValueError, match="stream name"):
            durable.Stream("")
    with pytest.raises(durable.OutsideWorkflowError, match="read a stream with"):
        TOKENS.append("x")


async def test_an_offset_past_the_end_of_a_running_stream_waits_for_it(tmp_path: Path) -> None:
    @durable.workflow
    async def slow() -> None:
        TOKENS.append("0")
        await durable.wait_for_event("go")
        TOKENS.append("1")

    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(slow, id="s")
        reader = runtime.read_stream("s", TOKENS, 1)
        waiting = asyncio.ensure_future(anext(reader))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await runtime.send_event("s", "go")
        assert (await asyncio.wait_for(waiting, 10)).value == "1"
        await handle.result()


async def test_a_long_stream_is_read_a_page_at_a_time(tmp_path: Path) -> None:
    @durable.activity
    async def many(count: int) -> None:
        for index in range(count):
            TOKENS.append(f"{index:05d}" + "x" * 100)

    @durable.workflow
    async def long() -> None:
        await many(2000)

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(long, id="l")
        store = JournalDirectory(tmp_path)
        pages, cursor, largest = 0, START, 0
        while True:
            page = await store.read_page("l", cursor, 16 * 1024)
            pages, cursor = pages + 1, page.cursor
            largest = max(largest, sum(len(record.payload) for record in page.records))
            if not page.more:
                break
        assert pages > 10
        assert largest <= 16 * 1024
        started = time.monotonic()
        items = [item.value async for item in read_stream(store, "l", TOKENS, 0, page_bytes=4096)]
        assert len(items) == 2000
        assert items[1999].startswith("01999")
        assert time.monotonic() - started < 10


async def test_appending_to_another_stream_on_replay_is_a_divergence(tmp_path: Path) -> None:
    @durable.workflow(name="appender")
    async def before() -> None:
        durable.Stream("one").append(1)
        await durable.wait_for_event("go")

    @durable.workflow(name="appender")
    async def after() -> None:
        durable.Stream("two").append(1)
        await durable.wait_for_event("go")

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.start(before, id="d")
        reader = runtime.read_stream("d", "one")
        assert (await anext(reader)).value == 1
    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(after, id="d")
        with pytest.raises(durable.NonDeterminismError, match="an append to stream 'one'"):
            await handle.result()


async def test_a_reader_in_this_process_is_woken_at_once_not_at_its_next_poll(
    tmp_path: Path,
) -> None:
    @durable.workflow
    async def steps() -> None:
        TOKENS.append("first")
        await durable.wait_for_event("go")
        await speak_in_a_thread("from a thread")  # (appends handed to the loop)
        await durable.wait_for_event("go")
        await speak("from the loop")

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.start(steps, id="n")
        reader = runtime.read_stream("n", TOKENS, poll_interval=3600)  # (never polls)
        assert (await asyncio.wait_for(anext(reader), 10)).value == "first"
        await runtime.send_event("n", "go")
        got = [(await asyncio.wait_for(anext(reader), 10)).value for _ in range(3)]
        await runtime.send_event("n", "go")
        got += [(await asyncio.wait_for(anext(reader), 10)).value for _ in range(3)]
    assert got == ["FROM", "A", "THREAD", "from", "the", "loop"]


async def test_a_value_over_the_record_limit_raises_at_the_append_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    limit = 4096

    @durable.activity(retry=durable.RetryPolicy(maximum_attempts=1))
    async def big(size: int) -> str:
        try:
            TOKENS.append("x" * size)
        except durable.RecordTooLarge as error:
            return f"refused {error.size}"
        return "written"

    @durable.workflow
    async def sizes() -> list[str]:
        found = [await big(limit - 200), await big(limit + 10)]
        try:
            TOKENS.append("y" * (limit + 10))
        except durable.RecordTooLarge:
            found.append("refused in the workflow")
        TOKENS.append("z" * (limit - 200))  # (near the limit: fits)
        return found

    store = JournalDirectory(tmp_path, max_record_size=limit)
    async with durable.Runtime(store=store) as runtime:
        found = await runtime.run(sizes, id="big")
        items = await read_all(runtime, "big", TOKENS)
    assert found[0] == "written"
    assert found[1].startswith("refused ")
    assert found[2] == "refused in the workflow"
    assert [len(item.value) for item in items] == [limit - 200, limit - 200]


@pytest.mark.parametrize("name", ["", "x" * 201, None, 5])
def test_a_bad_stream_name_is_refused_at_once(name: Any) -> None:
    with pytest.raises(ValueError, match="stream name"):
        durable.Stream(name)


async def test_any_text_of_200_characters_is_a_stream_name(tmp_path: Path) -> None:
    names = ["../../etc/passwd", "a\x00b", "é" * 200, "<script>"]

    @durable.workflow
    async def odd() -> None:
        for name in names:
            durable.Stream(name).append(name)

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.run(odd, id="odd")
        for name in names:
            assert [item.value for item in await read_all(runtime, "odd", name)] == [name]
    assert sorted(path.name for path in tmp_path.iterdir() if "odd" in path.name) == ["odd.journal"]


async def test_a_reader_cancelled_mid_stream_leaves_no_file_open(tmp_path: Path) -> None:
    @durable.workflow
    async def endless() -> None:
        for index in range(50):
            TOKENS.append(str(index))
        await durable.wait_for_event("stop")

    def open_files() -> int:
        # (not the name locks' folder and files: the workflow's unloading opens them once)
        count = 0
        for fd in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError):  # (the listing's own descriptor, gone)
                count += "/.locks" not in str(fd.readlink())
        return count

    async with durable.Runtime(tmp_path) as runtime:
        await runtime.start(endless, id="e")
        before = open_files()
        for _ in range(20):
            seen: list[int] = []

            async def read(seen: list[int]) -> None:
                async for item in runtime.read_stream("e", TOKENS):
                    seen.append(item.offset)

            task = asyncio.ensure_future(read(seen))
            async with asyncio.timeout(10):
                while len(seen) < 50:  # (then it waits for the next value)
                    await asyncio.sleep(0.01)
            task.cancel()  # the reader goes away mid-stream
            with pytest.raises(asyncio.CancelledError):
                await task
        assert open_files() <= before
        assert not runtime._stream_news._readers
        await runtime.cancel("e")
