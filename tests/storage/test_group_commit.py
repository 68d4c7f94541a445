"""Concurrent appenders share syncs; a failed shared sync fails its whole batch."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import sys
import threading
from pathlib import Path

import pytest
from anyio import fail_after as anyio_fail_after

import durable._storage._group_commit as group_commit
from durable import Journal, JournalDirectory, JournalWriteError

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="needs syncfs and /proc")

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
    gated = GatedSync(monkeypatch)
    counter = SyncCounter(monkeypatch)  # counts on top of the gate
    async with JournalDirectory(journal_dir, sync="fdatasync", inline_sync_budget=0) as store:
        journal = await store.open("shared")
        held = await gated.hold(store)  # the sync thread is busy: appends queue up
        appends = asyncio.gather(*(journal.append(b"%d" % index) for index in range(500)))
        await asyncio.sleep(0.05)
        gated.gate.set()
        await held
        await appends
        await journal.close()
        records = await store.read("shared")
    assert sorted(record.payload for record in records) == sorted(b"%d" % i for i in range(500))
    assert counter.syncfs == 0
    assert counter.fdatasyncs == 2, "the held sync, then one for all 500 queued appends"


async def test_fdatasync_mode_never_uses_syncfs(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = SyncCounter(monkeypatch)
    async with JournalDirectory(journal_dir, sync="fdatasync") as store:
        await append_many(store, [f"f{index}" for index in range(10)], 5)
    assert counter.syncfs == 0
    assert counter.fdatasyncs > 0


class FailingDisk:
    """syncfs fails with EIO; fdatasync fails for the files named in `lost` (by path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, journal_dir: Path) -> None:
        self.lost: set[str] = set()
        self.gate = threading.Event()
        real_sync = group_commit.sync_file

        def failing_syncfs(fd: int) -> int:
            ctypes.set_errno(errno.EIO)
            return -1

        def sync(fd: int) -> None:
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).stem
            if name == "blocker":
                self.gate.wait(10)
            if name in self.lost:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_sync(fd)

        monkeypatch.setattr(group_commit, "_load_syncfs", lambda: failing_syncfs)
        monkeypatch.setattr(group_commit, "sync_file", sync)

    async def batch(self, store: JournalDirectory, journals: list[Journal]) -> list[object]:
        """Append to every journal while the thread is held, so all ride one syncfs."""
        blocker = await store.open("blocker")
        blocker.write(b"holds the sync thread")
        held = asyncio.ensure_future(blocker.close())
        await asyncio.sleep(0.05)
        appends = asyncio.gather(
            *(journal.append(b"in doubt") for journal in journals), return_exceptions=True
        )
        await asyncio.sleep(0.05)
        self.gate.set()
        await held
        return list(await appends)


@linux_only
async def test_a_failed_syncfs_fails_exactly_the_files_that_lost_data(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FailingDisk(monkeypatch, journal_dir)
    disk.lost = {"batch-1", "batch-3"}
    async with JournalDirectory(journal_dir, inline_sync_budget=0) as store:
        journals: list[Journal] = [await store.open(f"batch-{index}") for index in range(5)]
        outcomes = await disk.batch(store, journals)
        failed = [index for index, outcome in enumerate(outcomes) if outcome is not None]
        assert failed == [1, 3]
        for index in failed:
            outcome = outcomes[index]
            assert isinstance(outcome, JournalWriteError)
            assert outcome.errno == errno.EIO
            assert "fdatasync after a failed syncfs" in str(outcome)
        for index, journal in enumerate(journals):
            if index in failed:
                with pytest.raises(JournalWriteError):
                    await journal.close()
            else:
                await journal.close()
        assert [r.payload for r in await store.read("batch-0")] == [b"in doubt"]


@linux_only
async def test_a_failed_syncfs_fails_an_open_journal_outside_the_batch(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bystander's lost write was reported to syncfs; it must not be acknowledged later."""
    disk = FailingDisk(monkeypatch, journal_dir)
    async with JournalDirectory(journal_dir, inline_sync_budget=0) as store:
        bystander = await store.open("bystander")
        await bystander.append(b"acknowledged before the failure")
        disk.lost = {"bystander"}
        journals: list[Journal] = [await store.open(f"batch-{index}") for index in range(3)]
        outcomes = await disk.batch(store, journals)
        assert outcomes == [None, None, None], "the batch's own files are fine"
        with pytest.raises(JournalWriteError, match="after a failed syncfs"):
            await bystander.append(b"never acknowledged")
        await bystander.close()  # nothing unacknowledged: closing just lets go
        for journal in journals:
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


async def test_appenders_on_one_loop_share_one_sync_on_the_loop_s_thread(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round: every appender the loop ran before going idle rides one inline sync."""
    counter = SyncCounter(monkeypatch)
    threads: set[str] = set()
    counting_syncfs = group_commit._load_syncfs()

    def noting_syncfs(fd: int) -> int:
        threads.add(threading.current_thread().name)
        assert counting_syncfs is not None
        return counting_syncfs(fd)

    monkeypatch.setattr(group_commit, "_load_syncfs", lambda: noting_syncfs)
    # (a generous budget: a loaded machine's slow syncs would send the round to the thread)
    async with JournalDirectory(journal_dir, inline_sync_budget=10.0) as store:
        journals = [await store.open(f"round-{index}") for index in range(50)]
        await asyncio.gather(*(journal.flush() for journal in journals))  # headers durable
        before = counter.total
        await asyncio.gather(*(journal.append(b"one round") for journal in journals))
        assert counter.total - before == 1, "50 appenders, one sync"
        assert threads == {threading.current_thread().name}, "no hop to the sync thread"
        for journal in journals:
            await journal.close()
        assert [r.payload for r in await store.read("round-7")] == [b"one round"]


async def test_a_busy_loop_does_not_hold_a_round_back(journal_dir: Path) -> None:
    stop = asyncio.Event()

    async def spinner() -> None:  # always ready: the loop never goes idle
        while not stop.is_set():
            await asyncio.sleep(0)

    async with JournalDirectory(journal_dir) as store:
        journals = [await store.open(f"busy-{index}") for index in range(3)]
        spinning = asyncio.ensure_future(spinner())
        await asyncio.sleep(0)
        with anyio_fail_after(5):
            await asyncio.gather(*(journal.append(b"made it") for journal in journals))
        stop.set()
        await spinning
        for journal in journals:
            await journal.close()


@linux_only
async def test_a_failed_sync_in_a_round_fails_exactly_the_files_that_lost_data(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FailingDisk(monkeypatch, journal_dir)
    async with JournalDirectory(journal_dir) as store:
        journals: list[Journal] = [await store.open(f"round-{index}") for index in range(4)]
        disk.lost = {"round-2"}
        outcomes = await asyncio.gather(
            *(journal.append(b"in doubt") for journal in journals), return_exceptions=True
        )
        assert [outcome is None for outcome in outcomes] == [True, True, False, True]
        assert isinstance(outcomes[2], JournalWriteError)
        with pytest.raises(JournalWriteError):
            await journals[2].append(b"refused: the handle failed")
        with pytest.raises(JournalWriteError):
            await journals[2].close()
        for index in (0, 1, 3):
            await journals[index].close()


async def test_a_sync_asked_while_the_thread_stops_settles_and_the_stop_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() runs in a worker thread (a store's close) while the loop goes on: a sync asked
    meanwhile starts a thread again. It must not share the stopping thread's queue: the new
    thread took the stop meant for the old one, which then waited for work for ever, and so
    did stop()'s join, and the close awaiting it (anyio's cancel scopes cannot interrupt
    to_thread; an asyncio cancellation abandons it, the close half done).
    """
    directory_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open(tmp_path / "a.journal", os.O_RDWR | os.O_CREAT, 0o600)
    committer = group_commit.GroupCommitter(directory_fd, mode="fdatasync", inline_budget=0)
    target = group_commit.CommitTarget(fd, tmp_path / "a.journal", same_device=True)
    syncing, release = threading.Event(), threading.Event()
    real_sync = group_commit.sync_file
    calls = []

    def first_sync_waits(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            syncing.set()
            release.wait(10)
        real_sync(fd)

    monkeypatch.setattr(group_commit, "sync_file", first_sync_waits)
    loop = asyncio.get_running_loop()

    def sync_threads() -> int:
        return sum(thread.name == "durable-sync" for thread in threading.enumerate())

    stopper = threading.Thread(target=committer.stop, daemon=True)
    try:
        target.write(b"first")
        first = loop.create_future()
        committer.request_sync(target, first)
        assert await asyncio.to_thread(syncing.wait, 10)  # the thread is busy syncing
        before = sync_threads()
        stopper.start()
        with anyio_fail_after(10):
            while committer._thread is not None:  # stop() took the thread
                await asyncio.sleep(0.001)
        target.write(b"second")
        second = loop.create_future()
        committer.request_sync(target, second)
        for _ in range(500):  # (the bug: the new thread takes the old one's stop, and ends)
            if sync_threads() <= before:
                break
            await asyncio.sleep(0.001)
        release.set()
        with anyio_fail_after(10):
            await first
            await second
        await asyncio.to_thread(stopper.join, 10)
        assert not stopper.is_alive(), "stop() waits for a thread that will never end"
        assert target.synced == target.written
        stopping = threading.Thread(target=committer.stop, daemon=True)  # (the new thread)
        stopping.start()
        await asyncio.to_thread(stopping.join, 10)
        assert not stopping.is_alive()
        assert sync_threads() == before - 1
    finally:
        release.set()
        if stopper.is_alive():  # (the bug: let the stranded thread end)
            committer._queue.put(group_commit._STOP)
        os.close(fd)
        os.close(directory_fd)
