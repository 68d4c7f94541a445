"""Sending: a message no journal could hold, or one past the inbox's bound, is refused.

Refused at send time with a durable error and nothing written, so no sender can leave a
workflow a message it would fail on at every resume (the inbox is append-only).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import InboxFull, JournalDirectory, MessageTooLarge, Runtime, WorkflowState
from durable._engine._inbox_cursor import MESSAGE_MARGIN, event_message
from durable._storage import _inbox as inbox
from durable._storage._frames import DEFAULT_MAX_RECORD_SIZE
from durable._storage._inbox import INBOX_SUFFIX
from durable._storage._inbox_news import NEWS_FILE
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio


@durable.workflow(name="collector")
async def collector(count: int) -> list[Any]:
    return [await durable.wait_for_event("item") for _ in range(count)]


async def waiting_workflow(directory: Path, workflow_id: str, count: int = 1) -> None:
    """Start a workflow that waits for events, then let go of it (nobody runs it now)."""
    async with Runtime(directory) as runtime:
        await runtime.start(collector, count, id=workflow_id)

        async def waiting() -> bool:
            return (await runtime.describe(workflow_id)).state is WorkflowState.WAITING

        await wait_until(waiting)


async def test_an_event_its_journal_could_never_hold_is_refused_and_nothing_written(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(collector, 1, id="c")
        huge = b"x" * (65 * 1024 * 1024)
        with pytest.raises(MessageTooLarge) as refused:
            await runtime.send_event("c", "item", huge)
        error = refused.value
        assert error.workflow_id == "c"
        assert error.limit == DEFAULT_MAX_RECORD_SIZE - MESSAGE_MARGIN
        assert error.size > len(huge)
        assert "'c'" in str(error)
        assert str(error.limit) in str(error)
        assert "send a reference" in str(error)
        assert isinstance(error, ValueError)
        with pytest.raises(MessageTooLarge):
            await runtime.cancel("c", "r" * (65 * 1024 * 1024))
        assert not (journal_dir / "c.inbox").exists()
        assert await runtime.send_event("c", "item", "small")
        assert await handle.result() == ["small"]


async def test_the_largest_message_a_send_accepts_is_journaled(journal_dir: Path) -> None:
    limit = 4096
    size = limit - MESSAGE_MARGIN
    event_id = "e" * 100
    padding = next(  # (the payload that makes the encoded message exactly `size` bytes)
        n for n in range(size) if len(event_message("item", b"x" * n, event_id, 0.0)) == size
    )
    store = JournalDirectory(journal_dir, max_record_size=limit)
    async with Runtime(store=store) as runtime:
        handle = await runtime.start(collector, 1, id="c")
        with pytest.raises(MessageTooLarge):
            await runtime.send_event("c", "item", b"x" * (padding + 1), event_id=event_id)
        assert await runtime.send_event("c", "item", b"x" * padding, event_id=event_id)
        assert await handle.result() == [b"x" * padding]
        assert (await runtime.describe("c")).skipped_messages == 0


async def test_an_inbox_is_bounded_by_the_messages_its_runner_has_not_taken(
    journal_dir: Path,
) -> None:
    await waiting_workflow(journal_dir, "c", count=4)
    async with Runtime(journal_dir, inbox_max_messages=3) as runtime:  # (it runs nothing)
        assert await runtime.send_event("c", "item", 0)
        assert await runtime.send_event("c", "item", 1)
        assert await runtime.send_event("c", "item", 2, event_id="two")
        inbox = (journal_dir / "c.inbox").read_bytes()
        with pytest.raises(InboxFull) as refused:
            await runtime.send_event("c", "item", 3)
        error = refused.value
        assert (error.workflow_id, error.pending, error.max_messages) == ("c", 3, 3)
        assert "'c'" in str(error)
        assert "Run or resume the workflow" in str(error)
        assert not await runtime.send_event("c", "item", 2, event_id="two")  # (a duplicate)
        assert (journal_dir / "c.inbox").read_bytes() == inbox  # nothing written
    async with Runtime(journal_dir, inbox_max_messages=3) as runtime:  # it takes them
        handle = await runtime.start(collector, 4, id="c")

        async def taken() -> bool:
            return (await runtime.describe("c")).unread_events == 0

        await wait_until(taken)
        # Only what waits counts: the inbox holds 3 messages, all taken, and takes more.
        assert await runtime.send_event("c", "item", 3)
        assert await handle.result() == [0, 1, 2, 3]
    async with Runtime(journal_dir, inbox_max_messages=3) as runtime:  # from the journal
        await waiting_workflow(journal_dir, "d", count=9)
        for number in range(3):
            assert await runtime.send_event("d", "item", number)
        handle = await runtime.start(collector, 9, id="d")

        async def taken_d() -> bool:
            return (await runtime.describe("d")).unread_events == 0

        await wait_until(taken_d)
        for number in range(3, 9):  # (a run here takes each at once; the sends wait for
            assert await runtime.send_event("d", "item", number)  # that, or they could
            await wait_until(taken_d)  # outrun it past the bound of 3)
        assert await handle.result() == list(range(9))


async def test_the_byte_bound_and_the_cancellation_reserve(journal_dir: Path) -> None:
    await waiting_workflow(journal_dir, "c", count=3)
    async with Runtime(journal_dir, inbox_max_messages=2, inbox_max_bytes=1000) as runtime:
        with pytest.raises(MessageTooLarge) as refused:  # (no inbox could ever hold it)
            await runtime.send_event("c", "item", b"x" * 1000)
        assert refused.value.limit == 1000
        assert await runtime.send_event("c", "item", b"x" * 600)
        with pytest.raises(InboxFull) as full:
            await runtime.send_event("c", "item", b"x" * 600)
        assert full.value.pending_bytes > 600
        assert await runtime.send_event("c", "item", 1)
        with pytest.raises(InboxFull):
            await runtime.send_event("c", "item", 2)
        await runtime.cancel("c", "flooded")  # (cancellations have a reserve past the bound)
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowCancelled):
            await runtime.run(collector, 3, id="c")


async def test_a_duplicate_check_passes_over_an_undecodable_message(journal_dir: Path) -> None:
    await waiting_workflow(journal_dir, "c", count=2)
    async with JournalDirectory(journal_dir) as store:
        await store.post("c", b"\xc1")
    async with Runtime(journal_dir) as runtime:
        assert await runtime.send_event("c", "item", 1, event_id="one")
        assert not await runtime.send_event("c", "item", 1, event_id="one")
        handle = await runtime.start(collector, 2, id="c")
        assert await runtime.send_event("c", "item", 2, event_id="two")
        assert await handle.result() == [1, 2]
        described = await runtime.describe("c")
    assert described.skipped_messages == 1


def test_inbox_bounds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inbox_max_messages"):
        JournalDirectory(tmp_path, inbox_max_messages=0)
    with pytest.raises(ValueError, match="inbox_max_bytes"):
        Runtime(tmp_path, inbox_max_bytes=-1)


class CountingDirectory(JournalDirectory):
    """A journal directory that records which inboxes its runtime's poller looked at."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.polls: list[list[str]] = []

    async def inbox_sizes(self, names: list[str]) -> dict[str, int]:
        self.polls.append(list(names))
        return await super().inbox_sizes(names)


async def waiting(runtime: Runtime, workflow_id: str) -> bool:
    return (await runtime.describe(workflow_id)).state is WorkflowState.WAITING


async def polled(store: CountingDirectory, times: int) -> bool:
    return len(store.polls) >= times


async def test_the_poller_looks_only_at_inboxes_the_news_names(journal_dir: Path) -> None:
    store = CountingDirectory(journal_dir)
    async with Runtime(store=store, event_poll_interval=0.01) as holder:
        handles = [await holder.start(collector, 1, id=f"waits-{index}") for index in range(20)]
        await wait_until(lambda: polled(store, 2))  # (the first poll looks at all 20)
        async with Runtime(journal_dir) as sender:  # (as another process would: by the inbox)
            await sender.send_event("waits-7", "item", "hello")
        assert await handles[7].result() == ["hello"]
        partial = [names for names in store.polls[1:] if len(names) < 20]
        assert ["waits-7"] in partial  # the news named it; nothing else was looked at
        assert all(names == ["waits-7"] for names in partial)
        for handle in handles[:7] + handles[8:]:
            await handle.cancel()


async def test_a_message_without_news_is_still_found_by_the_full_poll(journal_dir: Path) -> None:
    """A sender of an older durable writes no news: every FULL_POLL_EVERY polls find it."""
    store = CountingDirectory(journal_dir)
    async with Runtime(store=store, event_poll_interval=0.005) as holder:
        handle = await holder.start(collector, 1, id="old-sender")
        await wait_until(lambda: waiting(holder, "old-sender"))  # (live: its own pull done)
        await wait_until(lambda: polled(store, 1))
        directory_fd = os.open(journal_dir, os.O_RDONLY)
        try:  # the inbox append alone, as a sender that writes no news
            path = journal_dir / f"old-sender{INBOX_SUFFIX}"
            inbox.post(path, event_message("item", "late", None, time.time()), directory_fd)
        finally:
            os.close(directory_fd)
        assert await handle.result() == ["late"]  # (found with no news: by a full poll)
        assert not (journal_dir / NEWS_FILE).exists()


class SameSizeDirectory(CountingDirectory):
    """Reports one size for every inbox: a new message that leaves it where it was seen."""

    async def inbox_sizes(self, names: list[str]) -> dict[str, int]:
        await super().inbox_sizes(names)
        return dict.fromkeys(names, 100)


async def test_a_workflow_the_news_names_is_told_even_if_its_inbox_size_looks_unchanged(
    journal_dir: Path,
) -> None:
    store = SameSizeDirectory(journal_dir)
    async with Runtime(store=store, event_poll_interval=0.01) as holder:
        handle = await holder.start(collector, 1, id="same-size")
        await wait_until(lambda: polled(store, 3))  # (seen: 100, already)
        async with Runtime(journal_dir) as sender:
            await sender.send_event("same-size", "item", "through the news")
        async with asyncio.timeout(0.2):  # (well before the full poll, 30 polls on)
            assert await handle.result() == ["through the news"]


class OlderProtocolStore:
    """A store written against the protocol before inbox_news and read_many existed."""

    def __init__(self, inner: JournalDirectory) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("inbox_news", "read_many"):
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_store_without_news_or_read_many_still_gets_mail_and_recovers(
    journal_dir: Path,
) -> None:
    await waiting_workflow(journal_dir, "older")
    store = OlderProtocolStore(JournalDirectory(journal_dir))
    async with Runtime(store=store, event_poll_interval=0.01, workflows=[collector]) as holder:
        (handle,) = await holder.recover()
        async with Runtime(journal_dir) as sender:
            await sender.send_event("older", "item", "polled")
        assert await handle.result() == ["polled"]
