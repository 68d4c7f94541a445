"""A sleeper recovered without a sync (its records proven durable) is unloaded without one."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

import durable._storage._group_commit as group_commit
import durable._storage._journal_opening as journal_opening
from durable import JournalDirectory

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="no OFD locks here"),
]


async def test_reopening_and_unloading_a_sleeper_syncs_nothing_and_writes_nothing(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("sleeper")
        await journal.append(b"one")
        await journal.suspend()  # (unloaded: a sync mark proves the record durable)
        await journal.close()
    path = journal_dir / "sleeper.journal"
    size = path.stat().st_size
    synced: list[int] = []

    def counting(fd: int) -> None:
        synced.append(fd)

    monkeypatch.setattr(journal_opening, "sync_file", counting)
    monkeypatch.setattr(group_commit, "sync_file", counting)
    for _ in range(3):  # (three restarts: each recovers the sleeper and unloads it again)
        async with JournalDirectory(journal_dir) as store:
            journal = await store.open("sleeper")
            await journal.suspend()
            assert journal._target.fd == -1, "unloaded: no descriptor kept"
            await journal.resume()
            assert [record.payload for record in journal.records] == [b"one"]
            await journal.close()
    assert synced == [], "every record was proven durable: nothing to sync"
    assert path.stat().st_size == size, "no sync mark added at each restart"
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("sleeper")
        await journal.append(b"two")  # (appending after a no-sync reopen syncs as ever)
        await journal.close()
    assert synced
