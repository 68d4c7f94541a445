"""Without OFD locks (not Linux) an unloaded sleeper keeps its descriptor and flock, as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import durable._storage._id_locks as id_locks
from durable import JournalDirectory, JournalLocked
from durable._catalog import Catalog

pytestmark = pytest.mark.anyio


async def test_a_sleeper_keeps_its_descriptor_where_name_locks_are_missing(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(id_locks, "_SETLK", None)
    monkeypatch.setattr(id_locks, "_GETLK", None)
    async with JournalDirectory(journal_dir) as store, JournalDirectory(journal_dir) as other:
        journal = await store.open("sleeper")
        await journal.append(b"one")
        await journal.suspend()
        assert journal._target.fd >= 0, "the descriptor (and its flock) stays"
        assert not (journal_dir / id_locks.FOLDER).exists(), "no lock file made"
        with pytest.raises(JournalLocked):
            await other.open("sleeper")
        if Path("/proc/self/fdinfo").is_dir():
            runner = await Catalog(journal_dir).runner("sleeper")
            assert runner.holder == str(os.getpid())
        await journal.resume()
        assert [record.payload for record in journal.records] == [b"one"]
        await journal.close()
        reopened = await other.open("sleeper")
        await reopened.close()
