"""The file format: headers, which frame version a file holds, and the recovery rule.

Pure functions over bytes; no file I/O. A journal or an inbox is a header and frames
(`_frames`). Version 1 files (an 8-byte header, frames without a watermark) keep opening,
and appends to them stay version 1; every new file is version 2:

    header  = "DURJ" u32le(2) u32le(file_id) u32le(seed) u32le(masked_crc32(16 bytes before))
    file_id = random, non-zero, chosen when the file is created; every frame repeats it
    seed    = crc32 of the file's name without ".next"/".prev" ("<id>.journal", "<id>.inbox");
              every frame's checksum is seeded with it

So frames of another file's blocks, which a crash can expose, are not this file's (another
id, or another name), and frames can be checked against the name when the header is lost.
A header whose checksum holds but whose seed is another name's is a misplaced file
(JournalMisplaced): copied or renamed from another workflow's, or a deleted journal's blocks
that a crash exposed in a new file; unless frames of this name prove a sync covered it (as
for a damaged header, below): then it is this file's, its header damaged (another file's
header or first page written over it), and refused.

Every later version keeps these 20 bytes first, so a header whose checksum holds and whose
version is newer is a newer durable's file (UnsupportedJournalFormat), and one whose
checksum fails is damage. What a damaged or missing header means depends on the frames
after it: a valid frame whose watermark covers byte 0 proves a sync made the header durable,
so it was damaged afterwards (JournalCorrupted at offset 0, nothing written); without one,
the file never had a completed sync (a new file whose size reached the disk but not its
first page) and reads as never written.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .._errors import JournalCorrupted, JournalMisplaced, UnsupportedJournalFormat
from ._frames import (
    FILE_HEADER as V1_HEADER,
)
from ._frames import (
    FILE_MAGIC,
    READ_LIMIT,
    Scan,
    ScanV2,
    StoredRecord,
    encode_frame,
    encode_frame_v2,
    find_proof,
    salvage_v2,
    scan,
    scan_v2,
    v1_frame_at,
)

FORMAT_VERSION = 2
_HEADER = struct.Struct("<4sIIII")
HEADER_SIZE = _HEADER.size
_MASK_DELTA = 0xA282EAD8
_KEY_SUFFIXES = (".tmp", ".prev", ".next")


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def seed_of(path: Path) -> int:
    """The checksum seed of the file at `path`: its name, every generation alike."""
    name = path.name
    for suffix in _KEY_SUFFIXES:
        name = name.removesuffix(suffix)
    return zlib.crc32(name.encode("utf-8", "surrogateescape"))


def header_v2(file_id: int, seed: int) -> bytes:
    """The 20-byte header of a new file."""
    head = struct.pack("<4sIII", FILE_MAGIC, FORMAT_VERSION, file_id, seed)
    return head + struct.pack("<I", _mask(zlib.crc32(head)))


@dataclass(frozen=True)
class FileFormat:
    """How to append to one file: its frame version, its id and its seed (version 2)."""

    version: int
    file_id: int
    seed: int

    @property
    def header(self) -> bytes:
        """The header a file of this format starts with."""
        return V1_HEADER if self.version == 1 else header_v2(self.file_id, self.seed)

    def frame(self, payload: bytes, watermark: int) -> bytes:
        """One record's frame; `watermark`: bytes a completed sync covers (version 2)."""
        if self.version == 1:
            return encode_frame(payload)
        return encode_frame_v2(payload, watermark, self.file_id, self.seed)

    def sync_mark(self, watermark: int) -> bytes:
        """A frame with no record, saying that `watermark` bytes are durable (b"" in v1)."""
        if self.version == 1:
            return b""
        return encode_frame_v2(b"", watermark, self.file_id, self.seed)


def new_format(path: Path) -> FileFormat:
    """The format of a file created now at `path`: version 2, a fresh random file id."""
    file_id = int.from_bytes(os.urandom(4), "little") or 1
    return FileFormat(FORMAT_VERSION, file_id, seed_of(path))


def v2_file_id(head: bytes, path: Path) -> int | None:
    """The file id in a version 2 header (a file's first HEADER_SIZE bytes) that checks out.

    None: a version 1 file, or no valid header (a reader then parses the whole file).

    Raises:
        UnsupportedJournalFormat: a valid header of a newer format.
        JournalMisplaced: a valid header of a file with another name.
    """
    if len(head) < HEADER_SIZE:
        return None
    magic, version, file_id, file_seed, crc = _HEADER.unpack_from(head)
    if magic != FILE_MAGIC or _mask(zlib.crc32(head[:16])) != crc:
        return None
    if version > FORMAT_VERSION:
        raise UnsupportedJournalFormat(path=path, found=version, supported=FORMAT_VERSION)
    if version != FORMAT_VERSION:
        return None
    if file_seed != seed_of(path):
        raise JournalMisplaced(path=path)
    return int(file_id)


@dataclass(frozen=True)
class Parsed:
    """A file read back.

    `records` end at `valid_end`; `torn` describes what follows them when it is a torn
    tail to cut (None: nothing follows). `valid_end == 0` means no header either: the file
    is new, or was never synced, and gets a fresh header. `synced` is how many bytes a
    completed sync is known to cover (the highest watermark read; version 1: the valid end);
    `records_end` where the last record's frame ends: below it and above `synced` lie
    records nothing in the file proves durable yet (a writer killed after its last sync,
    before its sync mark).
    """

    records: list[StoredRecord]
    valid_end: int
    torn: str | None
    format: FileFormat
    synced: int
    records_end: int


def parse(data: bytes, path: Path, *, salvage: bool = False) -> Parsed:
    """Records, where they end, and what to cut; refuses damage a sync had covered.

    `salvage` (inboxes, version 2): damage a sync had covered is stepped over, and the
    frames after it are read on (an inbox's messages say their positions, so the damaged
    ones are the gaps); a damaged header is stepped over too, when frames prove the file.

    Raises:
        JournalCorrupted: damage to bytes a sync had made durable (the header included).
        JournalMisplaced: a valid header, of a file with another name (no frame of this
            name proving a sync covered it).
        UnsupportedJournalFormat: a valid header of a newer format.
    """
    seed = seed_of(path)
    if data[:8] == V1_HEADER:
        # (A version 2 header whose version field rotted to 1 reads the same: a version 1
        # file has a version 1 frame, or nothing, after its header; see _parse_v1.)
        return _parse_v1(data, path, seed, salvage)
    if len(data) >= HEADER_SIZE:
        magic, version, file_id, file_seed, crc = _HEADER.unpack_from(data)
        if magic == FILE_MAGIC and _mask(zlib.crc32(data[:16])) == crc:
            if version > FORMAT_VERSION:
                raise UnsupportedJournalFormat(path=path, found=version, supported=FORMAT_VERSION)
            if version == FORMAT_VERSION:
                if file_seed != seed:
                    if find_proof(data, seed) is not None:
                        # (frames of this name prove a sync covered the header: another
                        # file's header, or its first page, over this file's, not a
                        # misplaced file to move aside and start afresh)
                        return _parse_headless(data, path, seed, salvage)
                    raise JournalMisplaced(path=path)
                return _parse_v2(data, path, FileFormat(version, file_id, seed), salvage)
    return _parse_headless(data, path, seed, salvage)


def _parse_v2(data: bytes, path: Path, file_format: FileFormat, salvage: bool) -> Parsed:
    scan_frames = salvage_v2 if salvage else scan_v2
    result = scan_frames(data, HEADER_SIZE, file_format.file_id, file_format.seed)
    return _parsed(result, path, file_format, result.synced, result.records_end)


def _parsed(
    result: Scan | ScanV2, path: Path, file_format: FileFormat, synced: int, records_end: int
) -> Parsed:
    """A scan as Parsed: damage a sync had covered raised, a torn tail described."""
    damage = result.damage
    if damage is not None and not damage.torn_tail:
        raise JournalCorrupted(path=path, offset=damage.offset, reason=damage.reason)
    torn = None if damage is None else damage.reason
    return Parsed(result.records, result.valid_end, torn, file_format, synced, records_end)


def _parse_v1(data: bytes, path: Path, seed: int, salvage: bool) -> Parsed:
    result = scan(data, len(V1_HEADER), READ_LIMIT)
    damage = result.damage
    if not result.records and damage is not None and (proof := find_proof(data, seed)) is not None:
        # Not a version 1 file with a torn first frame: a version 2 file whose header's
        # version field was damaged (2 -> 1), its frames proving a sync covered it.
        if salvage:
            return _parse_v2(data, path, FileFormat(FORMAT_VERSION, proof[2], seed), salvage)
        raise _damaged_header(path, proof)
    return _parsed(result, path, FileFormat(1, 0, seed), result.valid_end, result.valid_end)


def _damaged_header(path: Path, proof: tuple[int, int, int]) -> JournalCorrupted:
    at, watermark, _ = proof
    return JournalCorrupted(
        path=path,
        offset=0,
        reason=(
            f"its header is damaged, yet the valid frame at byte {at} says a sync had "
            f"made the first {watermark} bytes durable"
        ),
    )


def _parse_headless(data: bytes, path: Path, seed: int, salvage: bool) -> Parsed:
    """No valid header: damage a sync had covered, or a file that never had a sync.

    Which file id a frame has is unknown here (the header said), so a frame of any id but
    of this name counts as proof. With `salvage` (an inbox), a damaged header is stepped
    over: the proving frame names the file's id, and its frames are read with it.
    """
    if not data:
        return Parsed([], 0, None, new_format(path), 0, 0)
    proof = find_proof(data, seed)
    if proof is not None:
        if salvage and len(data) > HEADER_SIZE:
            return _parse_v2(data, path, FileFormat(FORMAT_VERSION, proof[2], seed), salvage)
        raise _damaged_header(path, proof)
    if v1_frame_at(data, len(V1_HEADER)):
        raise JournalCorrupted(
            path=path,
            offset=0,
            reason="its header is damaged, and version 1 records follow it",
        )
    what = "zeros" if data.count(0) == len(data) else "no valid header"
    return Parsed(
        [],
        0,
        f"{what} where the header should be, and no frame saying a sync covered it: the "
        "file never had a completed sync (a crash while it was new)",
        new_format(path),
        0,
        0,
    )
