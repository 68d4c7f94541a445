"""Name locks (see _id_locks) against hostile files where their folder and files belong."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from durable import JournalDirectory, UnsafeJournalFile
from durable._storage._id_locks import FOLDER, shard_name, slot_of

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="no OFD locks here"),
]


def plant(path: Path, kind: str) -> None:
    """A hostile file at `path`: a regular file, a link to a folder elsewhere, or a fifo."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if kind == "file":
        path.write_bytes(b"")
    elif kind == "symlink":
        elsewhere = path.parent / f"{path.name}-elsewhere"
        elsewhere.mkdir()
        path.symlink_to(elsewhere)
    else:
        os.mkfifo(path)


@pytest.mark.parametrize("kind", ["file", "symlink", "fifo"])
async def test_a_non_folder_at_the_lock_folder_is_named_when_opening(
    journal_dir: Path, kind: str
) -> None:
    plant(journal_dir / FOLDER, kind)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(UnsafeJournalFile) as raised:
            await store.open("wf")
    assert str(journal_dir / FOLDER) in str(raised.value)
    assert "not a folder" in str(raised.value)


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
async def test_a_non_regular_lock_file_is_named_when_opening(journal_dir: Path, kind: str) -> None:
    (journal_dir / FOLDER).mkdir(mode=0o700, parents=True)
    shard = journal_dir / FOLDER / shard_name(slot_of("wf.journal")[0])
    plant(shard, kind)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(UnsafeJournalFile) as raised:
            await store.open("wf")
    assert str(shard) in str(raised.value)
