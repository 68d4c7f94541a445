"""Whole valid frames of a journal duplicated, swapped or deleted inside its synced part.

Every such frame passes its checksum and names its file: only its watermark (the file's
size at the sync before it was written) says it is not where it was written. A journal so
changed is refused untouched, never read as another sequence of records; a change that lies
after the last watermark only (the closing sync mark's bytes) may be cut, or refused.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from durable import JournalCorrupted, JournalDirectory
from durable._storage._format import HEADER_SIZE
from durable._storage._frames import MARK
from durable._storage._pages import START, Cursor

pytestmark = pytest.mark.anyio

PAYLOADS = [b"charge card", b"reserve stock" * 3, b"ship the parcel", b"send the email"]


async def finished_journal(directory: Path) -> bytes:
    """A journal written the way a run writes one: a sync per record, then closed."""
    async with JournalDirectory(directory) as store:
        journal = await store.open("flow")
        for payload in PAYLOADS:
            await journal.append(payload)
        await journal.close()
    return (directory / "flow.journal").read_bytes()


def frames_of(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each frame: MARK is only where a frame starts (escaping)."""
    starts = [at for at in range(HEADER_SIZE, len(data)) if data[at] == MARK[0]]
    return list(itertools.pairwise([*starts, len(data)]))


def changes(data: bytes) -> dict[str, bytes]:
    """Every duplication, swap and deletion of whole frames that leaves the last frame."""
    frames = frames_of(data)
    bounds = [start for start, _ in frames] + [len(data)]
    out = {}
    for index, (start, end) in enumerate(frames):
        for at in bounds:
            out[f"frame {index} copied to byte {at}"] = data[:at] + data[start:end] + data[at:]
    for (a0, a1), (b0, b1) in itertools.combinations(frames, 2):
        out[f"frames at {a0} and {b0} swapped"] = (
            data[:a0] + data[b0:b1] + data[a1:b0] + data[a0:a1] + data[b1:]
        )
    for first, last in itertools.combinations(range(len(frames)), 2):  # (the last one kept)
        out[f"frames {first}..{last - 1} deleted"] = (
            data[: frames[first][0]] + data[frames[last][0] :]
        )
    return out


async def paged(store: JournalDirectory) -> list[bytes]:
    cursor: Cursor = START
    read: list[bytes] = []
    while True:
        page = await store.read_page("flow", cursor, 64)
        read += [record.payload for record in page.records]
        cursor = page.cursor
        if not page.more:
            return read


async def test_frames_duplicated_swapped_or_deleted_are_refused_untouched(
    journal_dir: Path,
) -> None:
    whole = await finished_journal(journal_dir)
    path = journal_dir / "flow.journal"
    closing_mark = frames_of(whole)[-1][0]
    cases = changes(whole)
    assert len(cases) > 40
    async with JournalDirectory(journal_dir) as store:
        for what, changed in cases.items():
            path.write_bytes(changed)
            if changed[:closing_mark] == whole[:closing_mark]:
                # (a frame copied after the records: only the closing mark's bytes changed,
                # which no watermark covers; they may be cut, or refused)
                try:
                    journal = await store.open("flow")
                except JournalCorrupted:
                    assert path.read_bytes() == changed, f"{what}: the file was changed"
                    continue
                assert [record.payload for record in journal.records] == PAYLOADS, what
                await journal.abandon()
                continue
            with pytest.raises(JournalCorrupted):
                await store.read("flow")
            with pytest.raises(JournalCorrupted):
                await paged(store)
            with pytest.raises(JournalCorrupted):
                await store.open("flow")
            assert path.read_bytes() == changed, f"{what}: the file was changed"


async def test_pages_from_a_cursor_see_what_a_whole_read_sees(journal_dir: Path) -> None:
    # A journal still open (no closing mark): a page after a copied or moved frame knew
    # nothing of the frames before its cursor, and read on where a whole read refuses.
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        for payload in PAYLOADS * 2:
            await journal.append(payload)
        whole = (journal_dir / "flow.journal").read_bytes()
        await journal.abandon()
    path = journal_dir / "flow.journal"
    refused = 0
    async with JournalDirectory(journal_dir) as store:
        for what, changed in changes(whole).items():
            path.write_bytes(changed)
            try:
                expected = [record.payload for record in await store.read("flow")]
            except JournalCorrupted:
                refused += 1
                with pytest.raises(JournalCorrupted):
                    await paged(store)
                continue
            # (what a whole read takes, pages take; a whole read would cut what they do not)
            read = await paged(store)
            assert read == expected[: len(read)], what
    assert refused > 100


async def test_a_stale_frame_of_a_cut_tail_after_the_new_frames_is_cut_not_read(
    journal_dir: Path,
) -> None:
    # A frame of this very file met again after later ones (its watermark below theirs),
    # with nothing after it saying a sync covered it: an unsynced tail, cut.
    whole = await finished_journal(journal_dir)
    path = journal_dir / "flow.journal"
    start, end = frames_of(whole)[1]
    path.write_bytes(whole + whole[start:end])
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        assert [record.payload for record in journal.records] == PAYLOADS
        await journal.close()
    assert path.read_bytes() == whole


async def test_journals_written_every_way_still_read(journal_dir: Path) -> None:
    # Batches (several records per sync), a reopen, a recovery's sync mark, a sleeper's
    # suspension: every watermark a writer leaves fits where it lies.
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        for payload in PAYLOADS:
            journal.write(payload)
        await journal.flush()
        journal.write(b"unsynced, then a crash")
        await journal.abandon()
        journal = await store.open("flow")  # the recovery sync, and its mark
        await journal.append(b"after the recovery")
        await journal.close()
        journal = await store.open("flow")
        await journal.append(b"after a reopen")
        journal.write(b"batched")
        await journal.append(b"with this one")
        await journal.close()
        expected = [
            *PAYLOADS,
            b"unsynced, then a crash",
            b"after the recovery",
            b"after a reopen",
            b"batched",
            b"with this one",
        ]
        assert [record.payload for record in await store.read("flow")] == expected
        assert await paged(store) == expected
    size = os.stat(journal_dir / "flow.journal").st_size
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        assert [record.payload for record in journal.records] == expected
        await journal.close()
    assert os.stat(journal_dir / "flow.journal").st_size == size
