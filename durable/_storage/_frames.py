"""Frames: length + checksum + payload, and telling a torn tail from mid-file corruption.

Pure functions over bytes; no file I/O. The layout (little-endian) is documented in
docs/architecture.md:

    file   = FILE_HEADER frame*
    frame  = u32 payload_length, u32 masked_crc32(length_bytes + payload), payload

A payload is never empty, and the CRC is masked (rotated and offset, as LevelDB does), so a
run of zero bytes, which some filesystems leave after a crash, never reads as a valid frame.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

FILE_MAGIC = b"DURJ"
FORMAT_VERSION = 1
FILE_HEADER = FILE_MAGIC + struct.pack("<I", FORMAT_VERSION)
FRAME_HEADER_SIZE = 8
DEFAULT_MAX_RECORD_SIZE = 64 * 1024 * 1024
PROBE_BUDGET = 256 << 20  # checksum work spent telling a torn tail from corruption
READ_LIMIT = 0xFFFFFFFF  # reading is bounded by the file's size, not by a configured limit

_FRAME_HEADER = struct.Struct("<II")
_LENGTH = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


def _masked_crc(length_bytes: bytes, payload: bytes | memoryview) -> int:
    crc = zlib.crc32(payload, zlib.crc32(length_bytes))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_frame(payload: bytes) -> bytes:
    """Frame one payload; callers check the size limit first."""
    length = len(payload)
    crc = zlib.crc32(payload, zlib.crc32(_LENGTH.pack(length)))
    return (
        _FRAME_HEADER.pack(length, (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)
        + payload
    )


class StoredRecord(NamedTuple):
    """One payload read back, with the byte offset of its frame (for error messages)."""

    offset: int
    payload: bytes


@dataclass(frozen=True)
class Damage:
    """The first bad frame: a torn tail (nothing valid after it) or corruption."""

    offset: int
    reason: str
    torn_tail: bool


@dataclass(frozen=True)
class Scan:
    """What a buffer holds: its valid records, where they end, and the damage after them."""

    records: list[StoredRecord]
    valid_end: int
    damage: Damage | None


def _frame_problem(data: bytes, offset: int, max_payload: int) -> str | None:
    """Why no valid frame starts at `offset`, or None when one does."""
    remaining = len(data) - offset
    if remaining < FRAME_HEADER_SIZE:
        return f"incomplete frame header ({remaining} of {FRAME_HEADER_SIZE} bytes)"
    length, crc = _FRAME_HEADER.unpack_from(data, offset)
    if length == 0:
        return "frame of length 0"
    if length > max_payload:
        return f"frame length {length} exceeds the {max_payload}-byte limit"
    if length > remaining - FRAME_HEADER_SIZE:
        return f"frame of {length} bytes, but only {remaining - FRAME_HEADER_SIZE} follow"
    start = offset + FRAME_HEADER_SIZE
    view = memoryview(data)[start : start + length]
    if _masked_crc(data[offset : offset + 4], view) != crc:
        return "checksum mismatch"
    return None


def scan(data: bytes, start: int, max_payload: int = DEFAULT_MAX_RECORD_SIZE) -> Scan:
    """Read the frames of `data` from `start`, and classify any damage after the last good one.

    Damage with no valid frame anywhere after it is a torn tail: the remains of a write that
    a crash interrupted. Damage followed by a valid frame cannot come from an interrupted
    append, so it is corruption. A payload that happens to embed a valid frame makes a torn
    tail read as corruption: the safe direction (refuse, never drop data).
    """
    records: list[StoredRecord] = []
    offset = start
    end = len(data)
    unpack_header = _FRAME_HEADER.unpack_from
    new_record = tuple.__new__  # StoredRecord(...) without its Python-level __new__ (replay)
    crc32 = zlib.crc32
    while end - offset > FRAME_HEADER_SIZE:
        length, crc = unpack_header(data, offset)
        payload_start = offset + FRAME_HEADER_SIZE
        payload_end = payload_start + length
        if length == 0 or length > max_payload or payload_end > end:
            break
        payload = data[payload_start:payload_end]
        full = crc32(payload, crc32(data[offset : offset + 4]))
        if (((full >> 15) | (full << 17)) + _MASK_DELTA) & 0xFFFFFFFF != crc:
            break
        records.append(new_record(StoredRecord, (offset, payload)))
        offset = payload_end
    if offset == end:
        return Scan(records, offset, None)
    reason = _frame_problem(data, offset, max_payload) or "unreadable frame"
    checked = 0  # bytes checksummed while probing: bounded, or a big torn frame is quadratic
    for probe in range(offset + 1, end - FRAME_HEADER_SIZE):
        length = _LENGTH.unpack_from(data, probe)[0]
        if length == 0 or length > end - probe - FRAME_HEADER_SIZE or length > max_payload:
            continue
        checked += length
        if checked > PROBE_BUDGET:
            reason += (
                f"; more than {PROBE_BUDGET >> 20} MiB of possible frames follow it, too "
                "many to rule out valid data, so it is not truncated as a torn tail"
            )
            return Scan(records, offset, Damage(offset, reason, False))
        if _frame_problem(data, probe, max_payload) is None:
            return Scan(
                records,
                offset,
                Damage(offset, f"{reason}, with a valid frame at byte {probe} after it", False),
            )
    return Scan(records, offset, Damage(offset, reason, True))
