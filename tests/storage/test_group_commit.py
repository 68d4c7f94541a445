"""Concurrent appenders share syncs; a failed shared sync fails its whole batch."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import threading
from pathlib import Path

import pytest

import durable._storage._group_commit as group_commit
from durable import JournalDirectory, JournalWriteError

pytestmark = pytest.mark.anyio


class SyncCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fdatasyncs = 0
        self.syncfs = 0
        real_sync = group_commit.sync_file
        real_syncfs = group_commit._load_syncfs()

        def counting_sync(fd: int) -> None:
            self.fdatasyncs += 1
            real_sync(fd)

        def counting_syncfs(fd: int) -> int:
            self.syncfs += 1
            assert real_syncfs is not None
            return real_syncfs(fd)

        monkeypatch.setattr(group_commit, "sync_file", counting_sync)
        monkeypatch.setattr(group_commit, "_load_syncfs", lambda: counting_syncfs)

    @property
    def total(self) -> int:
        return self.fdatasyncs + self.syncfs


async def append_many(store: JournalDirectory, names: list[str], each: int) -> None:
    journals = [await store.open(name) for name in names]

    async def appender(index: int) -> None:
        for step in range(each):
            await journals[index].append(f"{names[index]}:{step}".encode())

    await asyncio.gather(*(appender(index) for index in range(len(names))))
    for journal in journals:
        await journal.close()


async def test_many_files_share_syncs_and_keep_every_record(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = SyncCounter(monkeypatch)
    names = [f"wf-{index}" for index in range(50)]
    async with JournalDirectory(journal_dir) as store:
        await append_many(store, names, 20)
        for name in names:
            expected = [f"{name}:{step}".encode() for step in range(20)]
            assert [record.payload for record in await store.read(name)] == expected
    assert counter.syncfs > 0, "several dirty files are synced with one syncfs"
    assert counter.total < 50 * 20 / 2, f"{counter.total} syncs for 1000 appends"


class GatedSync:
    """Holds the sync thread inside one fdatasync until released, so work queues behind it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        real_sync = group_commit.sync_file

        def gated(fd: int) -> None:
            self.gate.wait(10)
            real_sync(fd)

        monkeypatch.setattr(group_commit, "sync_file", gated)

    async def hold(self, store: JournalDirectory) -> asyncio.Future[None]:
        blocker = await store.open("blocker")
        blocker.write(b"holds the sync thread")
        held = asyncio.ensure_future(blocker.close())
        await asyncio.sleep(0.05)
        return held


async def test_records_arriving_during_a_sync_ride_on_the_next_one(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated = GatedSync(monkeypatch)
    counter = SyncCounter(monkeypatch)  # counts on top of the gate
    async with JournalDirectory(journal_dir, inline_sync_budget=0) as store:
        journals = [await store.open(f"rider-{index}") for index in range(50)]
        held = await gated.hold(store)
        appends = asyncio.gather(*(journal.append(b"ride") for journal in journals))
        await asyncio.sleep(0.05)
        assert counter.total == 1, "only the held sync has started"
        gated.gate.set()
        await held
        await appends
        assert counter.total == 2, "all 50 waiting records shared one sync"
        assert counter.syncfs == 1
        for journal in journals:
            await journal.close()


async def test_one_file_many_appenders_share_fdatasyncs(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = SyncCounter(monkeypatch)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("shared")
        await asyncio.gather(*(journal.append(b"%d" % index) for index in range(500)))
        await journal.close()
        records = await store.read("shared")
    assert sorted(record.payload for record in records) == sorted(b"%d" % i for i in range(500))
    assert counter.syncfs == 0
    assert counter.fdatasyncs < 100, f"{counter.fdatasyncs} fdatasyncs for 500 appends"


async def test_fdatasync_mode_never_uses_syncfs(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = SyncCounter(monkeypatch)
    async with JournalDirectory(journal_dir, sync="fdatasync") as store:
        await append_many(store, [f"f{index}" for index in range(10)], 5)
    assert counter.syncfs == 0
    assert counter.fdatasyncs > 0


async def test_a_failed_syncfs_fails_every_file_of_its_batch(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(group_commit, "_load_syncfs", lambda: failing_syncfs)
    gated = GatedSync(monkeypatch)
    async with JournalDirectory(journal_dir, inline_sync_budget=0) as store:
        journals = [await store.open(f"batch-{index}") for index in range(5)]
        held = await gated.hold(store)
        appends = asyncio.gather(
            *(journal.append(b"in doubt") for journal in journals), return_exceptions=True
        )
        await asyncio.sleep(0.05)
        gated.gate.set()
        await held
        outcomes = await appends
        assert all(isinstance(outcome, JournalWriteError) for outcome in outcomes)
        assert {outcome.errno for outcome in outcomes} == {errno.EIO}  # type: ignore[union-attr]
        assert all("syncfs failed" in str(outcome) for outcome in outcomes)
        for journal in journals:
            with pytest.raises(JournalWriteError):
                await journal.close()


async def test_cancelled_appender_does_not_break_the_batch(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir, inline_sync_budget=0) as store:
        journal = await store.open("cancel")
        task = asyncio.ensure_future(journal.append(b"cancelled while waiting"))
        await asyncio.sleep(0)
        task.cancel()
        await journal.append(b"next")
        await journal.close()
        payloads = [record.payload for record in await store.read("cancel")]
    assert payloads == [b"cancelled while waiting", b"next"]
