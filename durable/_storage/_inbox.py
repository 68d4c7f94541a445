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

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ._frames import FILE_HEADER, StoredRecord, encode_frame
from ._group_commit import sync_file, write_all
from ._journal_file import parse

logger = logging.getLogger("durable.storage")

INBOX_SUFFIX = ".inbox"
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)

# Given the messages already in the inbox, an exception refusing the new one, or None.
Refusal = Callable[[list[StoredRecord]], BaseException | None]


def _read(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def post(path: Path, payload: bytes, directory_fd: int, refuse: Refusal | None = None) -> int:
    """Append `payload` to the inbox at `path`, durably; its position (0, 1, ...).

    Raises what `refuse` returns (nothing is written then), and OSError from the disk.
    """
    fd = os.open(path, _FLAGS, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # senders hold it for one append and its sync
        os.lseek(fd, 0, os.SEEK_SET)
        data = _read(fd)
        messages, valid_end, torn = parse(data, path)
        if torn is not None:
            logger.warning("inbox %s: cutting a sender's torn append (%s)", path, torn)
            os.ftruncate(fd, valid_end)
        if refuse is not None and (refusal := refuse(messages)) is not None:
            raise refusal
        created = valid_end == 0
        write_all(fd, (FILE_HEADER if created else b"") + encode_frame(payload))
        sync_file(fd)
        if created:
            os.fsync(directory_fd)  # the new file's entry, before the sender is answered
        return len(messages)
    finally:
        os.close(fd)  # (releases the lock)


def read_from(path: Path, first: int) -> list[StoredRecord]:
    """The messages at positions `first`, `first + 1`, ... (none if there is no inbox)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return []
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        data = _read(fd)
    finally:
        os.close(fd)
    messages, _, _ = parse(data, path)  # (a torn append is cut by the next sender)
    return messages[first:]


def size_of(path: Path) -> int:
    """The inbox's size in bytes, -1 if there is none: a cheap "anything new?"."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1
