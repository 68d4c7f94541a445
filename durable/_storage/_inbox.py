"""Inboxes: a mailbox file beside each journal, which anyone may append to.

A journal has exactly one writer, its runner, under an exclusive flock. Messages for it from
anywhere else (this process, or another process using the same directory) go to its inbox,
`<name>.inbox`: the journal's frame format, appended under a short exclusive flock and
synced before the sender is told it was delivered. The runner reads new frames under a
shared flock (so it never sees half an append) and copies what it consumes into its own
journal, which also records how far it consumed: the inbox itself is never rewritten, except
to cut away a sender's torn append.

All functions here block; the directory runs them in worker threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

from .._errors import JournalError, JournalMisplaced, JournalWriteError
from ._file_io import sync_file, write_all
from ._format import FileFormat, Parsed
from ._frames import FRAME_V2_OVERHEAD, StoredRecord
from ._journal_opening import parse
from ._opening import READ_FLAGS, WRITE_FLAGS, check_regular, move_aside, open_in

logger = logging.getLogger("durable.storage")

INBOX_SUFFIX = ".inbox"
_POSITION = struct.Struct("<I")

# Given the messages already in the inbox, an exception refusing the new one, or None.
Refusal = Callable[[list[StoredRecord]], BaseException | None]


def _message_payload(file_format: FileFormat, position: int, payload: bytes) -> bytes:
    """What an inbox frame holds: in version 2, the message's position, then the message."""
    return payload if file_format.version == 1 else _POSITION.pack(position) + payload


def _messages(parsed: Parsed) -> tuple[list[StoredRecord], int, int]:
    """The messages by position, how many there are, and how many a sync is known to cover.

    Version 2 frames say their positions (a frame of just a position is the mark a sender
    leaves after its sync: the count so far). A position no valid frame holds, below one
    that does, is a message whose bytes were damaged after a sync had covered them (bit
    rot): it gets an empty payload, which the runner journals as skipped, so the positions
    after it stay what every sender and runner counted. Readers take only messages a sync
    is known to cover: a sender killed between its append and its sync left one that a
    power loss may still take back, after the runner had taken it.
    """
    if parsed.format.version == 1:
        return parsed.records, len(parsed.records), len(parsed.records)
    by_position: dict[int, StoredRecord] = {}
    count = 0
    proven = 0
    limit = parsed.valid_end // FRAME_V2_OVERHEAD  # (every message took a frame)
    for record in parsed.records:
        if len(record.payload) < _POSITION.size:
            continue  # (no valid frame of an inbox is this short: not ours)
        (position,) = _POSITION.unpack_from(record.payload)
        if position > limit:
            continue  # (more positions than the file could hold: a stale frame, not ours)
        if len(record.payload) > _POSITION.size:
            by_position.setdefault(position, StoredRecord(record.offset, record.payload[4:]))
            count = max(count, position + 1)
            if record.offset < parsed.synced:
                proven = max(proven, position + 1)
        else:
            count = max(count, position)
            if record.offset <= parsed.synced:
                proven = max(proven, position)
    messages = [by_position.get(position) or StoredRecord(-1, b"") for position in range(count)]
    return messages, count, proven


def _read(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def post(path: Path, payload: bytes, directory_fd: int, refuse: Refusal | None = None) -> int:
    """Append `payload` to the inbox at `path`, durably; its position (0, 1, ...).

    An inbox holding another file's frames (JournalMisplaced) is moved aside, logged, and
    the message goes to a fresh one. See _post for the rest.
    """
    try:
        return _post(path, payload, directory_fd, refuse)
    except JournalMisplaced as misplaced:
        moved = move_aside(directory_fd, path)
        logger.warning("inbox %s: %s; moved aside to %s", path, misplaced, moved)
        return _post(path, payload, directory_fd, refuse)


def _post(path: Path, payload: bytes, directory_fd: int, refuse: Refusal | None = None) -> int:
    """Append `payload` to the inbox at `path`, durably; its position (0, 1, ...).

    Opened by name relative to `directory_fd`, never through a link, and only if it is a
    regular file (a fifo or a device planted there is refused, never waited on).

    Raises:
        what `refuse` returns (nothing is written then).
        UnsafeJournalFile: a link or a special file at the inbox's name.
        JournalPermissionDenied: the inbox (or the directory, to create it) lacks a permission.
        JournalWriteError: the disk refused the append or its sync (full, EIO); the message
            was cut off again, so it was not delivered.
    """
    fd = open_in(directory_fd, path, WRITE_FLAGS, "read and write")
    try:
        check_regular(os.fstat(fd), path)
        fcntl.flock(fd, fcntl.LOCK_EX)  # senders hold it for one append and its sync
        os.lseek(fd, 0, os.SEEK_SET)
        data = _read(fd)
        parsed = parse(data, path, salvage=True)
        valid_end = parsed.valid_end
        if parsed.torn is not None:
            logger.warning(
                "inbox %s: cutting the unsynced tail at byte %d (%s)", path, valid_end, parsed.torn
            )
            os.ftruncate(fd, valid_end)
        file_format = parsed.format
        messages, count, proven = _messages(parsed)
        synced = parsed.synced
        if proven < len(messages):
            # A sender died between its append and its sync: no position mark proves its
            # message. Sync it now and say so, before refusing or appending anything, so
            # readers may take it and this frame's watermark is true. Rare (~70 us).
            sync_file(fd)
            write_all(fd, file_format.frame(_POSITION.pack(count), valid_end))
            valid_end = synced = os.fstat(fd).st_size
        if refuse is not None and (refusal := refuse(messages)) is not None:
            raise refusal
        created = valid_end == 0
        head = file_format.header if created else b""
        frame = file_format.frame(_message_payload(file_format, count, payload), synced)
        try:
            write_all(fd, head + frame)
            sync_file(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, valid_end)  # not delivered, as the sender is told
            raise
        if created:
            os.fsync(directory_fd)  # the new file's entry, before the sender is answered
        if file_format.version > 1:
            # The proof that this sync completed, for readers and the next sender, and how
            # many messages there are: a page-cache write (the next sync makes it durable).
            end = valid_end + len(head) + len(frame)
            write_all(fd, file_format.frame(_POSITION.pack(count + 1), end))
        return count
    except OSError as error:
        if isinstance(error, JournalError):  # (JournalPermissionDenied is a PermissionError)
            raise
        raise JournalWriteError(
            path=path,
            operation="appending a message to the inbox",
            errno=error.errno,
            detail=error.strerror or str(error),
        ) from error
    finally:
        os.close(fd)  # (releases the lock)


def read_from(directory_fd: int | None, path: Path, first: int) -> list[StoredRecord]:
    """The messages at positions `first`, `first + 1`, ... (none if there is no inbox).

    Opened like post() opens it (never through a link; UnsafeJournalFile if not a regular
    file); `directory_fd` None: the directory does not exist.
    """
    if directory_fd is None:
        return []
    try:
        fd = open_in(directory_fd, path, READ_FLAGS, "read")
    except FileNotFoundError:
        return []
    try:
        check_regular(os.fstat(fd), path)
        fcntl.flock(fd, fcntl.LOCK_SH)
        data = _read(fd)
    finally:
        os.close(fd)
    try:
        parsed = parse(data, path, salvage=True)  # (a torn tail: cut by the next sender)
    except JournalMisplaced as misplaced:  # (the next sender moves it aside)
        logger.warning("inbox %s: %s; nothing in it is taken", path, misplaced)
        return []
    messages, _, proven = _messages(parsed)
    return messages[first:proven]


def size_of(directory_fd: int | None, directory: Path, file_name: str) -> int:
    """The size in bytes of inbox `file_name` in the directory, -1 if there is none.

    A cheap "anything new?". Of the name itself, never of what a link points to (a link's
    own size is not 0, so reading it then reports it).
    """
    try:
        if directory_fd is None:
            return os.stat(directory / file_name, follow_symlinks=False).st_size
        return os.stat(file_name, dir_fd=directory_fd, follow_symlinks=False).st_size
    except FileNotFoundError:
        return -1
