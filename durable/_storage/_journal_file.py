"""One append-only journal file: open and recover under an exclusive lock, append, close.

Opening an existing journal is blocking (lock, read, maybe truncate a torn tail, sync) and
runs in a worker thread; creating a new one is a few syscalls and runs on the caller's.
An append writes its frame at once (a page-cache write) and leaves the sync to the
directory's GroupCommitter, which shares it with other appenders or, for a lone appender,
does it inline within a bounded budget.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
from pathlib import Path

from .._errors import (
    JournalClosed,
    JournalCorrupted,
    JournalLocked,
    RecordTooLarge,
    UnsupportedJournalFormat,
)
from ._collector import collector_paused
from ._frames import (
    FILE_HEADER,
    FILE_MAGIC,
    FORMAT_VERSION,
    READ_LIMIT,
    StoredRecord,
    encode_frame,
    scan,
)
from ._group_commit import CommitTarget, GroupCommitter, sync_file

logger = logging.getLogger("durable.storage")

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 1 << 16), offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def is_torn_creation(data: bytes) -> bool:
    """A file a crash left while its header was being written.

    At most the header's length, each byte either the header's or zero (never written).
    """
    return (
        len(data) <= len(FILE_HEADER)
        and all(byte in (0, expected) for byte, expected in zip(data, FILE_HEADER, strict=False))
        and data != FILE_HEADER
    )


def check_header(data: bytes, path: Path) -> None:
    """Refuse a file that is not a journal, or one from a newer format."""
    if data[: len(FILE_MAGIC)] != FILE_MAGIC or len(data) < len(FILE_HEADER):
        raise JournalCorrupted(
            path=path,
            offset=0,
            reason="the file does not start with durable's journal header (not a journal?)",
        )
    (version,) = struct.unpack_from("<I", data, len(FILE_MAGIC))
    if version > FORMAT_VERSION:
        raise UnsupportedJournalFormat(path=path, found=version, supported=FORMAT_VERSION)
    if version == 0:
        raise JournalCorrupted(path=path, offset=len(FILE_MAGIC), reason="format version 0")


def parse(data: bytes, path: Path) -> tuple[list[StoredRecord], int, str | None]:
    """Records, where they end, and the torn tail's description (None when there is none).

    Frames are read whatever their size (a frame cannot claim more bytes than the file
    holds): the record size limit applies to writing, so lowering it never hides records.
    """
    if is_torn_creation(data):
        return [], 0, "incomplete file header" if data else None
    check_header(data, path)
    with collector_paused():
        result = scan(data, len(FILE_HEADER), READ_LIMIT)
    damage = result.damage
    if damage is None:
        return result.records, result.valid_end, None
    if not damage.torn_tail:
        raise JournalCorrupted(path=path, offset=damage.offset, reason=damage.reason)
    return result.records, result.valid_end, damage.reason


def _lock(path: Path) -> int:
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(path=path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_locked(path: Path) -> tuple[int, list[StoredRecord], bool]:
    """Blocking: open, lock, recover. Leaves the file byte-for-byte as it was unless torn.

    Returns the descriptor, the records, and whether the file was (re)created: then its
    header and directory entry are made durable by its first sync, not here (a creation
    would otherwise cost an fdatasync and a directory fsync of its own).
    """
    fd = _lock(path)
    try:
        data = _read_all(fd)
        records, valid_end, torn = parse(data, path)
        if torn is not None:
            logger.warning(
                "journal %s: truncating a torn final frame at byte %d (%d bytes: %s); "
                "a crash interrupted that append, which was never reported durable",
                path,
                valid_end,
                len(data) - valid_end,
                torn,
            )
            os.ftruncate(fd, valid_end)
        if valid_end == 0:  # new file, or a crash while it was being created
            os.write(fd, FILE_HEADER)
            return fd, records, True
        # A crashed writer may have left records it never synced in the page cache:
        # `records` promises durability, so make them durable before reporting them.
        sync_file(fd)
        return fd, records, False
    except BaseException:
        os.close(fd)
        raise


class JournalFile:
    """An open journal: the one writer of its file until `close()`.

    `records` holds what was durable when it was opened. `write()` writes a record that
    becomes durable with the next `append()` or `flush()` (a crash of the process keeps it
    already; power loss may not); `append()` returns once the record is durable. A failed
    write or sync closes the handle to further appends: `JournalWriteError`, then reopen.
    Use from one event loop.
    """

    def __init__(
        self,
        *,
        path: Path,
        fd: int,
        records: list[StoredRecord],
        committer: GroupCommitter,
        same_device: bool,
        max_record_size: int,
        new_entry: bool = False,
    ) -> None:
        self.path = path
        self.records = records
        self._target = CommitTarget(fd, path, same_device=same_device, new_entry=new_entry)
        self._committer = committer
        committer.register(self._target)
        self._max_record_size = max_record_size
        self._closed = False
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the first use

    @classmethod
    def open_blocking(
        cls,
        path: Path,
        *,
        directory_fd: int,
        directory_device: int,
        committer: GroupCommitter,
        max_record_size: int,
    ) -> JournalFile:
        """Open, lock and recover `path` (blocking; run it in a worker thread)."""
        fd, records, created = _open_locked(path)
        return cls(
            path=path,
            fd=fd,
            records=records,
            committer=committer,
            new_entry=created,
            same_device=os.fstat(fd).st_dev == directory_device,
            max_record_size=max_record_size,
        )

    @classmethod
    def create_if_new(
        cls,
        path: Path,
        *,
        directory_device: int,
        committer: GroupCommitter,
        max_record_size: int,
    ) -> JournalFile | None:
        """Open and lock `path` if it is new (empty), else None: it needs open_blocking.

        A creation is an open, a flock, an fstat and a header write (~30 us), cheaper than
        the hop to a worker thread and back (~250 us each when 100 workflows start at once).
        """
        fd = _lock(path)
        try:
            info = os.fstat(fd)
            if info.st_size != 0:
                os.close(fd)  # (releases the lock: open_blocking takes it again)
                return None
            os.write(fd, FILE_HEADER)
        except BaseException:
            os.close(fd)
            raise
        return cls(
            path=path,
            fd=fd,
            records=[],
            committer=committer,
            new_entry=True,
            same_device=info.st_dev == directory_device,
            max_record_size=max_record_size,
        )

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    async def abandon(self) -> None:
        """Give the file back without syncing (nothing was written through this handle)."""
        self._closed = True
        self._committer.release(self._target)

    def _frame(self, payload: bytes) -> bytes:
        if self._closed:
            raise JournalClosed(path=self.path)
        if not 0 < len(payload) <= self._max_record_size:
            if not payload:
                raise ValueError("a journal record cannot be empty")
            raise RecordTooLarge(path=self.path, size=len(payload), limit=self._max_record_size)
        return encode_frame(payload)

    def write(self, payload: bytes) -> None:
        """Write a record now; durable with the next append() or flush().

        Raises:
            JournalWriteError: the write failed; the handle takes no more appends.
            RecordTooLarge: the payload is over the limit; nothing was written.
        """
        self._target.write(self._frame(payload))

    async def append(self, payload: bytes) -> None:
        """Append a record and return once it (and every record before it) is durable.

        Cancelling the caller does not unwrite the record: it may still become durable.

        Raises:
            JournalWriteError: the write or the sync failed; the handle takes no more appends.
            RecordTooLarge: the payload is over the limit; nothing was written.
        """
        self._target.write(self._frame(payload))
        loop = asyncio.get_running_loop()
        if self._committer.sync_inline(self._target, loop):
            return  # (no extra suspension: it would cost a loop iteration per record)
        waiter = loop.create_future()
        self._committer.join_round(self._target, waiter, loop)
        await waiter

    async def flush(self) -> None:
        """Make every record written so far durable."""
        if self._closed:
            raise JournalClosed(path=self.path)
        target = self._target
        if target.written > target.synced:
            if target.failure is not None:
                raise target.error()
            loop = asyncio.get_running_loop()
            if self._committer.sync_inline(target, loop):
                return
            waiter = loop.create_future()
            self._committer.join_round(target, waiter, loop)
            await waiter

    def check_held(self) -> None:
        """Always held: the flock lasts as long as the descriptor."""

    async def note(self, *, finished: bool = False, wake_at: float | None = None) -> None:
        """Nothing to do: a directory is not shared between processes by leases."""

    async def close(self) -> None:
        """Make written records durable, then release the lock and the file.

        Raises:
            JournalWriteError: a written record could not be made durable.
        """
        if self._closed:
            return
        self._closed = True
        target, committer = self._target, self._committer
        if target.written == target.synced and not target.in_flight and target.failure is None:
            committer.release(target)  # nothing to sync and the thread holds no request
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def release(done: asyncio.Future[None]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved here; raised to the caller below
            committer.release(target)

        # The fd closes only once the sync thread is done with it, even if close() is
        # cancelled: the request settles after every request queued before it.
        waiter.add_done_callback(release)
        self._committer.request_sync(self._target, waiter)
        await asyncio.shield(waiter)
