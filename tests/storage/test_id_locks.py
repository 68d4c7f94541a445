"""Unloaded sleepers hold their journals by name locks (OFD byte-range locks), not flocks."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

import durable._storage._journal_opening as journal_opening
from durable import JournalCorrupted, JournalDirectory, JournalLocked
from durable._storage._id_locks import IdLocks, held_names, shard_name, slot_of

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="no OFD locks here"),
]


def descriptors_of(path: Path) -> int:
    """How many of this process's descriptors are open on `path`'s file."""
    info = os.stat(path)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            held = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        count += (held.st_dev, held.st_ino) == (info.st_dev, info.st_ino)
    return count


def test_two_holders_of_one_directory_exclude_each_other(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    first, second = IdLocks(fd), IdLocks(fd)  # (two runtimes of one process)
    try:
        assert not first.taken("a.journal")
        assert first.acquire("a.journal")
        assert first.acquire("a.journal")  # (a second hold here: counted)
        assert second.taken("a.journal")
        assert not second.acquire("a.journal")
        assert second.acquire("b.journal")
        first.release("a.journal")
        assert second.taken("a.journal"), "one hold is left"
        first.release("a.journal")
        assert not second.taken("a.journal")
        assert second.acquire("a.journal")
        first.close()
        second.close()
        third = IdLocks(fd)
        assert not third.taken("a.journal"), "closing let go of everything"
        third.close()
    finally:
        os.close(fd)


def test_taken_creates_nothing_and_names_spread(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    locks = IdLocks(fd)
    try:
        assert not locks.taken("a.journal")
        assert not (tmp_path / shard_name(slot_of("a.journal")[0])).exists()
    finally:
        locks.close()
        os.close(fd)
    slots = {slot_of(f"wf-{n}.journal") for n in range(10_000)}
    assert len(slots) == 10_000
    assert len({shard for shard, _ in slots}) > 1000 * 0.99


async def test_a_suspended_journal_holds_no_descriptor_and_stays_its_own(
    journal_dir: Path,
) -> None:
    async with JournalDirectory(journal_dir) as store, JournalDirectory(journal_dir) as other:
        journal = await store.open("sleeper")
        await journal.append(b"one")
        path = journal_dir / "sleeper.journal"
        assert descriptors_of(path) == 1
        await journal.suspend()
        assert descriptors_of(path) == 0
        assert journal.records == []
        with pytest.raises(JournalLocked):
            await other.open("sleeper")  # (its flock is free: the name lock refuses)
        holders = held_names(journal_dir, ["sleeper.journal", "nobody.journal"])
        assert holders == {"sleeper.journal": os.getpid()}
        await journal.resume()
        assert [record.payload for record in journal.records] == [b"one"]
        await journal.append(b"two")
        await journal.suspend()
        await journal.resume()
        assert [record.payload for record in journal.records] == [b"one", b"two"]
        await journal.suspend()
        await journal.close()
        reopened = await other.open("sleeper")
        assert [record.payload for record in reopened.records] == [b"one", b"two"]
        await reopened.close()


async def test_closing_a_suspended_journal_leaves_its_sync_mark(journal_dir: Path) -> None:
    # Else damage to its last batch reads as a torn tail after a restart, and is cut.
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("marked")
        await journal.append(b"x" * 40)
        await journal.suspend()
        await journal.close()
    path = journal_dir / "marked.journal"
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01
    path.write_bytes(data)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalCorrupted):
            await store.open("marked")
    assert path.read_bytes() == bytes(data)


async def test_a_flock_taken_while_it_slept_is_the_workflow_of_that_process(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process that knows no name locks (an older durable) may flock a sleeper's journal:
    # the sleeper's runtime then has lost it, and says so (JournalLocked), never writes.
    monkeypatch.setattr(journal_opening, "REOPEN_PATIENCE", 0.01)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("taken")
        await journal.append(b"one")
        await journal.suspend()
        fd = os.open(journal_dir / "taken.journal", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(JournalLocked):
                await journal.resume()
        finally:
            os.close(fd)
        await journal.close()


async def test_a_journal_replaced_while_it_slept_is_refused(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("replaced")
        await journal.append(b"one")
        await journal.suspend()
        path = journal_dir / "replaced.journal"
        path.rename(journal_dir / "elsewhere")
        path.write_bytes((journal_dir / "elsewhere").read_bytes())
        with pytest.raises(JournalCorrupted, match="replaced or removed"):
            await journal.resume()
        await journal.close()


async def test_a_rotation_keeps_the_name_held(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store, JournalDirectory(journal_dir) as other:
        journal = await store.open("chain")
        await journal.append(b"one")
        await journal.suspend()
        await journal.resume()
        rotated = await store.rotate(journal, b"next")
        await rotated.suspend()
        assert descriptors_of(journal_dir / "chain.journal") == 0
        with pytest.raises(JournalLocked):
            await other.open("chain")
        await rotated.close()
        reopened = await other.open("chain")
        assert [record.payload for record in reopened.records] == [b"next"]
        await reopened.close()
