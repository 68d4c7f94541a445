"""Reading a journal a page at a time from a cursor (_storage/_pages), on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable import JournalDirectory, JournalNotFound
from durable._storage._pages import START, Cursor, Page
from tests.conftest import journal_bytes

pytestmark = pytest.mark.anyio


async def read_all(
    store: JournalDirectory, name: str, max_bytes: int
) -> tuple[list[bytes], list[Page]]:
    cursor: Cursor = START
    pages: list[Page] = []
    while True:
        page = await store.read_page(name, cursor, max_bytes)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return [record.payload for page in pages for record in page.records], pages


async def test_pages_hold_every_record_once_in_order_each_page_bounded(tmp_path: Path) -> None:
    payloads = [f"record {index:04d}".encode() * 5 for index in range(500)]
    async with JournalDirectory(tmp_path) as store:
        journal = await store.open("j")
        for payload in payloads:
            journal.write(payload)
        await journal.flush()
        read, pages = await read_all(store, "j", 2048)
        assert read == payloads
        assert len(pages) > 10
        assert all(sum(len(r.payload) for r in page.records) <= 2048 for page in pages)
        # Appends after the last page come with the next read from its cursor, alone.
        journal.write(b"later")
        page = await store.read_page("j", pages[-1].cursor, 2048)
        assert [record.payload for record in page.records] == [b"later"]
        assert (await store.read_page("j", page.cursor, 2048)).records == []
        await journal.close()


async def test_a_record_larger_than_a_page_is_read_whole(tmp_path: Path) -> None:
    async with JournalDirectory(tmp_path) as store:
        journal = await store.open("j")
        await journal.append(b"small")
        await journal.append(b"x" * 100_000)
        await journal.close()
        read, _ = await read_all(store, "j", 1024)
    assert read == [b"small", b"x" * 100_000]


async def test_a_frame_being_appended_is_left_for_the_next_page(tmp_path: Path) -> None:
    async with JournalDirectory(tmp_path) as store:
        journal = await store.open("j")
        await journal.append(b"whole")
        await journal.close()
        path = tmp_path / "j.journal"
        whole = path.read_bytes()
    # A second record, its frame cut short (a writer mid-append): not read, no error.
    async with JournalDirectory(tmp_path) as store:
        journal = await store.open("j")
        await journal.append(b"second")
        await journal.close()
    full = path.read_bytes()
    path.write_bytes(full[: len(whole) + (len(full) - len(whole)) // 2])
    async with JournalDirectory(tmp_path) as store:
        page = await store.read_page("j", START, 1 << 20)
    assert [record.payload for record in page.records] == [b"whole"]
    assert not page.more


async def test_a_hole_in_unsynced_frames_after_a_cursor_is_a_torn_tail_not_damage(
    tmp_path: Path,
) -> None:
    # A crash left a hole in frames no sync covered, the frame after it whole: its
    # watermark (a file offset) says nothing about the hole. A page from a cursor past the
    # file's start compared it with an offset in the page, and refused the file.
    async with JournalDirectory(tmp_path) as store:
        journal = await store.open("j")
        await journal.append(b"synced one")
        await journal.append(b"synced two")
        cursor = (await store.read_page("j", START, 1 << 20)).cursor
        journal.write(b"unsynced A" * 5)
        journal.write(b"unsynced B" * 5)
        await journal.abandon()
    path = tmp_path / "j.journal"
    data = bytearray(path.read_bytes())
    data[cursor[1] + 5 : cursor[1] + 15] = bytes(10)
    path.write_bytes(data)
    async with JournalDirectory(tmp_path) as store:
        page = await store.read_page("j", cursor, 1 << 20)
        assert page.records == []
        assert page.cursor == cursor
        assert [record.payload for record in await store.read("j")] == [
            b"synced one",
            b"synced two",
        ]


async def test_a_rotated_journal_and_a_missing_one_say_so(tmp_path: Path) -> None:
    async with JournalDirectory(tmp_path) as store:
        journal = await store.open("j")
        await journal.append(b"generation 0")
        first = await store.read_page("j", START, 1 << 20)
        journal = await store.rotate(journal, b"generation 1")
        await journal.close()
        gone = await store.read_page("j", first.cursor, 1 << 20)
        assert gone.rotated
        assert gone.records == []
        fresh = await store.read_page("j", START, 1 << 20)
        assert [record.payload for record in fresh.records] == [b"generation 1"]
        with pytest.raises(JournalNotFound):
            await store.read_page("nobody", START, 1 << 20)


async def test_a_version_1_journal_is_read_whole_and_paged_by_offset(tmp_path: Path) -> None:
    (tmp_path / "old.journal").write_bytes(journal_bytes(b"a", b"bb", b"ccc"))
    (tmp_path / "old.journal").chmod(0o600)
    async with JournalDirectory(tmp_path) as store:
        page = await store.read_page("old", START, 1 << 20)
        assert [record.payload for record in page.records] == [b"a", b"bb", b"ccc"]
        again = await store.read_page("old", page.cursor, 1 << 20)
    assert again.records == []
