"""Reopening a journal syncs it only when nothing in it proves its records durable."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable._storage._journal_opening as journal_opening
from durable import JournalDirectory
from durable._storage._file_io import sync_file as real_sync

pytestmark = pytest.mark.anyio


def counting_syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    synced: list[int] = []

    def sync_file(fd: int) -> None:
        synced.append(fd)
        real_sync(fd)

    monkeypatch.setattr(journal_opening, "sync_file", sync_file)
    return synced


async def test_a_cleanly_closed_journal_reopens_without_a_sync(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("closed")
        await journal.append(b"one")
        await journal.close()
    synced = counting_syncs(monkeypatch)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("closed")
        assert [record.payload for record in journal.records] == [b"one"]
        assert synced == [], "its sync mark proves the record durable"
        await journal.append(b"two")
        await journal.close()
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("closed")
        assert [record.payload for record in journal.records] == [b"one", b"two"]
        await journal.close()


async def test_records_no_sync_proves_are_synced_at_reopening(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("crashed")
        await journal.append(b"one")
        journal.write(b"two")  # (written, never synced: a writer killed here)
        await journal.abandon()
    synced = counting_syncs(monkeypatch)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("crashed")
        assert [record.payload for record in journal.records] == [b"one", b"two"]
        assert len(synced) == 1
        await journal.close()
