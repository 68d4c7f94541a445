"""One journal through its public interface, on real files."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import durable._storage._group_commit as group_commit
import durable._storage._journal_file as journal_file
from durable import (
    InvalidJournalName,
    JournalClosed,
    JournalDirectory,
    JournalLocked,
    JournalNotFound,
    JournalStore,
    JournalWriteError,
    RecordTooLarge,
    StoredRecord,
)

pytestmark = pytest.mark.anyio


def payloads_of(records: list[StoredRecord]) -> list[bytes]:
    return [record.payload for record in records]


async def test_appended_records_are_there_after_reopening(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("order-42")
        assert journal.records == []
        for step in (b"charged", b"reserved", b"shipped"):
            await journal.append(step)
        await journal.close()
        reopened = await store.open("order-42")
        assert payloads_of(reopened.records) == [b"charged", b"reserved", b"shipped"]
        await reopened.close()
        assert payloads_of(await store.read("order-42")) == [b"charged", b"reserved", b"shipped"]


async def test_write_then_flush_makes_records_durable(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("w")
        journal.write(b"intent")
        journal.write(b"more")
        await journal.flush()
        assert payloads_of(await store.read("w")) == [b"intent", b"more"]
        await journal.close()


async def test_files_are_0600_and_a_created_directory_0700(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "journals"
    async with JournalDirectory(directory) as store:
        journal = await store.open("perm")
        await journal.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "perm.journal").stat().st_mode) == 0o600


async def test_list_names_journals_sorted(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        assert await store.list() == []
        for name in ("b", "a", "c-1"):
            await (await store.open(name)).close()
        (journal_dir / "notes.txt").write_text("not a journal")
        assert await store.list() == ["a", "b", "c-1"]


async def test_reading_a_missing_journal(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalNotFound, match="no journal at"):
            await store.read("nope")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape", "path separator"),
        ("a/b", "path separator"),
        ("..", "'..'"),
        ("", "empty"),
        (".hidden", "starts with '.'"),
        ("x" * 201, "at most 200"),
        ("tab\there", "outside the allowed set"),
    ],
)
async def test_invalid_names_are_refused(journal_dir: Path, name: str, reason: str) -> None:
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(InvalidJournalName, match=reason):
            await store.open(name)
        with pytest.raises(ValueError, match=reason):  # also a ValueError
            await store.read(name)
    assert not journal_dir.exists() or list(journal_dir.iterdir()) == []


async def test_a_second_opener_in_this_process_is_refused_at_once(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store, JournalDirectory(journal_dir) as other:
        journal = await store.open("single-writer")
        for opener in (store, other):
            with pytest.raises(JournalLocked, match="one writer at a time") as caught:
                await opener.open("single-writer")
            assert caught.value.path == journal_dir / "single-writer.journal"
        await journal.close()
        await (await other.open("single-writer")).close()


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from durable import JournalDirectory

    async def main():
        store = JournalDirectory(sys.argv[1])
        journal = await store.open("shared")
        await journal.append(b"from the holder")
        print("locked", flush=True)
        await asyncio.to_thread(sys.stdin.read)   # hold until the parent closes stdin

    asyncio.run(main())
    """
)


async def test_a_second_process_is_refused_while_the_first_holds_the_lock(
    journal_dir: Path,
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(journal_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            async with JournalDirectory(journal_dir) as store:
                with pytest.raises(JournalLocked):
                    await store.open("shared")
                assert payloads_of(await store.read("shared")) == [b"from the holder"]
                holder.kill()  # a dead holder's lock goes with it
                holder.wait()
                journal = await store.open("shared")
                assert payloads_of(journal.records) == [b"from the holder"]
                await journal.close()
        finally:
            holder.kill()


async def test_a_record_over_the_limit_is_refused_before_writing(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir, max_record_size=1000) as store:
        journal = await store.open("limits")
        with pytest.raises(RecordTooLarge, match="1001 bytes exceeds the 1000-byte limit"):
            await journal.append(b"x" * 1001)
        with pytest.raises(ValueError, match="cannot be empty"):
            journal.write(b"")
        await journal.append(b"x" * 1000)
        await journal.close()
        assert payloads_of(await store.read("limits")) == [b"x" * 1000]


async def test_a_closed_journal_refuses_appends(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("closed")
        await journal.close()
        await journal.close()  # idempotent
        with pytest.raises(JournalClosed, match="open it again"):
            await journal.append(b"late")
        with pytest.raises(JournalClosed):
            await journal.flush()


async def test_the_directory_store_implements_the_interface(journal_dir: Path) -> None:
    store: JournalStore = JournalDirectory(journal_dir)
    journal = await store.open("iface")
    await journal.append(b"one")
    await journal.close()
    assert await store.list() == ["iface"]
    await store.close()


# -- Faults injected through the I/O functions the journal calls, on real files. --


def failing_on_call(
    real: Callable[..., object], fail_at: int, code: int, *, partial: bool = False
) -> Callable[..., object]:
    """Wrap an os-level call: the `fail_at`-th call raises OSError(code).

    With `partial`, the failing call first writes half of its data to the real file: the
    short write a full disk produces.
    """
    calls = 0

    def wrapper(fd: int, *args: object) -> object:
        nonlocal calls
        calls += 1
        if calls == fail_at:
            if partial:
                data = bytes(args[0])  # type: ignore[call-overload]
                os.write(fd, data[: len(data) // 2])
            raise OSError(code, os.strerror(code))
        return real(fd, *args)

    return wrapper


@pytest.mark.parametrize("inline", [True, False])
async def test_enospc_mid_write_fails_the_append_and_keeps_durable_records(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    budget = 1.0 if inline else 0.0
    async with JournalDirectory(journal_dir, inline_sync_budget=budget) as store:
        journal = await store.open("full-disk")
        await journal.append(b"durable one")
        await journal.append(b"durable two")
        monkeypatch.setattr(
            group_commit,
            "write_all",
            failing_on_call(group_commit.write_all, 1, errno.ENOSPC, partial=True),
        )
        with pytest.raises(JournalWriteError) as caught:
            await journal.append(b"this one does not fit" * 10)
        error = caught.value
        assert error.errno == errno.ENOSPC
        assert error.path == journal_dir / "full-disk.journal"
        assert str(journal_dir / "full-disk.journal") in str(error)
        assert "free disk space" in str(error)
        monkeypatch.undo()
        with pytest.raises(JournalWriteError):  # final for this handle: no retry
            await journal.append(b"after the failure")
        await journal.close()  # every record counted as written is durable
        reopened = await store.open("full-disk")
        assert payloads_of(reopened.records) == [b"durable one", b"durable two"]
        await reopened.append(b"resumed")
        await reopened.close()


@pytest.mark.parametrize("inline", [True, False])
async def test_eio_on_fdatasync_is_final_for_the_handle(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    budget = 1.0 if inline else 0.0
    async with JournalDirectory(journal_dir, inline_sync_budget=budget) as store:
        journal = await store.open("bad-disk")
        await journal.append(b"durable")
        syncs = failing_on_call(group_commit.sync_file, 1, errno.EIO)
        monkeypatch.setattr(group_commit, "sync_file", syncs)
        with pytest.raises(JournalWriteError, match="fdatasync failed") as caught:
            await journal.append(b"in doubt")
        assert caught.value.errno == errno.EIO
        # The second sync would succeed, but a failed fdatasync is never retried.
        with pytest.raises(JournalWriteError, match="fdatasync failed"):
            await journal.append(b"refused")
        with pytest.raises(JournalWriteError):
            await journal.flush()
        monkeypatch.undo()
        with pytest.raises(JournalWriteError):
            await journal.close()
        reopened = await store.open("bad-disk")
        # What is on disk is what counts: the acknowledged record, maybe the in-doubt one.
        assert payloads_of(reopened.records)[0] == b"durable"
        await reopened.close()


async def test_closing_the_directory_closes_journals_left_open(journal_dir: Path) -> None:
    store = JournalDirectory(journal_dir, inline_sync_budget=0)
    journal = await store.open("left-open")
    journal.write(b"queued, never flushed by its owner")
    await store.close()
    assert journal.closed
    async with JournalDirectory(journal_dir) as again:
        assert payloads_of(await again.read("left-open")) == [b"queued, never flushed by its owner"]


async def test_a_bug_in_the_sync_thread_fails_waiters_instead_of_hanging(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, targets: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(group_commit.GroupCommitter, "_sync", broken)
    async with JournalDirectory(journal_dir, inline_sync_budget=0) as store:
        journal = await store.open("bug")
        with pytest.raises(JournalWriteError, match="internal error"):
            await journal.append(b"x")
        with pytest.raises(JournalWriteError):
            await journal.append(b"y")
        monkeypatch.undo()
        with pytest.raises(JournalWriteError):
            await journal.close()


async def test_lowering_the_record_limit_never_hides_records(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir, max_record_size=1000) as store:
        journal = await store.open("limit-change")
        await journal.append(b"small")
        await journal.append(b"L" * 500)
        await journal.close()
    size = (journal_dir / "limit-change.journal").stat().st_size
    async with JournalDirectory(journal_dir, max_record_size=100) as store:
        journal = await store.open("limit-change")
        assert payloads_of(journal.records) == [b"small", b"L" * 500]
        await journal.close()
    assert (journal_dir / "limit-change.journal").stat().st_size == size


async def test_a_closed_directory_refuses_to_open(journal_dir: Path) -> None:
    store = JournalDirectory(journal_dir)
    await store.close()
    with pytest.raises(JournalClosed):
        await store.open("late")


async def test_a_new_journal_s_directory_entry_is_synced_before_its_first_ack(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory_syncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            directory_syncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)  # (the module group commit calls)
    async with JournalDirectory(journal_dir, sync="fdatasync") as store:
        await (await store.open("warm-up")).close()  # creates the directory itself
        directory_syncs.clear()
        journal = await store.open("fresh")
        assert directory_syncs == [], "creating costs no sync of its own"
        await journal.append(b"first")
        assert len(directory_syncs) == 1, "the first ack waited for the directory entry"
        await journal.append(b"second")
        assert len(directory_syncs) == 1
        await journal.close()
        reopened = await store.open("fresh")  # an existing file: no directory sync
        await reopened.append(b"third")
        await reopened.close()
    assert len(directory_syncs) == 1


async def test_an_empty_file_is_created_in_place_but_never_while_someone_holds_it(
    journal_dir: Path,
) -> None:
    """New journals open on the loop's thread (no worker hop); the lock still decides."""
    import fcntl  # noqa: PLC0415

    async with JournalDirectory(journal_dir) as store:
        await (await store.open("first")).close()  # the directory and committer exist now
        empty = journal_dir / "left-empty.journal"  # a crash right after creat()
        empty.touch(mode=0o600)
        holder = os.open(empty, os.O_RDWR)
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            with pytest.raises(JournalLocked):
                await store.open("left-empty")
            assert empty.read_bytes() == b"", "a held file is not written to"
        finally:
            os.close(holder)
        journal = await store.open("left-empty")
        await journal.append(b"after the holder let go")
        await journal.close()
        assert payloads_of(await store.read("left-empty")) == [b"after the holder let go"]


@pytest.mark.parametrize(
    ("inline_max", "renamed_at"),
    [(None, 1), (0, 2)],
    ids=["opened-on-the-loop", "opened-in-a-worker-thread"],
)
async def test_a_lock_taken_on_a_generation_replaced_meanwhile_is_retaken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline_max: int | None, renamed_at: int
) -> None:
    """Between an open and its flock, a continue_as_new may rename the next generation over
    the name: the lock must end up on the file the name holds, never on the old one (that
    made two writers of one workflow). A small journal is opened on the loop's thread (its
    first flock); a large one (here: any, INLINE_OPEN_MAX 0) in a worker (the second)."""
    if inline_max is not None:
        monkeypatch.setattr(journal_file, "INLINE_OPEN_MAX", inline_max)
    elsewhere = tmp_path / "elsewhere"
    async with JournalDirectory(elsewhere) as other:
        newer = await other.open("x")
        await newer.append(b"generation 1")
        await newer.close()
    directory = tmp_path / "journals"
    async with JournalDirectory(directory) as store:
        older = await store.open("x")
        await older.append(b"generation 0")
        await older.close()
        (directory / "x.journal.next").write_bytes((elsewhere / "x.journal").read_bytes())
        real_flock = fcntl.flock
        calls: list[int] = []

        def flock_after_a_rotation(fd: int, operation: int) -> None:
            calls.append(fd)
            if len(calls) == renamed_at:  # (the open that reads it: the runner renames
                os.rename(directory / "x.journal.next", directory / "x.journal")  # now)
            real_flock(fd, operation)

        monkeypatch.setattr(fcntl, "flock", flock_after_a_rotation)
        reopened = await store.open("x")
        assert payloads_of(reopened.records) == [b"generation 1"]
        await reopened.close()
