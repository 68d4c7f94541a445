"""Format version 2 through real files: what a sync covered is refused when damaged, what
no sync covered is cut, a lost header reads as never written, payloads forge nothing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from durable import JournalCorrupted, JournalDirectory
from durable._storage import _inbox as inbox
from durable._storage._format import HEADER_SIZE
from durable._storage._frames import StoredRecord, encode_frame_v2
from durable._storage._journal_file import parse
from tests.conftest import journal_bytes

pytestmark = pytest.mark.anyio

PAYLOADS = [b"charge card", b"reserve stock" * 3, b"ship the parcel", b"send the email"]


def read_inbox(path: Path) -> list[StoredRecord]:
    directory_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return inbox.read_from(directory_fd, path, 0)
    finally:
        os.close(directory_fd)


async def finished_journal(directory: Path, name: str = "flow") -> bytes:
    """A journal written the way a run writes one: a sync per record, then closed."""
    async with JournalDirectory(directory) as store:
        journal = await store.open(name)
        for payload in PAYLOADS:
            await journal.append(payload)
        await journal.close()
    return (directory / f"{name}.journal").read_bytes()


def file_id_of(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[8:12], "little")


def frame_starts(data: bytes, path: Path) -> list[int]:
    return [record.offset for record in parse(data, path).records]


async def test_a_flipped_byte_anywhere_in_a_synced_journal_is_refused_untouched(
    journal_dir: Path,
) -> None:
    whole = await finished_journal(journal_dir)
    path = journal_dir / "flow.journal"
    last_record_end = whole.rindex(b"\xc1")  # (only frames start with it)
    mark = encode_frame_v2(b"", last_record_end, file_id_of(path))
    assert whole[last_record_end:] == mark, "a closed journal ends with its sync mark"
    async with JournalDirectory(journal_dir) as store:
        for position in range(len(whole)):
            damaged = bytearray(whole)
            damaged[position] ^= 0x01
            path.write_bytes(damaged)
            if position >= last_record_end:
                # The final sync mark itself: only a proof is lost, no record.
                journal = await store.open("flow")
                assert [record.payload for record in journal.records] == PAYLOADS
                await journal.abandon()
                continue
            with pytest.raises(JournalCorrupted) as caught:
                await store.open("flow")
            assert path.read_bytes() == damaged, f"byte {position}: the file was changed"
            if position < HEADER_SIZE:
                assert caught.value.offset == 0, "a damaged header names offset 0"
                assert "header" in str(caught.value)
            else:
                assert "sync had made the first" in str(caught.value)


async def test_the_header_checksum_catches_a_flipped_version(journal_dir: Path) -> None:
    whole = bytearray(await finished_journal(journal_dir))
    whole[7] ^= 0xFF  # version 1 -> 4278190081, as the attacks found
    path = journal_dir / "flow.journal"
    path.write_bytes(whole)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalCorrupted) as caught:
            await store.open("flow")
    assert caught.value.offset == 0
    assert "upgrade" not in str(caught.value)


async def test_a_hole_in_unsynced_bytes_then_a_complete_frame_is_cut(
    journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        await journal.append(b"synced")
        for payload in PAYLOADS:
            journal.write(payload)  # page cache only: no completed sync covers these
        path = journal_dir / "flow.journal"
        data = path.read_bytes()
        starts = frame_starts(data, path)
        await journal.abandon()
    hole = bytearray(data)
    hole[starts[1] : starts[3]] = bytes(starts[3] - starts[1])  # zeros, then valid frames
    path.write_bytes(hole)
    async with JournalDirectory(journal_dir) as store:
        with caplog.at_level(logging.WARNING, logger="durable"):
            journal = await store.open("flow")
        assert [record.payload for record in journal.records] == [b"synced"]
        assert "truncating the unsynced tail" in caplog.text
        await journal.append(b"after")
        await journal.close()
        assert [r.payload for r in await store.read("flow")][-1] == b"after"


async def test_a_torn_record_that_embeds_a_frame_is_still_a_torn_tail(journal_dir: Path) -> None:
    path = journal_dir / "flow.journal"
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        await journal.append(b"synced")
        # A result that embeds a frame as valid as can be: this very file's id, a
        # watermark claiming a terabyte was synced.
        forged = encode_frame_v2(b"\x81\xa1k\xa3end", 1 << 40, file_id_of(path))
        journal.write(b"result: " + forged * 3 + b" end of result")
        data = path.read_bytes()
        await journal.abandon()
    start = frame_starts(data, path)[1]
    for cut in range(start + 1, len(data)):
        path.write_bytes(data[:cut])
        async with JournalDirectory(journal_dir) as store:
            journal = await store.open("flow")
            assert [record.payload for record in journal.records] == [b"synced"]
            await journal.abandon()


@pytest.mark.parametrize("content", [bytes(HEADER_SIZE), bytes(4096), os.urandom(4096), b"DU"])
async def test_a_new_inbox_whose_first_page_was_lost_reads_empty(
    journal_dir: Path, content: bytes
) -> None:
    journal_dir.mkdir()
    path = journal_dir / "flow.inbox"
    path.write_bytes(content)
    assert read_inbox(path) == []
    directory_fd = os.open(journal_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert inbox.post(path, b"first message", directory_fd) == 0
        assert inbox.post(path, b"second message", directory_fd) == 1
    finally:
        os.close(directory_fd)
    assert [m.payload for m in read_inbox(path)] == [b"first message", b"second message"]


async def test_frames_of_another_file_prove_nothing(journal_dir: Path) -> None:
    # Stale blocks of another journal (a crash can expose freed blocks) after an unsynced
    # hole: their watermarks say nothing about this file, so the hole is cut, not refused.
    other = await finished_journal(journal_dir, "other")
    path = journal_dir / "flow.journal"
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        await journal.append(b"synced")
        journal.write(b"unsynced")
        data = path.read_bytes()
        await journal.abandon()
    start = frame_starts(data, path)[1]
    path.write_bytes(data[:start] + bytes(100) + other[HEADER_SIZE:])
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        assert [record.payload for record in journal.records] == [b"synced"]
        await journal.abandon()


async def test_a_journal_copied_to_another_name_still_opens(journal_dir: Path) -> None:
    whole = await finished_journal(journal_dir, "original")
    (journal_dir / "copy.journal").write_bytes(whole)
    async with JournalDirectory(journal_dir) as store:
        assert [record.payload for record in await store.read("copy")] == PAYLOADS


async def test_version_1_journals_keep_opening_and_take_version_1_appends(
    journal_dir: Path,
) -> None:
    journal_dir.mkdir()
    path = journal_dir / "old.journal"
    path.write_bytes(journal_bytes(b"one", b"two"))
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("old")
        assert journal.format.version == 1
        await journal.append(b"three")
        await journal.close()
        assert [r.payload for r in await store.read("old")] == [b"one", b"two", b"three"]
    assert path.read_bytes()[:8] == b"DURJ\x01\x00\x00\x00"


async def test_a_damaged_synced_inbox_message_is_one_skippable_position(
    journal_dir: Path,
) -> None:
    journal_dir.mkdir()
    path = journal_dir / "flow.inbox"
    directory_fd = os.open(journal_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index in range(3):
            inbox.post(path, f"message {index}".encode(), directory_fd)
        data = bytearray(path.read_bytes())
        second = frame_starts(bytes(data), path)[1]
        data[second + 5] ^= 0x01  # bit rot in a message a sync had covered
        path.write_bytes(data)
        assert [m.payload for m in read_inbox(path)] == [b"message 0", b"", b"message 2"]
        # Senders go on: positions stay what they were.
        assert inbox.post(path, b"message 3", directory_fd) == 3
    finally:
        os.close(directory_fd)
    assert [m.payload for m in read_inbox(path)][3] == b"message 3"
    assert bytes(data) == path.read_bytes()[: len(data)], "the damaged bytes are kept as they are"
