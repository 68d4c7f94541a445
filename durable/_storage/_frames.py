"""Frames: length + checksum + payload, and telling a torn tail from damage a sync covered.

Pure functions over bytes; no file I/O. Two frame formats, both documented in
docs/architecture.md:

version 1 (read, and appended to files that already have it):

    frame  = u32 payload_length, u32 masked_crc32(length_bytes + payload), payload

version 2 (every new file):

    frame  = MARK, escape(u32 n, u32 file_id, u64 watermark, payload[n], u32 crc)
    crc    = masked_crc32 of what precedes it in the frame, seeded with the file's name

A v2 frame starts with MARK (0xC1), a byte that escaping removes from everything after it,
so a frame can only start where a writer started one: no payload (an event, a result) can
embed a frame that a reader would take for structure. Its `watermark` says how many bytes
of the file a completed sync had made durable when the frame was written: damage below a
watermark that a valid later frame carries is damage to synced bytes (corruption), damage
above every such watermark is the unsynced tail a power loss may leave (cut). A frame with
n = 0 carries only a watermark: a sync mark, written after the last sync of a file.
Every frame names its file's random `file_id` (from the header), and its checksum is seeded
with a hash of the file's name (also in the header), so frames of another file (stale
blocks a crash can expose) never read as this file's, even when its header is lost.
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


def frame_at(data: bytes, offset: int, max_payload: int = DEFAULT_MAX_RECORD_SIZE) -> bool:
    """Whether a valid frame starts at `offset` (and ends within `data`)."""
    return _frame_problem(data, offset, max_payload) is None


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


def next_frame(data: bytes, start: int, max_payload: int = DEFAULT_MAX_RECORD_SIZE) -> int | None:
    """Where the first valid frame at or after `start` begins (None: none, or past the budget).

    For salvaging the frames after damage in a log whose records stand alone (a queue's
    request log), where a journal would refuse: checksum work is bounded by PROBE_BUDGET.
    """
    checked = 0
    for probe in range(start, len(data) - FRAME_HEADER_SIZE):
        length = _LENGTH.unpack_from(data, probe)[0]
        if length == 0 or length > len(data) - probe - FRAME_HEADER_SIZE or length > max_payload:
            continue
        checked += length
        if checked > PROBE_BUDGET:
            return None
        if _frame_problem(data, probe, max_payload) is None:
            return probe
    return None


# Version 2 ----------------------------------------------------------------------------

MARK = b"\xc1"  # never a msgpack type byte, never in UTF-8 text
_ESC = b"\xf7"
_ESCAPED_ESC = b"\xf7\x01"
_ESCAPED_MARK = b"\xf7\x02"
_MARK_BYTE = MARK[0]
_ESC_BYTE = _ESC[0]  # (`int in bytes` is 10x faster than a one-byte `bytes in bytes`)
_BODY_HEAD = struct.Struct("<IIQ")  # payload length, file id, watermark
_BODY_HEAD_SIZE = _BODY_HEAD.size
_CRC = struct.Struct("<I")
_CHECKSUM_SIZE = _CRC.size
FRAME_V2_OVERHEAD = 1 + _BODY_HEAD_SIZE + _CHECKSUM_SIZE  # before escaping


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def escape(body: bytes) -> bytes:
    """`body` with no MARK byte left in it (reversible by unescape)."""
    return body.replace(_ESC, _ESCAPED_ESC).replace(MARK, _ESCAPED_MARK)


def unescape(escaped: bytes) -> bytes:
    """The body `escape` was given (garbage in, garbage out: the checksum decides)."""
    if _ESC_BYTE not in escaped:
        return escaped
    return escaped.replace(_ESCAPED_MARK, MARK).replace(_ESCAPED_ESC, _ESC)


def encode_frame_v2(payload: bytes, watermark: int, file_id: int, seed: int) -> bytes:
    """Frame one payload (n >= 1) or, with b"", a sync mark.

    (escape() and _mask() inlined: this runs once per record written.)
    """
    body = _BODY_HEAD.pack(len(payload), file_id, watermark) + payload
    crc = zlib.crc32(body, seed)
    body += _CRC.pack((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)
    return MARK + body.replace(_ESC, _ESCAPED_ESC).replace(MARK, _ESCAPED_MARK)


_OTHER_FILE = "a frame of another file (stale blocks a crash exposed?)"
_SECTOR = 512  # the smallest unit a device writes: stale blocks a crash exposes fill them


class _Frame(NamedTuple):
    length: int  # payload bytes; 0 for a sync mark
    file_id: int
    watermark: int
    payload: bytes
    escaped_size: int  # bytes the frame takes in the file, MARK included


def _read_frame(
    data: bytes, offset: int, piece_end: int, file_id: int | None, seed: int
) -> _Frame | str:
    """The frame at `offset` (a MARK), whose bytes end by `piece_end`, or why not.

    `file_id` None: a frame of any file (the header that would say which is damaged).
    """
    body = unescape(data[offset + 1 : piece_end])
    if len(body) < _BODY_HEAD_SIZE + _CHECKSUM_SIZE:
        return f"incomplete frame ({piece_end - offset} bytes)"
    length, frame_file, watermark = _BODY_HEAD.unpack_from(body)
    end = _BODY_HEAD_SIZE + length
    if end + _CHECKSUM_SIZE > len(body):
        return (
            f"frame of {length} bytes, but only "
            f"{len(body) - _BODY_HEAD_SIZE - _CHECKSUM_SIZE} follow"
        )
    (crc,) = _CRC.unpack_from(body, end)
    if _mask(zlib.crc32(body[:end], seed)) != crc:
        return "checksum mismatch"
    if file_id is not None and frame_file != file_id:
        return _OTHER_FILE
    size = piece_end - offset
    if end + _CHECKSUM_SIZE != len(body):  # junk (a zeroed page) between it and the next MARK
        escaped = escape(body[: end + _CHECKSUM_SIZE])
        if data[offset + 1 : offset + 1 + len(escaped)] != escaped:
            # (an escape's second byte damaged at the checksum's end: "f7 01" read as "f7"
            # and junk would pass the checksum, and the junk would hide the damage)
            return "a damaged escape sequence in its bytes"
        size = 1 + len(escaped)
    return _Frame(length, frame_file, watermark, body[_BODY_HEAD_SIZE:end], size)


@dataclass(frozen=True)
class ScanV2:
    """A v2 buffer read: its records, where they end, the damage after them, and more.

    `synced` is the highest watermark a valid frame carries: how much of the file a
    completed sync is known to cover. When it is below `records_end`, the last records
    are not proven durable by anything in the file (yet).
    """

    records: list[StoredRecord]
    valid_end: int
    damage: Damage | None
    synced: int
    records_end: int  # where the last record's frame ends (sync marks after it aside)


def scan_v2(  # noqa: PLR0915 (the replay's hot loop, its common case inline)
    data: bytes, start: int, file_id: int, seed: int, base: int = 0
) -> ScanV2:
    """Read the v2 frames of `data` from `start`, and classify any damage after the last good one.

    At the first bad byte X, every valid frame after it is read for its watermark: one that
    says a sync covered X proves the damage hit durable bytes (corruption, refused). If none
    does, everything from X on was written after the last sync the file shows, which is
    exactly what a power loss may lose or scramble: a torn tail, cut at X. Stale frames of
    this file (left from an earlier cut tail) carry watermarks at or below the earlier cut,
    so they never prove a later one wrong. Linear in the size of the data.

    A valid frame whose watermark does not fit where it lies is bad too (see _misplaced):
    a frame of this file duplicated, moved or deleted. `base`: the file offset of data[0]
    (a page read from a cursor), for the watermarks, which are file offsets.
    """
    records: list[StoredRecord] = []
    synced = 0
    records_end = start
    offset = start
    damage: Damage | None = None
    pieces = data[start:].split(MARK)  # (escaping leaves MARK only where frames start)
    if pieces[0]:
        damage = Damage(offset, "no frame starts here", True)
        pieces = []
    new_record = tuple.__new__
    unpack_head = _BODY_HEAD.unpack_from
    unpack_crc = _CRC.unpack_from
    crc32 = zlib.crc32
    esc = _ESC_BYTE  # (an int: `int in bytes` is a memchr, a one-byte `bytes in bytes` is not)
    mark_byte = _MARK_BYTE
    first = base + start
    for index in range(1, len(pieces)):
        piece = pieces[index]
        body = unescape(piece) if esc in piece else piece
        length = len(body) - _BODY_HEAD_SIZE - _CHECKSUM_SIZE
        if length >= 0:
            claimed, frame_file, watermark = unpack_head(body)
            if claimed == length and frame_file == file_id:  # the common case
                end = _BODY_HEAD_SIZE + length
                full = crc32(body[:end], seed)
                if (((full >> 15) | (full << 17)) + _MASK_DELTA) & 0xFFFFFFFF == unpack_crc(
                    body, end
                )[0]:
                    if watermark != synced or not length:
                        # (the common case inline: a record after a sync, at a frame start)
                        if not (
                            length
                            and synced < watermark <= base + offset
                            and watermark >= first
                            and data[watermark - base] == mark_byte
                        ):
                            damage = _misplaced(
                                data, offset, length, watermark, synced, start=start, base=base
                            )
                            if damage is not None:
                                break
                        synced = watermark
                    if length:
                        payload = body[_BODY_HEAD_SIZE:end]
                        records.append(new_record(StoredRecord, (offset, payload)))
                        records_end = offset + 1 + len(piece)
                    offset += 1 + len(piece)
                    continue
        frame = _read_frame(data, offset, offset + 1 + len(piece), file_id, seed)
        if isinstance(frame, str):
            damage = Damage(offset, frame, True)
            if frame is _OTHER_FILE and (base + offset) % _SECTOR:
                # Another file of this name (an older generation, a deleted journal) whose
                # frame starts right where this file's bytes end, within a sector: stale
                # blocks a crash exposes fill whole sectors, so it was written over this
                # file (or another's header over this file's: cut, every record went).
                damage = Damage(offset, _OTHER_FILE_WRITTEN, False)
            break
        # A valid frame with junk after it (a zeroed page) before the next MARK.
        damage = _misplaced(
            data, offset, frame.length, frame.watermark, synced, start=start, base=base
        )
        if damage is not None:
            break
        synced = frame.watermark
        if frame.length:
            records.append(new_record(StoredRecord, (offset, frame.payload)))
            records_end = offset + frame.escaped_size
        offset += frame.escaped_size
        damage = Damage(offset, "no frame starts here", True)
        break
    if damage is not None:
        damage = _classify(data, damage, file_id, seed, base)
    return ScanV2(records, offset, damage, synced, records_end)


_OTHER_FILE_WRITTEN = (
    "a frame of another file of this name (an older generation, a deleted journal) right "
    "after this file's own bytes, within a sector: written over this file (or this file's "
    "header over it), not stale blocks a crash exposed (those fill whole sectors)"
)


def _misplaced(
    data: bytes, at: int, length: int, watermark: int, synced: int, *, start: int, base: int
) -> Damage | None:
    """Why a valid frame at data[at] cannot be where it is (None: it can), as damage there.

    A writer's watermark is what a completed sync covered: the file's size at a sync,
    which is where a frame starts (or the file ends, where the next one starts), never
    after the frame it is in, never less than an earlier frame's; and a sync mark is
    written where its watermark says the file ended. `synced`: the highest watermark of
    the valid frames read from data[start] up to this one, so every MARK byte among them
    is a frame's start. `base`: the file offset of data[0] (a page read from a cursor); a
    watermark before data[start] is then unchecked (it is in no header: a page's frames
    before the cursor).

    A watermark below an earlier one is an earlier frame of this file met again (pasted,
    moved, or a stale frame of a cut tail): damage there, a tail to cut unless a later
    frame proves it synced. A watermark that claims more than what precedes it (beyond
    the frame, not at a frame's start, or a sync mark elsewhere than at its watermark) is a
    valid frame's own proof that bytes it says were synced are not what was written: frames
    deleted, moved or inserted before it. Refused (no crash writes such a frame).
    """
    offset = base + at
    if watermark < synced:
        reason = (
            f"a frame whose watermark ({watermark}) is below an earlier frame's ({synced}): "
            "a frame of this file duplicated, moved, or left from a cut tail"
        )
        return Damage(at, reason, True)
    if watermark > offset:
        fits = False
    elif watermark >= base + start:
        fits = data[watermark - base] == _MARK_BYTE
    else:
        fits = base > 0 or watermark == 0  # (nothing before a header's end was ever synced)
    if fits and (length or watermark == offset):
        return None
    what = "sync mark" if not length else "frame"
    reason = (
        f"a valid {what} whose watermark ({watermark}) does not fit where it lies: frames "
        "before it were deleted, moved or inserted (damage a sync had covered, not a crash)"
    )
    return Damage(at, reason, False)


def _classify(data: bytes, damage: Damage, file_id: int, seed: int, base: int = 0) -> Damage:
    """The first damage, as corruption when a valid frame after it proves it was synced."""
    if not damage.torn_tail:  # (refused already, by the frame itself: see _misplaced)
        return damage
    proof = _later_proof(data, damage.offset, file_id, seed, base)
    if proof is None:
        return damage
    at, watermark, _ = proof
    reason = (
        f"{damage.reason}, yet the valid frame at byte {at} says a sync had made the "
        f"first {watermark} bytes durable: damage to synced data (bit rot, or a write "
        "from outside durable), not a crash"
    )
    return Damage(damage.offset, reason, False)


def salvage_v2(data: bytes, start: int, file_id: int, seed: int) -> ScanV2:
    """Like scan_v2, but damage a sync had covered is stepped over instead of refused.

    For inboxes, whose messages say their own positions: the frames after a damaged one
    are whole messages, so a reader can go on past it (the damaged positions are the gaps)
    instead of refusing every later message. Damage no sync covered is still the tail to
    cut. `damage` is the tail, if any; the stretches stepped over are not reported here.
    """
    end = len(data)
    entries: list[tuple[int, _Frame | None]] = []
    offset = start
    while offset < end:
        if data[offset] != 0xC1:
            following = data.find(MARK, offset)
            entries.append((offset, None))
            offset = end if following < 0 else following
            continue
        following = data.find(MARK, offset + 1)
        piece_end = end if following < 0 else following
        read = _read_frame(data, offset, piece_end, file_id, seed)
        if isinstance(read, str):
            entries.append((offset, None))
            offset = piece_end
        else:
            entries.append((offset, read))
            offset += read.escaped_size
    proven = max((entry.watermark for _, entry in entries if entry is not None), default=0)
    records: list[StoredRecord] = []
    synced = 0
    records_end = start
    for at, entry in entries:
        if entry is None:
            if at >= proven:
                tail = Damage(at, "unreadable frame", True)
                return ScanV2(records, at, tail, synced, records_end)
            continue
        synced = max(synced, entry.watermark)
        if entry.length:
            records.append(StoredRecord(at, entry.payload))
            records_end = at + entry.escaped_size
    return ScanV2(records, end, None, synced, records_end)


def _later_proof(
    data: bytes, damaged_at: int, file_id: int | None, seed: int, base: int = 0
) -> tuple[int, int, int] | None:
    """A valid frame after `damaged_at` whose watermark covers it (file offset base + damaged_at).

    Returns its offset, its watermark and its file id, or None.
    """
    find = data.find
    candidate = find(MARK, damaged_at + 1)
    end = len(data)
    while candidate >= 0:
        following = find(MARK, candidate + 1)
        frame = _read_frame(data, candidate, end if following < 0 else following, file_id, seed)
        if not isinstance(frame, str) and frame.watermark > base + damaged_at:
            return candidate, frame.watermark, frame.file_id
        candidate = following
    return None


def v1_frame_at(data: bytes, offset: int) -> bool:
    """Whether a valid version 1 frame starts at `offset`."""
    return _frame_problem(data, offset, READ_LIMIT) is None


def find_proof(data: bytes, seed: int) -> tuple[int, int, int] | None:
    """Any valid v2 frame whose watermark is above 0: its offset, watermark and file id.

    Of any file id (the header, which would have said which, is damaged), but of this
    name: frames of another file exposed by a crash do not count.
    """
    return _later_proof(data, 0, None, seed)
