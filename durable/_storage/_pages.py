"""A journal read a page at a time, from a cursor: for readers that follow a long journal.

`read()` returns a journal's every record; a reader that follows one live (a stream's
reader) wants the records after where it stopped, a bounded number at a time, and to know
when the journal it was reading was replaced by a new generation (continue_as_new). A
cursor is (generation, position): the file's random id and a byte offset where a frame
starts (file store), or the generation and the next record's number (PostgreSQL);
`START` means "the current generation, from its first record".

Like read(), no lock is taken and nothing is written; a frame cut short at the end is an
append in progress, left for the next page. Records are bytes; this module knows nothing
of what they hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .._errors import JournalCorrupted
from ._format import HEADER_SIZE, parse, seed_of, v2_file_id
from ._frames import MARK, ScanV2, StoredRecord, scan_v2
from ._opening import READ_FLAGS, open_regular

Cursor = tuple[int, int]  # (generation, position); see the module
START: Cursor = (-1, 0)
PREVIOUS: Cursor = (-2, 0)  # the generation before the current one (kept), from its start


@dataclass(frozen=True)
class Page:
    """Records read from a cursor, and where the next page starts.

    `rotated`: the cursor's generation is over (it continued as new) and read to its end,
    or gone; nothing was read: read on from START. `more`: records are there past this
    page already (read on at once).
    """

    records: list[StoredRecord]
    cursor: Cursor
    rotated: bool = False
    more: bool = False


def read_page(directory_fd: int, path: Path, cursor: Cursor, max_bytes: int) -> Page:
    """The records of journal file `path` from `cursor`, about `max_bytes` of them at most.

    A record larger than `max_bytes` is read whole (the page grows to it). A file without
    a valid version 2 header (version 1, or never synced) is read whole and cut to the page.
    A cursor of the generation before the current one (or PREVIOUS: its start) reads on
    in the one kept of it (`<path>.prev`) until its end, so a reader that follows a run
    across continue_as_new sees the old generation's last values; then (or if that
    generation is gone) the page is `rotated`.

    Raises:
        FileNotFoundError: there is no such file.
        JournalCorrupted: damage a sync had covered, found twice in the same bytes.
        UnsafeJournalFile, JournalPermissionDenied: as open_in.
    """
    if cursor == PREVIOUS:
        return _previous(directory_fd, path, cursor, max_bytes)
    fd = open_regular(directory_fd, path, READ_FLAGS, "read")
    try:
        file_id = v2_file_id(os.pread(fd, HEADER_SIZE, 0), path)
        if file_id is None:
            return _whole(fd, path, cursor)
        generation, position = cursor
        if generation == START[0]:
            generation, position = file_id, HEADER_SIZE
        elif generation != file_id:
            return _previous(directory_fd, path, cursor, max_bytes)
        return _page(fd, path, (generation, position), max_bytes)
    finally:
        os.close(fd)


def _previous(directory_fd: int, path: Path, cursor: Cursor, max_bytes: int) -> Page:
    """The rest of generation `cursor[0]` if it is the one kept as `<path>.prev`."""
    kept = path.with_name(path.name + ".prev")
    try:
        fd = open_regular(directory_fd, kept, READ_FLAGS, "read")
    except FileNotFoundError:
        return Page([], cursor, rotated=True)
    try:
        file_id = v2_file_id(os.pread(fd, HEADER_SIZE, 0), kept)
        if cursor == PREVIOUS and file_id is not None:
            cursor = (file_id, HEADER_SIZE)
        if file_id is None or file_id != cursor[0]:
            return Page([], cursor, rotated=True)  # (gone: two generations passed)
        page = _page(fd, path, cursor, max_bytes)
        if not page.records:  # (a kept generation is complete: its end was read)
            return Page([], cursor, rotated=True)
        return page
    finally:
        os.close(fd)


def _page(fd: int, path: Path, cursor: Cursor, max_bytes: int) -> Page:
    """The records of open file `fd` (journal `path`'s generation `cursor[0]`) from `cursor`.

    The frames just before the cursor (up to LOOKBACK bytes) are read again, not returned:
    the page's watermarks are checked against theirs (see _frames._misplaced), so a frame
    copied or moved to after the cursor is damage here too, as in a whole read.
    """
    generation, position = cursor
    size = os.fstat(fd).st_size
    want, seed, damaged = max(max_bytes, 64), seed_of(path), 0
    back = max(0, min(position - HEADER_SIZE, LOOKBACK))
    while True:
        data = os.pread(fd, back + want, position - back)
        scanned = _scan(data, back, generation, seed, position - back)
        damage = scanned.damage
        if damage is not None and not damage.torn_tail:
            damaged += 1  # (a read that overlapped a recovery reads well again)
            if damaged < 3:
                continue
            offset = position - back + damage.offset
            raise JournalCorrupted(path=path, offset=offset, reason=damage.reason)
        records = [
            StoredRecord(position - back + offset, payload)
            for offset, payload in scanned.records
            if offset >= back
        ]
        if records or len(data) < back + want:
            break
        want *= 2  # one record larger than the page: read it whole
    end = position - back + scanned.valid_end
    return Page(records, (generation, end), more=len(data) == back + want and end < size)


# Bytes before a page's cursor read again, for the watermarks of the frames there.
LOOKBACK = 8 << 10


def _scan(data: bytes, back: int, generation: int, seed: int, base: int) -> ScanV2:
    """The frames of `data` from data[back] (the cursor), read after those before it.

    Read from the first frame start in data[:back]: when those frames read whole up to the
    cursor, exactly, the page's frames are checked against them. Else (a tail cut since
    they were read, a cursor not at a frame's start) from the cursor alone, as before.
    """
    before = data.find(MARK, 0, back)
    if before >= 0:
        scanned = scan_v2(data, before, generation, seed, base)
        damage = scanned.damage
        at_cursor = back == len(data) or data[back] == MARK[0]
        if at_cursor and scanned.valid_end >= back and (damage is None or damage.offset >= back):
            return scanned
    return scan_v2(data, back, generation, seed, base)


def _whole(fd: int, path: Path, cursor: Cursor) -> Page:
    """A file of another version read whole: the records after `cursor`'s (0, offset)."""
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    parsed = parse(b"".join(chunks), path)
    generation, position = cursor
    if generation not in (START[0], 0):
        return Page([], cursor, rotated=True)
    records = [record for record in parsed.records if record.offset >= position]
    end = records[-1].offset + 1 if records else position
    return Page(records, (0, end))
