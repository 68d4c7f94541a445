"""Format version 2 through real files: what a sync covered is refused when damaged, what
no sync covered is cut, a lost header reads as never written, payloads forge nothing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from durable import JournalCorrupted, JournalDirectory, JournalMisplaced
from durable._storage import _directory
from durable._storage import _inbox as inbox
from durable._storage._format import HEADER_SIZE, seed_of
from durable._storage._frames import StoredRecord, encode_frame_v2
from durable._storage._journal_opening import parse
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


# A journal "flow" whose last record's checksum ends in 0xf7, escaped as f7 01 (bytes 182-183),
# then the closing sync mark (184-204): written by finished_journal, kept as found.
ESCAPE_AT_CHECKSUM_END = bytes.fromhex(
    "4455524a02000000268e129aceb26de29be0b6bec10b000000268e129a0000000000000000636861726765"
    "2063617264503b2313c127000000268e129a3400000000000000726573657276652073746f636b72657365"
    "72766520"
    "73746f636b726573657276652073746f636bdae68be0c10f000000268e129a7000000000000000736869"
    "70207468652070617263656c29c64d70c10e000000268e129a940000000000000073656e64207468652065"
    "6d61696cee7555f701c100000000268e129ab8000000000000000580be31"
)


async def test_a_damaged_escape_at_a_checksums_end_is_refused_not_taken_for_junk(
    journal_dir: Path,
) -> None:
    # f7 01 -> f7 00: unescaped, the checksum still reads right, and "00" looked like junk
    # between frames (a zeroed page), which moved the damage onto the closing mark, cut as an
    # unsynced tail (seen once in CI, ~1 journal in 100 has an escape there)
    path = journal_dir / "flow.journal"
    journal_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ESCAPE_AT_CHECKSUM_END)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        assert [record.payload for record in journal.records] == PAYLOADS
        await journal.abandon()
        damaged = bytearray(ESCAPE_AT_CHECKSUM_END)
        damaged[183] ^= 0x01
        path.write_bytes(damaged)
        with pytest.raises(JournalCorrupted, match="damaged escape"):
            await store.open("flow")
    assert path.read_bytes() == damaged  # (refused untouched)


async def test_a_flipped_byte_anywhere_in_a_synced_journal_is_refused_untouched(
    journal_dir: Path,
) -> None:
    whole = await finished_journal(journal_dir)
    path = journal_dir / "flow.journal"
    # The closing sync mark: the last 0xc1 byte (a frame's first) whose frame runs to the
    # end (a 0xc1 inside the mark's own bytes, its checksum say, is not it).
    marks = [
        at
        for at in range(len(whole) - 1, HEADER_SIZE - 1, -1)
        if whole[at] == 0xC1
        and whole[at:] == encode_frame_v2(b"", at, file_id_of(path), seed_of(path))
    ]
    assert marks, "a closed journal ends with its sync mark"
    last_record_end = marks[0]
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
        forged = encode_frame_v2(b"\x81\xa1k\xa3end", 1 << 40, file_id_of(path), seed_of(path))
        result = b"result: " + forged * 3 + b" end of result"
        journal.write(result)
        data = path.read_bytes()
        await journal.abandon()
    start = frame_starts(data, path)[1]
    # Every cut inside the result's frame (a sync mark the group commit may have written
    # after it meanwhile is not part of it: cut there, the result is whole, and synced).
    end = start + len(encode_frame_v2(result, start, file_id_of(path), seed_of(path)))
    assert end <= len(data)
    for cut in range(start + 1, end):
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


async def test_another_files_journal_at_a_name_is_moved_aside_not_read_as_its_own(
    journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A deleted journal's blocks that a crash exposed in a new file (ext4 data=writeback),
    # or a journal copied from another workflow: never read as this workflow's, never lost.
    whole = await finished_journal(journal_dir, "original")
    (journal_dir / "copy.journal").write_bytes(whole)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalMisplaced, match="written for another file"):
            await store.read("copy")
        with caplog.at_level(logging.WARNING, logger="durable"):
            journal = await store.open("copy")
        assert journal.records == []
        await journal.close()
    assert "moved aside" in caplog.text
    assert (journal_dir / "copy.journal.misplaced").read_bytes() == whole
    assert (journal_dir / "original.journal").read_bytes() == whole


@pytest.mark.parametrize("size", [HEADER_SIZE, 512, 4096])
async def test_another_journals_first_page_over_a_synced_journal_is_refused_not_moved_aside(
    journal_dir: Path, size: int
) -> None:
    # Another workflow's header (its first sector, its first page) written over this
    # journal's: frames of this name after it prove a sync covered the header, so the file
    # is this workflow's, damaged; moved aside, its run started afresh (every step again).
    other = await finished_journal(journal_dir, "other")
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        for index in range(40):
            await journal.append(b"step %d " % index * 10)
        await journal.close()
    path = journal_dir / "flow.journal"
    whole = path.read_bytes()
    head = other[:size]  # (the other journal is shorter than a page: all of it)
    damaged = head + whole[len(head) :]
    path.write_bytes(damaged)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalCorrupted) as caught:
            await store.read("flow")
        assert caught.value.offset == 0
        with pytest.raises(JournalCorrupted):
            await store.open("flow")
    assert path.read_bytes() == damaged
    assert not (journal_dir / "flow.journal.misplaced").exists()


async def test_an_older_same_named_journals_header_over_a_synced_one_is_refused_not_emptied(
    journal_dir: Path,
) -> None:
    # The header of another file of this name (the generation before, a deleted journal of
    # the same id) over this one's: its frames were "another file's", cut as a torn tail
    # right after the header, every record with them. A frame of another file cannot start
    # within a sector by a crash (stale blocks fill whole sectors): refused.
    older = await finished_journal(journal_dir / "older")
    whole = await finished_journal(journal_dir)
    path = journal_dir / "flow.journal"
    assert older[:HEADER_SIZE] != whole[:HEADER_SIZE]  # (another file id, the same seed)
    for damaged in (
        older[:HEADER_SIZE] + whole[HEADER_SIZE:],
        whole + older[HEADER_SIZE:],  # (another's frames right after the closing mark)
    ):
        path.write_bytes(damaged)
        async with JournalDirectory(journal_dir) as store:
            with pytest.raises(JournalCorrupted, match="another file of this name"):
                await store.read("flow")
            with pytest.raises(JournalCorrupted, match="another file of this name"):
                await store.open("flow")
        assert path.read_bytes() == damaged


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


def post_all(path: Path, *payloads: bytes) -> None:
    directory_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for payload in payloads:
            inbox.post(path, payload, directory_fd)
    finally:
        os.close(directory_fd)


MESSAGES = [f"message {index}".encode() for index in range(4)]


@pytest.mark.parametrize(
    "damage",
    ["bit in a message", "payload byte made a frame start", "bit in a sync mark", "zeroed run"],
)
async def test_damage_to_a_synced_inbox_keeps_every_position(
    journal_dir: Path, damage: str
) -> None:
    # Messages say their positions, so damage cannot shift the ones after it: a damaged
    # message is one empty (skippable) position, a damaged mark none, a run across
    # several messages exactly those.
    journal_dir.mkdir()
    path = journal_dir / "flow.inbox"
    post_all(path, *MESSAGES)
    data = bytearray(path.read_bytes())
    second, third = data.index(b"message 1"), data.index(b"message 2")
    expected = list(MESSAGES)
    if damage == "bit in a message":
        data[second] ^= 0x01
        expected[1] = b""
    elif damage == "payload byte made a frame start":
        data[second + 3] = 0xC1
        expected[1] = b""
    elif damage == "bit in a sync mark":
        mark = data.index(b"\xc1", second)  # (the mark that follows message 1)
        data[mark + 3] ^= 0x01
    else:
        data[second : third + 2] = bytes(third + 2 - second)
        expected[1] = expected[2] = b""
    path.write_bytes(data)
    assert [message.payload for message in read_inbox(path)] == expected
    post_all(path, b"message 4")  # senders go on: the position is what it was
    assert [message.payload for message in read_inbox(path)] == [*expected, b"message 4"]
    assert path.read_bytes()[: len(data)] == bytes(data), "the damaged bytes are left as they are"


async def test_an_inbox_message_no_sync_is_known_to_cover_is_not_taken_yet(
    journal_dir: Path,
) -> None:
    # A sender killed between its append and its sync (or before its mark): a power loss
    # may still take that message back, so a runner must not take it (it would count its
    # position as taken, and the next acknowledged message would land there unseen).
    journal_dir.mkdir()
    path = journal_dir / "flow.inbox"
    post_all(path, b"first", b"second")
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\xc1")])  # the second sender's mark never written
    assert [message.payload for message in read_inbox(path)] == [b"first"]
    post_all(path, b"third")  # the next sender syncs it first, and says so
    assert [message.payload for message in read_inbox(path)] == [b"first", b"second", b"third"]


@pytest.mark.parametrize("damage", ["a flipped bit", "version rotted to 1"])
async def test_a_damaged_inbox_header_is_stepped_over(journal_dir: Path, damage: str) -> None:
    journal_dir.mkdir()
    path = journal_dir / "flow.inbox"
    post_all(path, *MESSAGES)
    data = bytearray(path.read_bytes())
    if damage == "a flipped bit":
        data[5] ^= 0x01
    else:
        data[4] = 0x01
    path.write_bytes(data)
    assert [message.payload for message in read_inbox(path)] == MESSAGES
    post_all(path, b"message 4")
    assert [message.payload for message in read_inbox(path)][-1] == b"message 4"


async def test_one_sync_per_post(journal_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal_dir.mkdir()
    path = journal_dir / "flow.inbox"
    syncs: list[int] = []
    real = os.fdatasync

    def counted(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(inbox, "sync_file", counted)
    post_all(path, *MESSAGES)
    assert len(syncs) == len(MESSAGES)


@pytest.mark.parametrize(
    ("position", "value"),
    [
        (7, 0xFF),  # version 2 -> 4278190082: the checksum, not an upgrade advice
        (4, 0x01),  # version 2 -> 1: the first 8 bytes now read as a version 1 header
    ],
)
async def test_a_damaged_version_field_is_refused_not_emptied(
    journal_dir: Path, position: int, value: int
) -> None:
    whole = bytearray(await finished_journal(journal_dir))
    whole[position] = value
    path = journal_dir / "flow.journal"
    path.write_bytes(whole)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalCorrupted) as caught:
            await store.open("flow")
    assert caught.value.offset == 0
    assert "upgrade" not in str(caught.value)
    assert path.read_bytes() == whole


async def test_a_writer_killed_after_its_last_sync_leaves_a_proof_at_the_next_open(
    journal_dir: Path,
) -> None:
    # No close(), so no sync mark: the last batch is proven by nothing in the file. The
    # next open's recovery sync covers it and leaves the mark, so bit rot in that batch is
    # refused later, not cut as a tail.
    path = journal_dir / "flow.journal"
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        for payload in PAYLOADS:
            await journal.append(payload)
        killed = path.read_bytes()  # what a SIGKILL right now leaves
        await journal.abandon()
    path.write_bytes(killed)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")  # (reads the finished outcome; writes nothing)
        await journal.close()
    recovered = path.read_bytes()
    assert recovered.startswith(killed)
    assert len(recovered) > len(killed), "a sync mark follows the recovered records"
    last = killed.index(PAYLOADS[-1])
    damaged = bytearray(recovered)
    damaged[last] ^= 0x01
    path.write_bytes(damaged)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(JournalCorrupted):
            await store.open("flow")
    assert path.read_bytes() == damaged
    # Reopening a journal whose last batch is proven writes nothing more.
    path.write_bytes(recovered)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        await journal.close()
    assert path.read_bytes() == recovered


async def test_a_reader_overlapping_a_recovery_reads_again_instead_of_refusing(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader's first read holds a torn tail; by its second, the writer has cut it and
    # appended synced frames after: what the first read saw was never damage to believe.
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("flow")
        await journal.append(b"synced")
        journal.write(b"torn by a crash")
        torn = (journal_dir / "flow.journal").read_bytes()[:-3]
        await journal.abandon()
        (journal_dir / "flow.journal").write_bytes(torn)
        journal = await store.open("flow")  # recovery cuts the torn frame
        await journal.append(b"after")
        await journal.append(b"and after")
        await journal.close()
    whole = (journal_dir / "flow.journal").read_bytes()
    cut = parse(torn, journal_dir / "flow.journal").valid_end  # where recovery cut
    stale = torn + whole[cut:]  # the old torn bytes, then the new frames after them
    with pytest.raises(JournalCorrupted):
        parse(stale, journal_dir / "flow.journal")
    reads = iter([stale, whole])
    monkeypatch.setattr(_directory, "read_regular", lambda fd, path: next(reads))
    async with JournalDirectory(journal_dir) as store:
        records = await store.read("flow")
    assert [record.payload for record in records] == [b"synced", b"after", b"and after"]
