"""The file format: headers, which frame version a file holds, and the recovery rule.

Pure functions over bytes; no file I/O. A journal or an inbox is a header and frames
(`_frames`). Version 1 files (an 8-byte header, frames without a watermark) keep opening,
and appends to them stay version 1; every new file is version 2:

    header  = "DURJ" u32le(2) u32le(file_id) u32le(masked_crc32(the 12 bytes before))  16 bytes
    file_id = random, non-zero, chosen when the file is created; every frame repeats it, so
              frames of another file's blocks, which a crash can expose, are not this file's

Every later version keeps these 16 bytes first, so a header whose checksum holds and whose
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

from .._errors import JournalCorrupted, UnsupportedJournalFormat
from ._frames import (
    FILE_HEADER as V1_HEADER,
)
from ._frames import (
    FILE_MAGIC,
    READ_LIMIT,
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
_HEADER = struct.Struct("<4sIII")
HEADER_SIZE = _HEADER.size
_MASK_DELTA = 0xA282EAD8


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def header_v2(file_id: int) -> bytes:
    """The 16-byte header of a new file."""
    head = struct.pack("<4sII", FILE_MAGIC, FORMAT_VERSION, file_id)
    return head + struct.pack("<I", _mask(zlib.crc32(head)))


@dataclass(frozen=True)
class FileFormat:
    """How to append to one file: its frame version, and its id (version 2)."""

    version: int
    file_id: int

    @property
    def header(self) -> bytes:
        """The header a file of this format starts with."""
        return V1_HEADER if self.version == 1 else header_v2(self.file_id)

    def frame(self, payload: bytes, watermark: int) -> bytes:
        """One record's frame; `watermark`: bytes a completed sync covers (version 2)."""
        if self.version == 1:
            return encode_frame(payload)
        return encode_frame_v2(payload, watermark, self.file_id)

    def sync_mark(self, watermark: int) -> bytes:
        """A frame with no record, saying that `watermark` bytes are durable (b"" in v1)."""
        return b"" if self.version == 1 else encode_frame_v2(b"", watermark, self.file_id)


def new_format() -> FileFormat:
    """The format of a file created now: version 2, a fresh random file id."""
    return FileFormat(FORMAT_VERSION, int.from_bytes(os.urandom(4), "little") or 1)


@dataclass(frozen=True)
class Parsed:
    """A file read back.

    `records` end at `valid_end`; `torn` describes what follows them when it is a torn
    tail to cut (None: nothing follows). `valid_end == 0` means no header either: the file
    is new, or was never synced, and gets a fresh header. `synced` is how many bytes a
    completed sync is known to cover (the highest watermark read; version 1: the valid end).
    """

    records: list[StoredRecord]
    valid_end: int
    torn: str | None
    format: FileFormat
    synced: int


def parse(data: bytes, path: Path, *, salvage: bool = False) -> Parsed:
    """Records, where they end, and what to cut; refuses damage a sync had covered.

    `salvage` (inboxes, version 2): a frame damaged after a sync covered it is a record
    with an empty payload instead, and the frames after it are read on.

    Raises:
        JournalCorrupted: damage to bytes a sync had made durable (the header included).
        UnsupportedJournalFormat: a valid header of a newer format.
    """
    if data[:8] == V1_HEADER:
        return _parse_v1(data, path)
    if len(data) >= HEADER_SIZE:
        magic, version, file_id, crc = _HEADER.unpack_from(data)
        if magic == FILE_MAGIC and _mask(zlib.crc32(data[:12])) == crc:
            if version > FORMAT_VERSION:
                raise UnsupportedJournalFormat(path=path, found=version, supported=FORMAT_VERSION)
            if version == FORMAT_VERSION:
                return _parse_v2(data, path, file_id, salvage)
    return _parse_headless(data, path)


def _parse_v2(data: bytes, path: Path, file_id: int, salvage: bool) -> Parsed:
    result = (salvage_v2 if salvage else scan_v2)(data, HEADER_SIZE, file_id)
    damage = result.damage
    if damage is not None and not damage.torn_tail:
        raise JournalCorrupted(path=path, offset=damage.offset, reason=damage.reason)
    return Parsed(
        result.records,
        result.valid_end,
        None if damage is None else damage.reason,
        FileFormat(FORMAT_VERSION, file_id),
        result.synced,
    )


def _parse_v1(data: bytes, path: Path) -> Parsed:
    result = scan(data, len(V1_HEADER), READ_LIMIT)
    damage = result.damage
    if damage is not None and not damage.torn_tail:
        raise JournalCorrupted(path=path, offset=damage.offset, reason=damage.reason)
    return Parsed(
        result.records,
        result.valid_end,
        None if damage is None else damage.reason,
        FileFormat(1, 0),
        result.valid_end,
    )


def _parse_headless(data: bytes, path: Path) -> Parsed:
    """No valid header: damage a sync had covered, or a file that never had a sync.

    Which file a frame belongs to is unknown here (the header said), so a frame of any
    file counts as proof: in the rare state where a new file's first page was lost and
    stale blocks of another journal lie after it, the file is refused, never cut wrongly.
    """
    if not data:
        return Parsed([], 0, None, new_format(), 0)
    proof = find_proof(data)
    if proof is not None:
        at, watermark = proof
        raise JournalCorrupted(
            path=path,
            offset=0,
            reason=(
                f"its header is damaged, yet the valid frame at byte {at} says a sync had "
                f"made the first {watermark} bytes durable"
            ),
        )
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
        new_format(),
        0,
    )
