"""Recovery on open, through real files: torn tails are truncated, corruption is refused."""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import pytest

from durable import JournalCorrupted, JournalDirectory, UnsupportedJournalFormat
from durable._storage._frames import FILE_HEADER
from tests.conftest import frame_offsets, journal_bytes

pytestmark = pytest.mark.anyio

PAYLOADS = (b"charge card", b"reserve stock" * 3, b"ship the parcel")


async def test_truncation_at_every_offset_of_the_last_frame(
    journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = journal_bytes(*PAYLOADS)
    last_start = frame_offsets(*PAYLOADS)[-1]
    journal_dir.mkdir()
    path = journal_dir / "torn.journal"
    async with JournalDirectory(journal_dir) as store:
        for cut in range(last_start + 1, len(whole)):
            path.write_bytes(whole[:cut])
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="durable"):
                journal = await store.open("torn")
            assert [record.payload for record in journal.records] == list(PAYLOADS[:-1])
            assert path.stat().st_size == last_start, "the torn tail is truncated away"
            assert f"truncating the unsynced tail at byte {last_start}" in caplog.text
            await journal.append(b"after recovery")
            await journal.close()
            reopened = await store.open("torn")
            assert [record.payload for record in reopened.records][-1] == b"after recovery"
            await reopened.close()


async def test_a_flipped_byte_anywhere_in_a_middle_frame_is_refused(journal_dir: Path) -> None:
    whole = journal_bytes(*PAYLOADS)
    start, end = frame_offsets(*PAYLOADS)[1], frame_offsets(*PAYLOADS)[2]
    journal_dir.mkdir()
    path = journal_dir / "flipped.journal"
    async with JournalDirectory(journal_dir) as store:
        for position in range(start, end):
            damaged = bytearray(whole)
            damaged[position] ^= 0xFF
            path.write_bytes(damaged)
            before = os.stat(path)
            with pytest.raises(JournalCorrupted) as caught:
                await store.open("flipped")
            assert caught.value.offset == start
            assert caught.value.path == path
            assert str(path) in str(caught.value)
            assert f"byte {start}" in str(caught.value)
            assert path.read_bytes() == damaged, "the file is left byte-for-byte untouched"
            assert os.stat(path).st_mtime_ns == before.st_mtime_ns
            with pytest.raises(JournalCorrupted):
                await store.read("flipped")
            # The refused journal is not left locked.
            path.write_bytes(whole)
            journal = await store.open("flipped")
            await journal.close()


@pytest.mark.parametrize(
    "content", [b"", b"DU", FILE_HEADER[:7], b"\0\0\0", bytes(8), b"DURJ\0\0\0\0", b"DU\0\0\1"]
)
async def test_a_file_torn_while_being_created_starts_empty(
    journal_dir: Path, content: bytes
) -> None:
    journal_dir.mkdir()
    (journal_dir / "new.journal").write_bytes(content)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("new")
        assert journal.records == []
        await journal.append(b"first")
        await journal.close()
        assert [record.payload for record in await store.read("new")] == [b"first"]


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file\n", b"\x93\x01\x02\x03", b"DURX\x01\x00\x00\x00" + bytes(4096)],
)
async def test_a_header_no_sync_ever_covered_reads_as_never_written(
    journal_dir: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # A new file whose size reached the disk but not its first page: nothing in it was
    # ever durable, so it is cut (and logged), not refused as "not a journal".
    journal_dir.mkdir()
    path = journal_dir / "other.journal"
    path.write_bytes(content)
    async with JournalDirectory(journal_dir) as store:
        assert await store.read("other") == []
        assert path.read_bytes() == content, "reading changes nothing"
        with caplog.at_level(logging.WARNING, logger="durable"):
            journal = await store.open("other")
        assert journal.records == []
        assert "never had a completed sync" in caplog.text
        await journal.append(b"first")
        await journal.close()
        assert [record.payload for record in await store.read("other")] == [b"first"]


async def test_a_newer_format_is_refused_with_upgrade_advice(journal_dir: Path) -> None:
    journal_dir.mkdir()
    path = journal_dir / "future.journal"
    head = b"DURJ" + (99).to_bytes(4, "little") + bytes(8)  # (every version's first 20 bytes)
    crc = zlib.crc32(head)
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    content = head + masked.to_bytes(4, "little") + b"whatever comes next"
    path.write_bytes(content)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(UnsupportedJournalFormat, match="upgrade durable") as caught:
            await store.open("future")
    assert caught.value.found == 99
    assert path.read_bytes() == content


async def test_a_huge_length_field_mid_file_is_corruption_not_memory_error(
    journal_dir: Path,
) -> None:
    whole = bytearray(journal_bytes(*PAYLOADS))
    start = frame_offsets(*PAYLOADS)[1]
    whole[start : start + 4] = (0xFFFFFFF0).to_bytes(4, "little")
    journal_dir.mkdir()
    (journal_dir / "huge.journal").write_bytes(whole)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalCorrupted, match=r"only .* follow"):
            await store.open("huge")


async def test_read_ignores_a_partial_tail_without_truncating(journal_dir: Path) -> None:
    whole = journal_bytes(*PAYLOADS)
    journal_dir.mkdir()
    path = journal_dir / "busy.journal"
    path.write_bytes(whole[:-3])
    async with JournalDirectory(journal_dir) as store:
        records = await store.read("busy")
    assert [record.payload for record in records] == list(PAYLOADS[:-1])
    assert path.read_bytes() == whole[:-3], "readers never modify a journal"
