"""JournalDirectory.open_now: a journal opened on the caller's thread, or None for open()."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from durable import JournalClosed, JournalDirectory, JournalLocked
from durable._storage import _directory
from durable._storage._journal_opening import INLINE_OPEN_MAX

pytestmark = pytest.mark.anyio


async def test_open_now_creates_a_new_journal_once_the_directory_is_prepared(
    journal_dir: Path,
) -> None:
    async with JournalDirectory(journal_dir) as store:
        assert store.open_now("first") is None  # (the directory's first open: a thread's)
        first = await store.open("first")
        journal = store.open_now("order-42")
        assert journal is not None
        assert journal.records == []
        journal.write(b"start")
        await journal.close()
        assert (journal_dir / "order-42.journal").exists()
        again = store.open_now("order-42")  # a small journal: read here too
        assert again is not None
        assert [record.payload for record in again.records] == [b"start"]
        with pytest.raises(JournalLocked):
            store.open_now("order-42")
        await again.close()
        await first.close()


async def test_open_now_leaves_a_large_journal_to_open(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("big")
        record = b"x" * 4096
        for _ in range(INLINE_OPEN_MAX // len(record) + 2):
            journal.write(record)
        await journal.close()
        assert store.open_now("big") is None
        reopened = await store.open("big")  # (the lock open_now took was let go)
        assert len(reopened.records) == INLINE_OPEN_MAX // len(record) + 2
        await reopened.close()


async def test_open_now_refuses_once_closed(journal_dir: Path) -> None:
    store = JournalDirectory(journal_dir)
    await (await store.open("a")).close()
    await store.close()
    with pytest.raises(JournalClosed):
        store.open_now("b")


async def test_a_rotation_the_store_closes_under_leaves_nothing_open(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() while rotate()'s thread writes the next generation waits for that thread
    (its descriptor was closed under it: EBADF, or another directory's under that number),
    then rotate() raises JournalClosed; the new generation is the journal, nothing open."""
    store = JournalDirectory(journal_dir)
    journal = await store.open("a")
    await journal.append(b"first generation")
    reached, go_on = threading.Event(), threading.Event()
    keep_previous = _directory._keep_previous

    def slowly(directory_fd: int, name: str) -> None:
        reached.set()
        go_on.wait(30)
        keep_previous(directory_fd, name)

    monkeypatch.setattr(_directory, "_keep_previous", slowly)
    rotating = asyncio.ensure_future(store.rotate(journal, b"next generation"))
    while not reached.is_set():
        await asyncio.sleep(0.005)
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0.3)
    assert not closing.done(), "close() did not wait for the rotation's thread"
    go_on.set()
    await closing
    with pytest.raises(JournalClosed):
        await rotating
    path = (journal_dir / "a.journal").resolve()
    held = [fd for fd in os.listdir("/proc/self/fd") if _names(f"/proc/self/fd/{fd}", path)]
    assert held == [], "the rotated generation's descriptor stayed open"
    async with JournalDirectory(journal_dir) as again:
        assert [r.payload for r in await again.read("a")] == [b"next generation"]


def _names(link: str, path: Path) -> bool:
    try:
        return os.readlink(link) == str(path)
    except OSError:
        return False
