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
from collections.abc import Callable
from pathlib import Path

from .._errors import JournalError, JournalWriteError
from ._frames import StoredRecord
from ._group_commit import sync_file, write_all
from ._journal_file import parse
from ._opening import READ_FLAGS, WRITE_FLAGS, check_regular, open_in

logger = logging.getLogger("durable.storage")

INBOX_SUFFIX = ".inbox"

# Given the messages already in the inbox, an exception refusing the new one, or None.
Refusal = Callable[[list[StoredRecord]], BaseException | None]


def _read(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def post(path: Path, payload: bytes, directory_fd: int, refuse: Refusal | None = None) -> int:
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
        messages, valid_end = parsed.records, parsed.valid_end
        if parsed.torn is not None:
            logger.warning(
                "inbox %s: cutting the unsynced tail at byte %d (%s)", path, valid_end, parsed.torn
            )
            os.ftruncate(fd, valid_end)
        if refuse is not None and (refusal := refuse(messages)) is not None:
            raise refusal
        created = valid_end == 0
        file_format = parsed.format
        synced = parsed.synced
        if not created and synced < valid_end:
            # A sender died between its append and its sync (no sync mark after it): sync
            # first, so the watermark this frame carries is true. Rare; ~70 us when it is.
            sync_file(fd)
            synced = valid_end
        head = file_format.header if created else b""
        frame = file_format.frame(payload, synced)
        try:
            write_all(fd, head + frame)
            sync_file(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, valid_end)  # not delivered, as the sender is told
            raise
        if created:
            os.fsync(directory_fd)  # the new file's entry, before the sender is answered
        # The proof that this sync completed, for the next sender and for readers: a
        # page-cache write (the next sender's sync makes it durable).
        write_all(fd, file_format.sync_mark(valid_end + len(head) + len(frame)))
        return len(messages)
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
    return parse(data, path, salvage=True).records[first:]  # (a torn tail: cut by a sender)


def size_of(directory_fd: int | None, path: Path) -> int:
    """The inbox's size in bytes, -1 if there is none: a cheap "anything new?".

    Of the name itself, never of what a link points to (a link's own size is not 0, so
    reading it then reports it).
    """
    try:
        if directory_fd is None:
            return os.stat(path, follow_symlinks=False).st_size
        return os.stat(path.name, dir_fd=directory_fd, follow_symlinks=False).st_size
    except FileNotFoundError:
        return -1
